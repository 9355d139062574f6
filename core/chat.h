#pragma once
// The gateway's vocabulary for a chat request, independent of any wire format.
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/embeddings.h"

namespace core {

struct ChatMessage {
  std::string role;     // system | user | assistant | tool (developer is mapped to system)
  std::string content;  // text content; array content parts are concatenated text parts
  std::string name;
  std::string tool_call_id;
  std::string tool_calls_json;  // assistant tool_calls, raw JSON array (empty if none)
};

struct ChatRequest {
  std::string model;                    // alias the client asked for
  bool stream = false;
  bool include_usage = false;           // client asked stream_options.include_usage
  std::optional<int64_t> max_tokens;    // max_tokens or max_completion_tokens
  std::optional<double> temperature;
  std::optional<double> top_p;
  std::optional<int64_t> top_k;         // non-standard, honoured by the local backend
  std::optional<double> min_p;          // non-standard, honoured by the local backend
  std::optional<int64_t> seed;
  int64_t n = 1;                        // choices asked for (1..128); the output is paid n times
  std::vector<std::string> stop;
  std::vector<ChatMessage> messages;
  bool has_tools = false;
  bool wants_json = false;              // response_format json_object / json_schema
  bool has_images = false;
  bool wants_reasoning = false;         // a thinking switch asks for reasoning (its off forms do not)
  // The level the client asked for: reasoning_effort / reasoning.effort as sent ("low", "high"...),
  // else "default" for a switch that turns reasoning on without a level, "none" for one that turns
  // it off; empty when the request says nothing.
  std::string reasoning_effort;
  int64_t prompt_bytes = 0;             // UTF-8 bytes of all message text
  int64_t prompt_cjk_chars = 0;         // CJK code points among them (token estimate)
  std::string raw_body;                 // the client's JSON body, forwarded with overrides
  // Set for POST /v1/embeddings: the rows to embed (the request is then never streamed and has
  // no messages; max_tokens is 0: embeddings bill input only).
  std::shared_ptr<const EmbeddingRequest> embedding;
};

// Rough input-token estimate that is honest about CJK text (about one token per CJK
// character, about four bytes per token elsewhere) plus per-message overhead.
int64_t estimate_prompt_tokens(const ChatRequest& req);

}  // namespace core
