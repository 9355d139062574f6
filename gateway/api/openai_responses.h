#pragma once
// The OpenAI Responses API surface (POST /v1/responses) on the chat pipeline: a Responses request
// (with the items of earlier responses it continues) is validated and rewritten as an OpenAI chat
// body, and the chat answer (whole, or chunk by chunk) is rewritten as a Response object or as the
// Responses event stream. Pure functions and one small state machine; no I/O.
//
// Decisions a client can observe (the tests pin each one):
// - Items become chat messages in order. An assistant `message`, the `function_call` items after
//   it and a `reasoning` item before them form one assistant chat message (content, tool_calls,
//   reasoning_content). A reasoning item that no assistant output follows is dropped; its
//   encrypted_content cannot be read by any upstream here and is refused.
// - `instructions` is the first (system) message; `developer` messages are system messages.
// - Every function_call must be answered by a function_call_output before the next message, and
//   every output must answer a call: chat upstreams refuse anything else, so the gateway refuses
//   it first, naming the call_id.
// - reasoning.effort is the thinking switch the vendors read: "none" turns thinking off
//   ({"thinking":{"type":"disabled"}}), any other effort turns it on; the levels are not told apart
//   (the vendors' levels differ). reasoning.summary is accepted and echoed: the summary returned is
//   the upstream's reasoning text as it came.
// - Refused with a 400 naming them: tools other than type "function" (unless a planned deployment
//   speaks the Responses API natively: the surface then routes without them and only native
//   attempts are made, openai_responses_surface.cpp), unknown members (top level,
//   items, content parts, text.format), `background: true`, `truncation: "auto"`, any `include`
//   value, text.verbosity, input_file and image file_id parts.
// - metadata is at most 16 string pairs (keys up to 64 characters, values up to 512) and is echoed.
#include <simdjson.h>

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

struct ResponsesRequest {
  core::ChatRequest chat;   // the chat body, parsed; chat.raw_body is that body
  std::string response_id;  // resp_...: the id the answer carries (the caller's)
  std::string model;        // the client's alias, echoed
  bool stream = false;
  bool store = true;
  std::string previous_response_id;  // empty when not given
  std::string metadata_json;         // the metadata object as echoed ("{}" when none)
  std::string input_items_json;      // this request's input items as GET .../input_items lists them
  int64_t estimated_input_tokens = 0;  // stands in for usage when the upstream reports none
  // The members of a Response object that echo the request (instructions, tools, text, ...), as
  // `"name":value` pairs joined by commas.
  std::string echo_json;
};

// The previous_response_id of a body, if it has one, so that the caller can load that response's
// items before translating. Errors as responses_to_chat reports them for that member (a body that is
// not a JSON object is left to responses_to_chat).
core::Result<std::optional<std::string>> responses_previous_id(std::string_view body);

// POST /v1/responses. `prior_items_json`: a JSON array of the items of the responses this one
// continues (their input items, then their output items), oldest first; "" or "[]" when none.
// `response_id` (resp_...) names the answer and stems the ids minted for items. Errors are
// bad_request with `param` set to the offending member's path (prior items: "previous_response_id").
core::Result<ResponsesRequest> responses_to_chat(std::string_view body, std::string_view prior_items_json,
                                                 std::string_view response_id);

// A Response object and its output items, as a store keeps them.
struct ResponseObject {
  std::string json;               // the whole Response object
  std::string output_items_json;  // its `output` array
};

// A non-streaming chat.completion -> a Response object created at `created_at` (seconds). An error
// (upstream server_error) if the body is not a completion.
core::Result<ResponseObject> chat_to_response(std::string_view chat_completion, const ResponsesRequest& req,
                                              int64_t created_at);

