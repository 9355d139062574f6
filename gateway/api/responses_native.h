#pragma once
// The Responses API relayed natively (providers::Provider::openai_responses): what the surface sends
// upstream and how the upstream's answer becomes the gateway's. The gateway owns the ids a client
// sees: every Response object carries the gateway's response id, the client's model name and its
// `store` / `previous_response_id`, and every event a sequence_number counting from 0 over the
// events the client received (one sequence even after a fail-over before content). Output items
// are stored in the form the translation reads back, so a conversation continues whichever way
// each turn was served. Pure functions and one small state machine; no I/O.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.h"
#include "core/result.h"
#include "core/usage.h"

namespace gateway {

// The client's body as relayed: a continuation's `input` is the stored conversation followed by
// this request's items (`prior_items_json` then `input_items_json`, both JSON arrays), since the
// vendor does not know the gateway's ids; previous_response_id is removed. Without prior items
// the body is the client's, previous_response_id removed. nullopt if the body is not an object.
std::optional<std::string> responses_native_body(std::string_view body, std::string_view prior_items_json,
                                                 std::string_view input_items_json);

// The body without the tools only a native relay can carry (built-in tools: any type other than
// "function") and without a tool_choice naming one: what routing and a translated attempt read when
// the client's body asks for them. nullopt when the body has none (or is not an object).
std::optional<std::string> without_builtin_tools(std::string_view body);

// What a native Response object is rewritten with.
struct ResponseIdentity {
  std::string id;                    // the gateway's resp_...
  std::string model;                 // the client's model name
  bool store = true;
  std::string previous_response_id;  // empty: null
};

// A Response object's text with the identity's members in place of the vendor's (nullopt: not an object).
std::optional<std::string> rewrite_native_response(std::string_view response_json, const ResponseIdentity& who);

// The `output` of a Response object, each item keeping only the members the translation reads
// (type, id, status, role, content, call_id, name, arguments, output, summary; parts: type, text,
// annotations, refusal, ...). Items of other types are kept whole. "[]" when there is none.
std::string native_output_items(std::string_view response_json);

// Rewrites one stream's events in the order they reach the client.
class NativeEventRewriter {
 public:
  explicit NativeEventRewriter(ResponseIdentity who) : who_(std::move(who)) {}
  // The event's data with the next sequence_number and (in a `response` member) the identity.
  // nullopt when the data is not a JSON object.
  std::optional<std::string> rewrite(std::string_view data);
  // response.failed as the stream's last event: the latest Response snapshot (or a minimal one)
  // with status failed, the error, the items completed so far and `usage` when counted.
  std::string failed(const core::Error& e, const std::optional<core::Usage>& usage);
  // The last Response object sent (rewritten), "" before any.
  const std::string& response() const { return response_; }
  int64_t next_sequence() const { return sequence_; }

 private:
  ResponseIdentity who_;
  int64_t sequence_ = 0;
  std::string response_;
  std::vector<std::string> done_items_;  // response.output_item.done items, in order
};

}  // namespace gateway
