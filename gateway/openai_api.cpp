#include "gateway/openai_api.h"

#include <simdjson.h>

#include <array>

#include "core/json_members.h"
#include "core/json_scan.h"
#include "core/json_writer.h"

namespace gateway {
namespace {

using simdjson::dom::element;
using core::ErrorKind;

constexpr size_t kMaxDepth = 64;

core::Error bad(std::string msg, std::string param = {}, std::string code = "invalid_request_error") {
  return core::make_error(ErrorKind::bad_request, std::move(msg), core::ErrorSource::client, std::move(code),
                          std::move(param));
}

const char* type_name(element e) {
  switch (e.type()) {
    case simdjson::dom::element_type::ARRAY: return "an array";
    case simdjson::dom::element_type::OBJECT: return "an object";
    case simdjson::dom::element_type::INT64:
    case simdjson::dom::element_type::UINT64: return "an integer";
    case simdjson::dom::element_type::DOUBLE: return "a number";
    case simdjson::dom::element_type::STRING: return "a string";
    case simdjson::dom::element_type::BOOL: return "a boolean";
    case simdjson::dom::element_type::NULL_VALUE: return "null";
  }
  return "unknown";
}

bool is_number(element e) { return e.is_int64() || e.is_uint64() || e.is_double(); }
double as_double(element e) {
  if (e.is_int64()) return double(int64_t(e.get_int64().value_unsafe()));
  if (e.is_uint64()) return double(uint64_t(e.get_uint64().value_unsafe()));
  return e.get_double().value_unsafe();
}

void count_text(core::ChatRequest& r, std::string_view s) {
  r.prompt_bytes += static_cast<int64_t>(s.size());
  // CJK Unified Ideographs, Hiragana/Katakana, Hangul: 3-byte UTF-8 sequences starting E3..ED, EA..
  for (size_t i = 0; i + 2 < s.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (c >= 0xE3 && c <= 0xED) { ++r.prompt_cjk_chars; i += 2; }
  }
}

core::Status parse_content(element content, core::ChatMessage& m, core::ChatRequest& r, size_t idx) {
  auto param_of = [idx] { return "messages[" + std::to_string(idx) + "].content"; };  // for errors only
  if (content.is_null()) return core::ok_status();
  if (content.is_string()) {
    m.content = std::string(std::string_view(content.get_string().value_unsafe()));
    count_text(r, m.content);
    return core::ok_status();
  }
  if (!content.is_array()) {
    std::string param = param_of();
    return bad(param + " must be a string or an array of content parts, not " + type_name(content), param);
  }
  size_t k = 0;
  for (element part : simdjson::dom::array(content)) {
    auto pp = [&param_of, k] { return param_of() + "[" + std::to_string(k) + "]"; };
    ++k;
    if (!part.is_object()) return bad(pp() + " must be an object", pp());
    element type;
    if (part["type"].get(type) != simdjson::SUCCESS || !type.is_string()) return bad(pp() + ".type must be a string", pp() + ".type");
    std::string_view t = type.get_string().value_unsafe();
    if (t == "text") {
      element text;
      if (part["text"].get(text) != simdjson::SUCCESS || !text.is_string()) return bad(pp() + ".text must be a string", pp() + ".text");
      std::string_view s = text.get_string().value_unsafe();
      m.content.append(s);
      count_text(r, s);
    } else if (t == "image_url" || t == "input_image" || t == "image") {
      r.has_images = true;
    }
  }
  return core::ok_status();
}


constexpr std::array<std::string_view, 5> kMessageKeys{"role", "content", "name", "tool_call_id", "tool_calls"};
enum MessageKey : size_t { m_role, m_content, m_name, m_tool_call_id, m_tool_calls };

constexpr std::array<std::string_view, 18> kRequestKeys{
    "model",  "messages", "stream", "stream_options", "max_tokens", "max_completion_tokens", "temperature",
    "top_p",  "top_k",    "min_p",  "seed",           "stop",       "tools",                 "response_format",
    "thinking", "reasoning_effort", "enable_thinking", "thinking_budget"};
enum RequestKey : size_t {
  k_model, k_messages, k_stream, k_stream_options, k_max_tokens, k_max_completion_tokens, k_temperature,
  k_top_p, k_top_k, k_min_p, k_seed, k_stop, k_tools, k_response_format,
  k_thinking, k_reasoning_effort, k_enable_thinking, k_thinking_budget
};

simdjson::dom::parser make_request_parser() {
  simdjson::dom::parser p(simdjson::SIMDJSON_MAXSIZE_BYTES);
  // The depth bound is simdjson's: a document nested more than kMaxDepth levels fails to parse
  // with DEPTH_ERROR (no extra pass over the body). Capacity grows with the largest body seen.
  // If this fails (out of memory), parse() allocates later and fails the same way.
  [[maybe_unused]] auto e = p.allocate(4096, kMaxDepth);
  return p;
}

}  // namespace

core::Result<core::ChatRequest> parse_chat_request(std::string body) {
  thread_local simdjson::dom::parser parser = make_request_parser();
  core::ChatRequest r;
  element root;
  // Parsed from a padded copy in a per-thread buffer: no allocation per request.
  auto padded = core::json::padded_copy(body, simdjson::SIMDJSON_PADDING);
  auto err = parser.parse(padded.data(), padded.size(), false).get(root);
  // simdjson validates UTF-8 and depth while parsing; report each clearly.
  if (err == simdjson::UTF8_ERROR) return bad("The request body is not valid UTF-8.");
  if (err == simdjson::DEPTH_ERROR) return bad("The request body is nested more than 64 levels deep.");
  if (err) return bad(std::string("We could not parse the JSON body of your request: ") + simdjson::error_message(err) + ".");
  if (!root.is_object()) return bad("The request body must be a JSON object.");
  const core::json::Members top(kRequestKeys, root.get_object().value_unsafe());
  element v;
  if (!top.get(k_model, v)) return bad("you must provide a model parameter", "model");
  if (!v.is_string()) return bad(std::string("'model' must be a string, not ") + type_name(v), "model");
  r.model = std::string(std::string_view(v.get_string().value_unsafe()));
  if (r.model.empty() || r.model.size() > 256) return bad("'model' must be 1 to 256 characters", "model");

  if (!top.get(k_messages, v)) return bad("Missing required parameter: 'messages'.", "messages");
  if (!v.is_array()) return bad(std::string("'messages' must be an array, not ") + type_name(v), "messages");
  size_t idx = 0;
  for (element m : simdjson::dom::array(v)) {
    auto p = [idx] { return "messages[" + std::to_string(idx) + "]"; };  // for errors only
    if (!m.is_object()) return bad(p() + " must be an object", p());
    const core::json::Members mm(kMessageKeys, m.get_object().value_unsafe());
    core::ChatMessage msg;
    element role;
    if (!mm.get(m_role, role) || !role.is_string()) return bad(p() + ".role must be a string", p() + ".role");
    msg.role = std::string(std::string_view(role.get_string().value_unsafe()));
    if (msg.role == "developer") msg.role = "system";
    if (msg.role != "system" && msg.role != "user" && msg.role != "assistant" && msg.role != "tool" && msg.role != "function")
      return bad(p() + ".role '" + msg.role + "' is not one of system, developer, user, assistant, tool", p() + ".role");
    element content;
    if (mm.get(m_content, content))
      if (auto s = parse_content(content, msg, r, idx); !s) return s.error();
    element x;
    if (mm.get(m_name, x) && x.is_string()) msg.name = std::string(std::string_view(x.get_string().value_unsafe()));
    if (mm.get(m_tool_call_id, x) && x.is_string())
      msg.tool_call_id = std::string(std::string_view(x.get_string().value_unsafe()));
    if (mm.get(m_tool_calls, x) && x.is_array()) msg.tool_calls_json = simdjson::minify(x);
    r.messages.push_back(std::move(msg));
    ++idx;
  }
  if (r.messages.empty()) return bad("'messages' must contain at least one message", "messages");

  if (top.get(k_stream, v) && !v.is_null()) {
    if (!v.is_bool()) return bad(std::string("'stream' must be a boolean, not ") + type_name(v), "stream");
    r.stream = v.get_bool().value_unsafe();
  }
  if (top.get(k_stream_options, v) && !v.is_null()) {
    if (!v.is_object()) return bad("'stream_options' must be an object", "stream_options");
    element iu;
    if (v["include_usage"].get(iu) == simdjson::SUCCESS) {
      if (!iu.is_bool()) return bad("'stream_options.include_usage' must be a boolean", "stream_options.include_usage");
      r.include_usage = iu.get_bool().value_unsafe();
    }
  }
  for (RequestKey k : {k_max_tokens, k_max_completion_tokens}) {
    if (top.get(k, v) && !v.is_null()) {
      const std::string key(kRequestKeys[k]);
      if (!v.is_int64() || int64_t(v.get_int64().value_unsafe()) < 1)
        return bad(std::string("'") + key + "' must be a positive integer, not " + type_name(v), key);
      r.max_tokens = int64_t(v.get_int64().value_unsafe());
    }
  }
  if (top.get(k_temperature, v) && !v.is_null()) {
    if (!is_number(v)) return bad(std::string("'temperature' must be a number, not ") + type_name(v), "temperature");
    double t = as_double(v);
    if (t < 0 || t > 2) return bad("'temperature' must be between 0 and 2", "temperature");
    r.temperature = t;
  }
  if (top.get(k_top_p, v) && !v.is_null()) {
    if (!is_number(v)) return bad(std::string("'top_p' must be a number, not ") + type_name(v), "top_p");
    r.top_p = as_double(v);
  }
  if (top.get(k_top_k, v) && !v.is_null()) {
    if (!v.is_int64()) return bad("'top_k' must be an integer", "top_k");
    r.top_k = int64_t(v.get_int64().value_unsafe());
  }
  if (top.get(k_min_p, v) && !v.is_null()) {
    if (!is_number(v)) return bad("'min_p' must be a number", "min_p");
    r.min_p = as_double(v);
  }
  if (top.get(k_seed, v) && !v.is_null()) {
    if (!v.is_int64()) return bad(std::string("'seed' must be an integer, not ") + type_name(v), "seed");
    r.seed = int64_t(v.get_int64().value_unsafe());
  }
  if (top.get(k_stop, v) && !v.is_null()) {
    if (v.is_string()) r.stop.emplace_back(std::string_view(v.get_string().value_unsafe()));
    else if (v.is_array()) {
      for (element s : simdjson::dom::array(v)) {
        if (!s.is_string()) return bad("'stop' must be a string or an array of strings", "stop");
        r.stop.emplace_back(std::string_view(s.get_string().value_unsafe()));
      }
      if (r.stop.size() > 16) return bad("'stop' may hold at most 16 strings", "stop");
    } else {
      return bad("'stop' must be a string or an array of strings", "stop");
    }
  }
  if (top.get(k_tools, v) && !v.is_null()) {
    if (!v.is_array()) return bad("'tools' must be an array", "tools");
    r.has_tools = v.get_array().value_unsafe().size() > 0;
  }
  if (top.get(k_response_format, v) && v.is_object()) {
    element t;
    if (v["type"].get(t) == simdjson::SUCCESS && t.is_string()) {
      std::string_view tt = t.get_string().value_unsafe();
      r.wants_json = tt == "json_object" || tt == "json_schema";
    }
  }
  for (RequestKey k : {k_thinking, k_reasoning_effort, k_enable_thinking, k_thinking_budget})
    if (top.get(k, v) && !v.is_null()) r.wants_reasoning = true;
  r.raw_body = std::move(body);
  return r;
}

std::string error_json(const core::Error& e) {
  std::string s = "{\"error\":{\"message\":";
  core::append_json_string(s, e.message);
  s += ",\"type\":";
  core::append_json_string(s, e.openai_type());
  s += ",\"param\":";
  if (e.param.empty()) s += "null";
  else core::append_json_string(s, e.param);
  s += ",\"code\":";
  if (e.code.empty()) core::append_json_string(s, core::to_string(e.kind));
  else core::append_json_string(s, e.code);
  s += "}}";
  return s;
}

std::string models_json(const std::vector<std::string>& names, int64_t created) {
  std::string s = "{\"object\":\"list\",\"data\":[";
  bool first = true;
  for (const auto& n : names) {
    if (!first) s.push_back(',');
    first = false;
    s += "{\"id\":";
    core::append_json_string(s, n);
    s += ",\"object\":\"model\",\"created\":" + std::to_string(created) + ",\"owned_by\":\"llm-gateway\"}";
  }
  s += "]}";
  return s;
}

}  // namespace gateway