// Turns the chat chunks of one stream into the Responses event sequence, every event carrying its
// `type` and a `sequence_number` counting from 0:
//   response.created, response.in_progress, then per output item
//     response.output_item.added,
//       reasoning: response.reasoning_summary_part.added, response.reasoning_summary_text.delta*,
//                  response.reasoning_summary_text.done, response.reasoning_summary_part.done
//       message:   response.content_part.added, response.output_text.delta*, response.output_text.done,
//                  response.content_part.done
//       function_call: response.function_call_arguments.delta*, response.function_call_arguments.done
//     response.output_item.done,
//   and response.completed (response.incomplete when the output was cut by max_output_tokens or a
//   content filter), or at any point response.failed with the error in the response (nothing follows).
// A new item opens whenever the kind (reasoning, text, tool call) or the tool index changes.
class ResponsesStreamEncoder {
 public:
  // `req` gives the ids, the model, the echo and the input estimate (its chat body is not used).
  ResponsesStreamEncoder(const ResponsesRequest& req, int64_t created_at);

  // One chunk's JSON ("[DONE]" yields nothing). An error if the chunk is not JSON or breaks the
  // stream's shape (fragments of a tool call whose item was closed): the caller then calls fail().
  core::Result<std::vector<SseEvent>> feed(std::string_view chunk_json);
  // The end: closes the open item, then response.completed or response.incomplete. `usage`
  // overrides what the chunks reported; without either, output tokens are estimated.
  std::vector<SseEvent> finish(const std::optional<core::Usage>& usage = std::nullopt);
  // response.failed instead of the end (nothing more is sent after it); `usage` as for finish().
  std::vector<SseEvent> fail(const core::Error& error, const std::optional<core::Usage>& usage = std::nullopt);

  bool started() const { return started_; }
  bool ended() const { return ended_; }
  // The Response object as the last event carried it (status in_progress until the end).
  ResponseObject response() const;

 private:
  enum class Kind { reasoning, message, function_call };
  struct Item {
    Kind kind;
    std::string id;
    std::string text;     // reasoning or message text, function arguments
    std::string call_id;  // function_call
    std::string name;     // function_call
    int64_t tool_index = -1;
    bool done = false;
  };
  void start(std::vector<SseEvent>& out);
  void emit(std::vector<SseEvent>& out, std::string_view type, std::string_view rest);
  void open(std::vector<SseEvent>& out, Kind kind, int64_t tool_index, std::string_view call_id, std::string_view name);
  void close(std::vector<SseEvent>& out);
  void text_delta(std::vector<SseEvent>& out, Kind kind, std::string_view delta);
  core::Status feed_delta(std::vector<SseEvent>& out, simdjson::dom::element delta);
  core::Status tool_fragment(std::vector<SseEvent>& out, int64_t index, std::string_view id, std::string_view name,
                             std::string_view arguments);
  std::string item_ref(const Item& item) const;  // ,"item_id":...,"output_index":N
  std::string item_json(const Item& item, std::string_view status, bool whole) const;
  ResponseObject build(std::string_view status, std::string error, const core::Usage& u) const;
  core::Usage final_usage(const std::optional<core::Usage>& usage) const;

  ResponsesRequest req_;  // the ids, the model and the echo (no chat body)
  int64_t created_at_;
  int64_t estimated_input_tokens_;
  int64_t sequence_ = 0;
  bool started_ = false;
  bool ended_ = false;
  std::vector<Item> items_;
  bool open_ = false;  // items_.back() is open
  std::string finish_reason_;
  std::optional<core::Usage> usage_;
  int64_t output_bytes_ = 0;
  ResponseObject result_;  // set at the end
};

// "completed" or "incomplete" for a chat finish reason, with the incomplete reason (or "").
struct ResponseStatus {
  std::string_view status;
  std::string_view incomplete_reason;
};
ResponseStatus response_status(std::string_view finish_reason);

// A Response object's `usage` and a failed response's `error` as this surface writes them.
std::string responses_usage_json(const core::Usage& u);
std::string responses_failure_json(const core::Error& e);

}  // namespace gateway
