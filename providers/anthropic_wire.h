#pragma once
// The Anthropic Messages wire format as a native relay needs it: the request body with its model
// replaced, the usage of a message or of a stream's events, and which events carry content. Pure
// functions over bytes; the relay loop that uses them is providers/anthropic_relay.cpp.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/error.h"
#include "core/result.h"
#include "core/usage.h"
#include "providers/native_stream.h"

namespace providers {

struct Dialect;

// The client's body with the value of its top-level "model" replaced by `model` (inserted first
// when absent); every other byte as the client sent it, nested "model" keys (tool schemas,
// metadata) untouched. An error if the body is not a JSON object.
core::Result<std::string> rewrite_anthropic_model(std::string_view body, std::string_view model);

// Anthropic's usage figures, as read so far.
struct AnthropicUsage {
  int64_t input_tokens = 0;                 // uncached input
  int64_t cache_read_input_tokens = 0;
  int64_t cache_creation_input_tokens = 0;
  int64_t output_tokens = 0;
  bool present = false;    // some usage object was seen
  bool malformed = false;  // a count was negative, fractional, too large or not a number

  // Folds in a usage object (JSON text). Each figure keeps the largest value seen: the figures in
  // message_delta are cumulative (Anthropic's own API), some compatible endpoints send their input
  // counts only in message_start and zeros or nothing later, others only in message_delta, so the
  // largest is the last sensible figure and a later, smaller one (a lying or reset counter) never
  // lowers what is billed.
  void merge(std::string_view usage_json);
  // core::Usage: prompt = input + cache read + cache creation, cached = cache read, cache write =
  // cache creation, completion = output.
  core::Usage to_core() const;
};

// A non-stream answer: its usage and stop_reason. An error when the body is not a message object
// (not JSON, or an error object sent with status 200).
struct AnthropicMessageInfo {
  core::Usage usage;
  std::string stop_reason;
};
core::Result<AnthropicMessageInfo> read_anthropic_message(const Dialect& dialect, std::string_view body);

// One stream, event by event.
class AnthropicStream {
 public:
  explicit AnthropicStream(const Dialect& dialect) : dialect_(dialect) {}

  // stop: message_stop (the gateway sends its own after accounting); error: `event: error`, or an
  // event that is not a JSON object. A ping is a keepalive.
  using Action = NativeAction;
  using Step = NativeStep;
  // `event` is the SSE event field (may be empty), `data` its data. The step's views are valid
  // until the next call.
  Step process(std::string_view event, std::string_view data);

  // The upstream's final usage once message_delta reported one; before that (a stream cut or failed
  // midway) not present, as a chat stream's before its usage chunk: the gateway then accounts the
  // output it relayed, and input_tokens_reported() for the prompt.
  core::Usage usage() const;
  // Prompt tokens (input + cache read + cache creation) as message_start reported them, -1 when it
  // reported none or a malformed count: exact even when the stream never reached its end.
  int64_t input_tokens_reported() const;
  const std::string& stop_reason() const { return stop_reason_; }
  bool saw_message_delta() const { return saw_message_delta_; }

 private:
  const Dialect& dialect_;
  AnthropicUsage usage_;
  std::string stop_reason_;
  std::string name_;
  bool saw_message_delta_ = false;
  bool saw_final_usage_ = false;  // message_delta carried a usage object
};

}  // namespace providers
