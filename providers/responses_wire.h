#pragma once
// The OpenAI Responses wire format as a native relay needs it: the request body made fit for the
// upstream, the usage of a Response object or of a stream's final event, and which events carry
// content. Pure functions over bytes; the relay loop is providers/anthropic_relay.cpp.
#include <cstdint>
#include <string>
#include <string_view>

#include "core/result.h"
#include "core/usage.h"
#include "providers/native_stream.h"

namespace providers {

struct Dialect;

// The body sent upstream: `model` replaced by `model` (inserted when absent), `store` false (the
// gateway keeps the conversation; the vendor's copy would be unreachable through it), and
// `previous_response_id` removed (the vendor does not know the gateway's ids: the caller expanded
// the conversation into `input`). Every other member as the client sent it. An error if the body
// is not a JSON object.
core::Result<std::string> rewrite_responses_body(std::string_view body, std::string_view model);

// A Response object's usage: input_tokens (cached included), input_tokens_details.cached_tokens,
// output_tokens (reasoning included), output_tokens_details.reasoning_tokens. Not present when the
// object has no usage object; malformed when a count is not a non-negative integer.
core::Usage read_responses_usage(std::string_view response_json);

// A non-stream answer: its usage and status ("completed", "incomplete", ...). An error when the
// body is not a Response object (not JSON, an error object sent with status 200, status "failed").
struct ResponsesAnswerInfo {
  core::Usage usage;
  std::string status;
};
core::Result<ResponsesAnswerInfo> read_responses_answer(const Dialect& dialect, std::string_view body);

// One stream, event by event. response.completed and response.incomplete end it (stop: withheld,
// the gateway sends it after accounting, with its own ids); response.failed and `error` are errors
// (mapped as the same condition on chat completions, so fail-over rules are the same). Events
// before the first content: response.created / in_progress / queued, an output item or part added
// empty (message, reasoning), and types this relay does not know.
class ResponsesStream {
 public:
  explicit ResponsesStream(const Dialect& dialect) : dialect_(dialect) {}
  NativeStep process(std::string_view event, std::string_view data);

  // The final usage (present once the completed or incomplete event carried one).
  const core::Usage& usage() const { return usage_; }
  const std::string& status() const { return status_; }

 private:
  const Dialect& dialect_;
  core::Usage usage_;
  std::string status_;
  std::string name_;
};

}  // namespace providers
