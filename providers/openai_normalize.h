#pragma once
// Normalises each vendor's answer to OpenAI's shape: usage always at top level with
// prompt_tokens_details.cached_tokens and completion_tokens_details.reasoning_tokens filled from the
// vendor's own fields; reasoning_content passed through; vendor finish reasons mapped.
#include <optional>
#include <string>
#include <string_view>

#include "core/result.h"
#include "core/usage.h"

namespace providers {

struct Dialect;

// Reads a usage object in any vendor's shape (JSON text of the object).
core::Usage parse_usage_json(std::string_view usage_json);
// Writes usage as OpenAI's object (no surrounding key).
std::string usage_to_json(const core::Usage& u);
void append_usage_json(std::string& out, const core::Usage& u);

struct NormalizedResponse {
  std::string body;           // OpenAI-shaped chat.completion JSON
  core::Usage usage;
  std::string finish_reason;  // of choices[0]
};

// Non-streaming answer. An error if the body is not a chat.completion object.
core::Result<NormalizedResponse> normalize_response(const Dialect& dialect, std::string_view body);

// One stream, event by event.
class StreamNormalizer {
 public:
  StreamNormalizer(const Dialect& dialect, bool client_wants_usage)
      : dialect_(dialect), client_wants_usage_(client_wants_usage) {}

  enum class Action {
    forward,   // send `out` (the original bytes when unchanged) to the client
    drop,      // nothing for the client (usage-only chunk, empty keep-alive)
    done,      // upstream said [DONE]
    error,     // upstream reported an error in-band or broke the stream; `error` is set
  };
  struct Step {
    Action action = Action::drop;
    std::string_view out;   // valid until the next call
    bool content = false;   // carries text, reasoning, a tool call or a finish reason
    int64_t est_tokens = 0; // completion tokens this chunk carries, estimated from its text
    std::optional<core::Error> error;
  };

  Step process(std::string_view data);

  // The final usage-only chunk to send when the client asked for usage (empty if no usage seen).
  std::string usage_chunk() const;
  const core::Usage& usage() const { return usage_; }
  const std::string& finish_reason() const { return finish_reason_; }
  int chunks() const { return chunks_; }
  // The stream's identity as its chunks carry it (empty / 0 until the first chunk).
  const std::string& id() const { return id_; }
  const std::string& model() const { return model_; }
  int64_t created() const { return created_; }

 private:
  const Dialect& dialect_;
  bool client_wants_usage_;
  core::Usage usage_;
  std::string finish_reason_;
  std::string id_, model_;
  int64_t created_ = 0;
  int chunks_ = 0;
  std::string rewritten_;
};

// Completion tokens a streamed piece of text carries, estimated like the prompt estimate: a code
// point of three or more UTF-8 bytes (CJK) about one token, other text about four bytes a token; at
// least one (streams send about one token per event). For accounting a stream cut before its usage.
int64_t estimate_text_tokens(std::string_view text);

// Vendor finish reason -> OpenAI's; "" means the finish is an upstream failure.
std::string map_finish_reason(std::string_view vendor_reason);

}  // namespace providers
