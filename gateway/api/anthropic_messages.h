#pragma once
// The Anthropic Messages API surface (/v1/messages, /v1/messages/count_tokens) for deployments that
// only speak OpenAI chat: an Anthropic request is validated and rewritten as an OpenAI chat body,
// and the OpenAI answer (whole, or chunk by chunk) is rewritten as Anthropic's. Pure functions and
// one small state machine; no I/O. Deployments with a native Anthropic endpoint do not come here.
//
// Decisions a client can observe (the tests pin each one):
// - Thinking blocks in the history become the assistant's reasoning_content; their signature is
//   dropped (no OpenAI-side upstream can check it). redacted_thinking blocks are dropped: their data
//   is ciphertext only Anthropic can read. Thinking blocks we send carry an empty signature, in the
//   content block and in the signature_delta that precedes each thinking block's stop.
// - tool_result blocks become role "tool" messages placed before the rest of that user turn (OpenAI
//   wants them right after the assistant's tool_calls); is_error adds the prefix "[tool error] ".
//   Images inside a tool_result cannot be expressed and are refused.
// - Advisory fields are ignored: cache_control anywhere, service_tier. Fields an OpenAI upstream
//   cannot honour (container, mcp_servers, context_management, server tools such as web_search_*,
//   document blocks, any unknown member) are refused with a 400 that names them.
// - thinking.budget_tokens travels as {"thinking":{"type":"enabled","budget_tokens":N}}; vendors that
//   do not read the budget ignore it.
// - Upstream tool arguments that are not a JSON object are an upstream fault (502, api_error); an
//   empty arguments string is {}.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/chat.h"
#include "core/error.h"
#include "core/result.h"
#include "core/usage.h"
#include "gateway/api/sse_event.h"

namespace gateway {

struct TranslatedRequest {
  core::ChatRequest chat;                   // the OpenAI body, parsed; chat.raw_body is that body
  std::string model;                        // the client's alias, echoed in every answer
  bool stream = false;
  bool thinking = false;                    // the client asked for extended thinking
  std::vector<std::string> stop_sequences;  // to tell which one ended the answer, when knowable
  // Set by anthropic_to_openai_for_relay: a member the translation cannot express (refused by
  // anthropic_to_openai). A native relay forwards it; a translated attempt must refuse with this.
  std::optional<core::Error> untranslatable;
};

// POST /v1/messages. Errors are bad_request with `param` set to the offending member's path.
core::Result<TranslatedRequest> anthropic_to_openai(std::string_view body);
// The same, for a request that may be relayed natively: top-level members the translation cannot
// express (unknown ones, container, mcp_servers, context_management) are left out of the
// translation and named in `untranslatable` instead of refused; every other check still refuses.
core::Result<TranslatedRequest> anthropic_to_openai_for_relay(std::string_view body);
// POST /v1/messages/count_tokens: the same body without max_tokens (and without stream).
core::Result<TranslatedRequest> anthropic_count_tokens_request(std::string_view body);
// {"input_tokens":N}: the gateway's estimate (core::estimate_prompt_tokens), not a tokenizer count.
std::string count_tokens_json(const TranslatedRequest& req);

// A non-streaming OpenAI chat.completion -> an Anthropic message. An error (upstream server_error)
// if the body is not a completion or a tool call's arguments are not a JSON object.
core::Result<std::string> openai_to_anthropic_response(std::string_view openai_completion,
                                                       const TranslatedRequest& req);

// "end_turn", "max_tokens", "tool_use", "stop_sequence", "refusal" for an OpenAI finish reason.
std::string_view anthropic_stop_reason(std::string_view finish_reason, bool stop_sequence_matched);

// Turns the OpenAI chunks of one stream into Anthropic's event sequence:
//   message_start, ping, (content_block_start, content_block_delta*, content_block_stop)*,
//   message_delta, message_stop        or, at any point, error (alone if nothing was sent yet: a
//   pipeline that has not sent headers should answer with an HTTP error instead).
// A new content block opens whenever the kind (thinking, text, tool call) or the tool index changes.
class AnthropicStreamEncoder {
 public:
  // `estimated_input_tokens` fills message_start's usage (upstreams report usage only at the end).
  AnthropicStreamEncoder(const TranslatedRequest& req, int64_t estimated_input_tokens);

  // One chunk's JSON (the data of an OpenAI SSE event; "[DONE]" is accepted and yields nothing). An
  // error if the chunk is not JSON or breaks the stream's shape (a fragment for a tool call whose
  // block was already closed): the caller then ends the stream with fail(error).
  core::Result<std::vector<SseEvent>> feed(std::string_view chunk_json);
  // The end: closes the open block, then message_delta and message_stop. `usage` overrides what the
  // chunks reported (the pipeline's normaliser may know better); without either, output tokens are
  // estimated from the text sent.
  std::vector<SseEvent> finish(const std::optional<core::Usage>& usage = std::nullopt);
  // An in-band error instead of the end (nothing more is sent after it).
  std::vector<SseEvent> fail(const core::Error& error);

  bool started() const { return started_; }
  bool ended() const { return ended_; }

 private:
  enum class Block { none, thinking, text, tool };
  void start(std::vector<SseEvent>& out, std::string_view upstream_id);
  void open(std::vector<SseEvent>& out, Block kind, std::string_view tool_id, std::string_view tool_name);
  void close(std::vector<SseEvent>& out);
  void delta(std::vector<SseEvent>& out, std::string_view type, std::string_view field, std::string_view text);
  core::Status tool_fragment(std::vector<SseEvent>& out, int64_t index, std::string_view id, std::string_view name,
                             std::string_view arguments);

  std::string model_;                     // the client's alias
  std::vector<std::string> stop_sequences_;
  int64_t estimated_input_tokens_;
  bool started_ = false;
  bool ended_ = false;
  std::string message_id_;
  Block block_ = Block::none;
  int block_index_ = -1;    // of the open block, or of the last one closed
  int64_t tool_index_ = -1; // OpenAI index of the open tool call
  std::vector<int64_t> closed_tools_;
  std::string finish_reason_;
  std::string matched_stop_;
  std::optional<core::Usage> usage_;
  int64_t output_bytes_ = 0;
};

// {"type":"error","error":{"type":...,"message":...}} and its status. Types and statuses:
// invalid_request_error 400, authentication_error 401, permission_error 403, not_found_error 404,
// request_too_large 413, rate_limit_error 429, api_error 500 (and the gateway's own 5xx statuses for
// upstream faults and timeouts), overloaded_error 529 for `overloaded` and for a non-permanent
// `unavailable` (every deployment busy or cooling down: Anthropic clients back off and retry on 529).
// A permanent `unavailable` (nothing configured can serve) and `out_of_balance` stay 503 api_error:
// retrying soon will not help.
std::string anthropic_error_json(const core::Error& e);
int anthropic_status(const core::Error& e);

}  // namespace gateway
