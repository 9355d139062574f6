// Answers of the Responses surface: a chat completion as a Response object, chat chunks as the
// Responses event stream (openai_responses.h).
#include <simdjson.h>

#include <algorithm>
#include <array>

#include "core/json_members.h"
#include "core/json_scan.h"
#include "core/json_writer.h"
#include "gateway/api/client_json.h"
#include "gateway/api/openai_responses.h"
#include "providers/openai_normalize.h"

namespace gateway {
namespace {

using simdjson::dom::element;
using client_json::append_int;
using client_json::upstream_fault;

std::string_view str(element e) { return e.get_string().value_unsafe(); }

std::string stem_of(std::string_view response_id) {
  return std::string(response_id.substr(response_id.rfind("resp_", 0) == 0 ? 5 : 0));
}

// An output item's id: its kind's prefix, the response's stem and its index in `output`.
std::string output_id(std::string_view prefix, std::string_view response_id, size_t index) {
  return std::string(prefix) + "_" + stem_of(response_id) + "_" + std::to_string(index);
}

}  // namespace

std::string responses_usage_json(const core::Usage& u) {
  std::string s = "{\"input_tokens\":";
  append_int(s, u.prompt_tokens);
  s += ",\"input_tokens_details\":{\"cached_tokens\":";
  append_int(s, u.cached_tokens);
  s += "},\"output_tokens\":";
  append_int(s, u.completion_tokens);
  s += ",\"output_tokens_details\":{\"reasoning_tokens\":";
  append_int(s, u.reasoning_tokens);
  s += "},\"total_tokens\":";
  append_int(s, u.total_tokens());
  s += '}';
  return s;
}

namespace {

// Usage when the upstream reported none: the gateway's estimates.
core::Usage estimated_usage(int64_t input_tokens, int64_t output_bytes) {
  core::Usage u;
  u.prompt_tokens = input_tokens;
  u.completion_tokens = (output_bytes + 3) / 4;
  return u;
}

core::Usage usage_of(element u) {
  if (!u.is_object()) return {};
  return providers::parse_usage_json(simdjson::minify(u));
}

std::string summary_part(std::string_view text) {
  return "{\"type\":\"summary_text\",\"text\":" + core::json_string(text) + "}";
}

std::string text_part(std::string_view text) {
  return "{\"type\":\"output_text\",\"annotations\":[],\"text\":" + core::json_string(text) + "}";
}

// Output items; `whole` false: as response.output_item.added shows them (no content yet).
std::string reasoning_item(std::string_view id, std::string_view text, bool whole) {
  return "{\"id\":" + core::json_string(id) + ",\"type\":\"reasoning\",\"summary\":[" +
         (whole ? summary_part(text) : std::string()) + "]}";
}

std::string message_item(std::string_view id, std::string_view status, std::string_view text, bool whole) {
  return "{\"id\":" + core::json_string(id) + ",\"type\":\"message\",\"status\":\"" + std::string(status) +
         "\",\"role\":\"assistant\",\"content\":[" + (whole ? text_part(text) : std::string()) + "]}";
}

std::string function_call_item(std::string_view id, std::string_view status, std::string_view call_id,
                               std::string_view name, std::string_view arguments) {
  return "{\"id\":" + core::json_string(id) + ",\"type\":\"function_call\",\"status\":\"" + std::string(status) +
         "\",\"call_id\":" + core::json_string(call_id) + ",\"name\":" + core::json_string(name) +
         ",\"arguments\":" + core::json_string(arguments) + "}";
}

// The parts of a Response object that change as it is answered.
struct ResponseState {
  std::string_view status;          // in_progress, completed, incomplete, failed
  std::string error = "null";       // {"code":...,"message":...}
  std::string incomplete = "null";  // {"reason":...}
  std::string output;               // comma-separated output items
  std::string usage = "null";
};

std::string response_object(const ResponsesRequest& req, int64_t created_at, const ResponseState& st) {
  std::string s = "{\"id\":" + core::json_string(req.response_id) + ",\"object\":\"response\",\"created_at\":";
  append_int(s, created_at);
  s += ",\"status\":\"" + std::string(st.status) + "\",\"background\":false,\"error\":" + st.error +
       ",\"incomplete_details\":" + st.incomplete + ",\"model\":" + core::json_string(req.model) + ",\"output\":[" +
       st.output + "]," + req.echo_json + ",\"usage\":" + st.usage + "}";
  return s;
}

void set_status(ResponseState& st, std::string_view finish_reason) {
  const ResponseStatus rs = response_status(finish_reason);
  st.status = rs.status;
  if (!rs.incomplete_reason.empty()) st.incomplete = "{\"reason\":\"" + std::string(rs.incomplete_reason) + "\"}";
}

// "server_error" or "rate_limit_exceeded": the codes a Response's error may carry for a failure
// the client did not cause.
}  // namespace

std::string responses_failure_json(const core::Error& e) {
  const char* code = e.kind == core::ErrorKind::rate_limited ? "rate_limit_exceeded" : "server_error";
  return "{\"code\":\"" + std::string(code) + "\",\"message\":" + core::json_string(e.message) + "}";
}

namespace {

constexpr std::array<std::string_view, 3> kCompletionKeys{"id", "choices", "usage"};
constexpr std::array<std::string_view, 3> kChoiceKeys{"message", "finish_reason", "usage"};
constexpr std::array<std::string_view, 3> kMessageKeys{"content", "reasoning_content", "tool_calls"};
constexpr std::array<std::string_view, 2> kToolCallKeys{"id", "function"};
constexpr std::array<std::string_view, 2> kFunctionKeys{"name", "arguments"};
constexpr std::array<std::string_view, 3> kChunkKeys{"id", "choices", "usage"};
constexpr std::array<std::string_view, 4> kChunkChoiceKeys{"delta", "finish_reason", "usage", "index"};
constexpr std::array<std::string_view, 3> kToolDeltaKeys{"index", "id", "function"};

std::string string_member(const auto& members, size_t i) {
  element v;
  return members.get(i, v) && v.is_string() ? std::string(str(v)) : std::string();
}

// The function_call items of a completion's tool_calls, appended to `out` from output index `next`.
core::Status append_calls(element calls, const ResponsesRequest& req, std::string_view status, ResponseState& st,
                          size_t& next) {
  for (element c : simdjson::dom::array(calls)) {
    if (!c.is_object()) return upstream_fault("The upstream returned a tool call that is not an object.");
    const core::json::Members cm(kToolCallKeys, c.get_object().value_unsafe());
    element fn;
    if (!cm.get(1, fn) || !fn.is_object()) return upstream_fault("The upstream returned a tool call without a function.");
    const core::json::Members fm(kFunctionKeys, fn.get_object().value_unsafe());
    std::string call_id = string_member(cm, 0), args = string_member(fm, 1);
    if (call_id.empty()) call_id = output_id("call", req.response_id, next);
    if (core::json::trim(args).empty()) args = "{}";
    if (!st.output.empty()) st.output += ',';
    st.output += function_call_item(output_id("fc", req.response_id, next), status, call_id, string_member(fm, 0), args);
    ++next;
  }
  return core::ok_status();
}

}  // namespace

ResponseStatus response_status(std::string_view finish_reason) {
  if (finish_reason == "length") return {"incomplete", "max_output_tokens"};
  if (finish_reason == "content_filter") return {"incomplete", "content_filter"};
  return {"completed", ""};
}

core::Result<ResponseObject> chat_to_response(std::string_view chat_completion, const ResponsesRequest& req,
                                              int64_t created_at) {
  thread_local simdjson::dom::parser parser = client_json::make_parser();
  element root;
  auto padded = core::json::padded_copy(chat_completion, simdjson::SIMDJSON_PADDING);
  if (parser.parse(padded.data(), padded.size(), false).get(root) || !root.is_object())
    return upstream_fault("The upstream answer is not a JSON object.");
  const core::json::Members top(kCompletionKeys, root.get_object().value_unsafe());
  element choices, choice, msg, x;
  if (!top.get(1, choices) || !choices.is_array() || simdjson::dom::array(choices).size() == 0 ||
      !(choice = simdjson::dom::array(choices).at(0).value_unsafe()).is_object())
    return upstream_fault("The upstream answer has no choices.");
  const core::json::Members cm(kChoiceKeys, choice.get_object().value_unsafe());
  if (!cm.get(0, msg) || !msg.is_object()) return upstream_fault("The upstream answer has no message.");
  const core::json::Members mm(kMessageKeys, msg.get_object().value_unsafe());

  ResponseState st;
  set_status(st, string_member(cm, 1));
  const std::string_view item_status = st.status == "completed" ? "completed" : "incomplete";
  size_t next = 0;
  int64_t output_bytes = 0;
  if (const std::string r = string_member(mm, 1); !r.empty()) {
    st.output += reasoning_item(output_id("rs", req.response_id, next++), r, true);
    output_bytes += static_cast<int64_t>(r.size());
  }
  if (const std::string t = string_member(mm, 0); !t.empty()) {
    if (!st.output.empty()) st.output += ',';
    st.output += message_item(output_id("msg", req.response_id, next++), item_status, t, true);
    output_bytes += static_cast<int64_t>(t.size());
  }
  if (mm.get(2, x) && x.is_array())
    if (auto s = append_calls(x, req, item_status, st, next); !s) return s.error();
  core::Usage u;
  if (top.get(2, x)) u = usage_of(x);
  if (!u.present && cm.get(2, x)) u = usage_of(x);  // Kimi: usage inside the choice
  if (!u.present) u = estimated_usage(req.estimated_input_tokens, output_bytes);
  st.usage = responses_usage_json(u);
  ResponseObject r;
  r.output_items_json = "[" + st.output + "]";
  r.json = response_object(req, created_at, st);
  return r;
}

// --- Stream ----------------------------------------------------------------------------------------

ResponsesStreamEncoder::ResponsesStreamEncoder(const ResponsesRequest& req, int64_t created_at)
    : created_at_(created_at), estimated_input_tokens_(req.estimated_input_tokens) {
  req_.response_id = req.response_id;
  req_.model = req.model;
  req_.echo_json = req.echo_json;
}

void ResponsesStreamEncoder::emit(std::vector<SseEvent>& out, std::string_view type, std::string_view rest) {
  std::string s = "{\"type\":\"" + std::string(type) + "\",\"sequence_number\":";
  append_int(s, sequence_++);
  s += rest;
  s += '}';
  out.push_back({std::string(type), std::move(s)});
}

std::string ResponsesStreamEncoder::item_ref(const Item& item) const {
  const size_t index = size_t(&item - items_.data());
  return ",\"item_id\":" + core::json_string(item.id) + ",\"output_index\":" + std::to_string(index);
}

std::string ResponsesStreamEncoder::item_json(const Item& item, std::string_view status, bool whole) const {
  switch (item.kind) {
    case Kind::reasoning: return reasoning_item(item.id, item.text, whole);
    case Kind::message: return message_item(item.id, status, item.text, whole);
    case Kind::function_call:
      return function_call_item(item.id, status, item.call_id, item.name, whole ? item.text : std::string());
  }
  return "null";
}

ResponseObject ResponsesStreamEncoder::build(std::string_view status, std::string error, const core::Usage& u) const {
  ResponseState st;
  set_status(st, finish_reason_);
  st.status = status;
  st.error = std::move(error);
  if (status != "incomplete") st.incomplete = "null";
  // Items closed in a completed (or failed) response are completed; the open one was cut off.
  for (const Item& item : items_) {
    if (!st.output.empty()) st.output += ',';
    const bool completed = item.done && status != "incomplete";
    st.output += item_json(item, completed ? "completed" : "incomplete", true);
  }
  st.usage = responses_usage_json(u);
  ResponseObject r;
  r.output_items_json = "[" + st.output + "]";
  r.json = response_object(req_, created_at_, st);
  return r;
}

core::Usage ResponsesStreamEncoder::final_usage(const std::optional<core::Usage>& usage) const {
  core::Usage u = usage ? *usage : usage_.value_or(core::Usage{});
  if (!u.present && !usage) u = estimated_usage(estimated_input_tokens_, output_bytes_);
  return u;
}

void ResponsesStreamEncoder::start(std::vector<SseEvent>& out) {
  started_ = true;
  ResponseState st;
  st.status = "in_progress";
  const std::string initial = response_object(req_, created_at_, st);
  emit(out, "response.created", ",\"response\":" + initial);
  emit(out, "response.in_progress", ",\"response\":" + initial);
}

void ResponsesStreamEncoder::open(std::vector<SseEvent>& out, Kind kind, int64_t tool_index, std::string_view call_id,
                                  std::string_view name) {
  close(out);
  constexpr std::array<std::string_view, 3> kPrefix{"rs", "msg", "fc"};
  Item item{kind, output_id(kPrefix[size_t(kind)], req_.response_id, items_.size()), "", std::string(call_id),
            std::string(name), tool_index, false};
  if (kind == Kind::function_call && item.call_id.empty()) item.call_id = output_id("call", req_.response_id, items_.size());
  items_.push_back(std::move(item));
  open_ = true;
  const Item& it = items_.back();
  emit(out, "response.output_item.added",
       ",\"output_index\":" + std::to_string(items_.size() - 1) + ",\"item\":" + item_json(it, "in_progress", false));
  if (kind == Kind::reasoning)
    emit(out, "response.reasoning_summary_part.added", item_ref(it) + ",\"summary_index\":0,\"part\":" + summary_part(""));
  if (kind == Kind::message)
    emit(out, "response.content_part.added", item_ref(it) + ",\"content_index\":0,\"part\":" + text_part(""));
}

void ResponsesStreamEncoder::close(std::vector<SseEvent>& out) {
  if (!open_) return;
  open_ = false;
  Item& it = items_.back();
  it.done = true;
  const std::string ref = item_ref(it);
  switch (it.kind) {
    case Kind::reasoning:
      emit(out, "response.reasoning_summary_text.done", ref + ",\"summary_index\":0,\"text\":" + core::json_string(it.text));
      emit(out, "response.reasoning_summary_part.done", ref + ",\"summary_index\":0,\"part\":" + summary_part(it.text));
      break;
    case Kind::message:
      emit(out, "response.output_text.done",
           ref + ",\"content_index\":0,\"text\":" + core::json_string(it.text) + ",\"logprobs\":[]");
      emit(out, "response.content_part.done", ref + ",\"content_index\":0,\"part\":" + text_part(it.text));
      break;
    case Kind::function_call:
      if (core::json::trim(it.text).empty()) it.text = "{}";
      emit(out, "response.function_call_arguments.done",
           ref + ",\"name\":" + core::json_string(it.name) + ",\"arguments\":" + core::json_string(it.text));
      break;
  }
  emit(out, "response.output_item.done",
       ",\"output_index\":" + std::to_string(items_.size() - 1) + ",\"item\":" + item_json(it, "completed", true));
}

void ResponsesStreamEncoder::text_delta(std::vector<SseEvent>& out, Kind kind, std::string_view delta) {
  if (!open_ || items_.back().kind != kind) open(out, kind, -1, {}, {});
  Item& it = items_.back();
  it.text += delta;
  output_bytes_ += static_cast<int64_t>(delta.size());
  if (kind == Kind::reasoning)
    emit(out, "response.reasoning_summary_text.delta",
         item_ref(it) + ",\"summary_index\":0,\"delta\":" + core::json_string(delta));
  else
    emit(out, "response.output_text.delta",
         item_ref(it) + ",\"content_index\":0,\"delta\":" + core::json_string(delta) + ",\"logprobs\":[]");
}

core::Status ResponsesStreamEncoder::tool_fragment(std::vector<SseEvent>& out, int64_t index, std::string_view id,
                                                   std::string_view name, std::string_view arguments) {
  const bool current = open_ && items_.back().kind == Kind::function_call && items_.back().tool_index == index;
  if (!current) {
    for (const Item& it : items_)
      if (it.kind == Kind::function_call && it.tool_index == index)
        return upstream_fault("The upstream interleaved the fragments of two tool calls.");
    open(out, Kind::function_call, index, id, name);
  }
  Item& it = items_.back();
  if (it.name.empty() && !name.empty()) it.name = std::string(name);
  if (arguments.empty()) return core::ok_status();
  it.text += arguments;
  output_bytes_ += static_cast<int64_t>(arguments.size());
  emit(out, "response.function_call_arguments.delta", item_ref(it) + ",\"delta\":" + core::json_string(arguments));
  return core::ok_status();
}


core::Result<std::vector<SseEvent>> ResponsesStreamEncoder::feed(std::string_view chunk_json) {
  std::vector<SseEvent> out;
  if (ended_ || chunk_json == "[DONE]") return out;
  thread_local simdjson::dom::parser parser = client_json::make_parser();
  element root;
  auto padded = core::json::padded_copy(chunk_json, simdjson::SIMDJSON_PADDING);
  if (parser.parse(padded.data(), padded.size(), false).get(root) || !root.is_object())
    return upstream_fault("The upstream sent a stream chunk that is not a JSON object.");
  const core::json::Members top(kChunkKeys, root.get_object().value_unsafe());
  element x;
  if (top.get(2, x) && x.is_object()) usage_ = usage_of(x);
  if (!started_) start(out);
  if (!top.get(1, x) || !x.is_array()) return out;
  for (element choice : simdjson::dom::array(x)) {
    if (!choice.is_object()) continue;
    const core::json::Members cm(kChunkChoiceKeys, choice.get_object().value_unsafe());
    element v;
    if (cm.get(3, v) && v.is_int64() && v.get_int64().value_unsafe() != 0) continue;  // n is always 1
    if (cm.get(2, v) && v.is_object()) usage_ = usage_of(v);                         // Kimi
    if (cm.get(0, v) && v.is_object())
      if (auto s = feed_delta(out, v); !s) return s.error();
    if (cm.get(1, v) && v.is_string()) finish_reason_ = std::string(str(v));
  }
  return out;
}

core::Status ResponsesStreamEncoder::feed_delta(std::vector<SseEvent>& out, element delta) {
  const core::json::Members dm(kMessageKeys, delta.get_object().value_unsafe());
  element d;
  if (dm.get(1, d) && d.is_string() && !str(d).empty()) text_delta(out, Kind::reasoning, str(d));
  if (dm.get(0, d) && d.is_string() && !str(d).empty()) text_delta(out, Kind::message, str(d));
  if (!dm.get(2, d) || !d.is_array()) return core::ok_status();
  for (element tc : simdjson::dom::array(d)) {
    if (!tc.is_object()) continue;
    const core::json::Members tm(kToolDeltaKeys, tc.get_object().value_unsafe());
    element idx, fn;
    const int64_t index = tm.get(0, idx) && idx.is_int64() ? int64_t(idx.get_int64().value_unsafe()) : 0;
    std::string name, args;
    if (tm.get(2, fn) && fn.is_object()) {
      const core::json::Members fm(kFunctionKeys, fn.get_object().value_unsafe());
      name = string_member(fm, 0);
      args = string_member(fm, 1);
    }
    if (auto s = tool_fragment(out, index, string_member(tm, 1), name, args); !s) return s;
  }
  return core::ok_status();
}

std::vector<SseEvent> ResponsesStreamEncoder::finish(const std::optional<core::Usage>& usage) {
  std::vector<SseEvent> out;
  if (ended_) return out;
  if (!started_) start(out);
  close(out);
  ended_ = true;
  const ResponseStatus rs = response_status(finish_reason_);
  result_ = build(rs.status, "null", final_usage(usage));
  emit(out, rs.status == "completed" ? "response.completed" : "response.incomplete", ",\"response\":" + result_.json);
  return out;
}

std::vector<SseEvent> ResponsesStreamEncoder::fail(const core::Error& error, const std::optional<core::Usage>& usage) {
  std::vector<SseEvent> out;
  if (ended_) return out;
  if (!started_) start(out);
  ended_ = true;
  result_ = build("failed", responses_failure_json(error), final_usage(usage));
  emit(out, "response.failed", ",\"response\":" + result_.json);
  return out;
}

ResponseObject ResponsesStreamEncoder::response() const {
  if (ended_) return result_;
  ResponseObject r = build("in_progress", "null", final_usage(std::nullopt));
  return r;
}

}  // namespace gateway
