#include "gateway/api/openai_chat.h"

#include <simdjson.h>

#include <array>
#include <bit>
#include <charconv>
#include <cstdint>
#include <optional>

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

using core::json::type_name;

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

// Text shown in an error message: at most `limit` bytes, cut on a UTF-8 character boundary.
std::string shown(std::string_view s, size_t limit) {
  if (s.size() <= limit) return std::string(s);
  size_t n = limit;
  while (n > 0 && (static_cast<unsigned char>(s[n]) & 0xC0) == 0x80) --n;
  return std::string(s.substr(0, n)) + "...";
}

// An ambiguous body (a repeated member name, or a loose variant of one the gateway reads) found
// in the object at `base` ("$", "$.messages[1]", ...). `param` is the offending member's path
// without the leading "$.".
core::Error ambiguity_error(const core::json::Ambiguity& a, std::string_view base) {
  using Kind = core::json::Ambiguity::Kind;
  const auto [path, param] = core::json::ambiguity_place(a, base);
  std::string key;
  core::append_json_string(key, shown(a.key, 64));
  if (a.kind == Kind::duplicate)
    return bad("The request body has a duplicate member " + key + " at " + shown(path, 256) +
                   ": a member name may appear only once in an object (upstreams would read another value than "
                   "the gateway validated).",
               shown(param, 256), "duplicate_member");
  std::string like;
  core::append_json_string(like, a.like);
  return bad("The request body has a member " + key + " at " + shown(path, 256) + " that differs from " + like +
                 " only in letter case or separators; some upstreams read it as " + like + ". Use " + like + ".",
             shown(param, 256), "ambiguous_member");
}

// The number as the client wrote it, for messages.
std::string number_text(element e) {
  if (e.is_int64()) return std::to_string(int64_t(e.get_int64().value_unsafe()));
  if (e.is_uint64()) return std::to_string(uint64_t(e.get_uint64().value_unsafe()));
  char buf[32];
  auto res = std::to_chars(buf, buf + sizeof buf, e.get_double().value_unsafe());
  return std::string(buf, res.ptr);
}

std::string value_text(element e) { return is_number(e) ? number_text(e) : type_name(e); }

constexpr std::array<std::string_view, 2> kPartKeys{"type", "text"};
enum PartKey : size_t { p_type, p_text };

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
    const core::json::StrictMembers pm(kPartKeys, part.get_object().value_unsafe());
    if (pm.ambiguity()) return ambiguity_error(pm.ambiguity(), "$." + pp());
    element type;
    if (!pm.get(p_type, type) || !type.is_string()) return bad(pp() + ".type must be a string", pp() + ".type");
    std::string_view t = type.get_string().value_unsafe();
    if (t == "text") {
      element text;
      if (!pm.get(p_text, text) || !text.is_string()) return bad(pp() + ".text must be a string", pp() + ".text");
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

// Every top-level member the gateway reads or range-checks; loose variants of these names are
// refused. Other members pass through to the upstream untouched (checked for repeats only).
constexpr std::array<std::string_view, 23> kRequestKeys{
    "model",  "messages", "stream", "stream_options", "max_tokens", "max_completion_tokens", "temperature",
    "top_p",  "top_k",    "min_p",  "seed",           "stop",       "tools",                 "response_format",
    "thinking", "reasoning_effort", "enable_thinking", "thinking_budget", "n", "presence_penalty",
    "frequency_penalty", "logprobs", "top_logprobs"};
enum RequestKey : size_t {
  k_model, k_messages, k_stream, k_stream_options, k_max_tokens, k_max_completion_tokens, k_temperature,
  k_top_p, k_top_k, k_min_p, k_seed, k_stop, k_tools, k_response_format,
  k_thinking, k_reasoning_effort, k_enable_thinking, k_thinking_budget, k_n, k_presence_penalty,
  k_frequency_penalty, k_logprobs, k_top_logprobs
};
using TopMembers = core::json::StrictMembers<kRequestKeys.size()>;
// Members whose values the parser reads with StrictMembers of their own.
constexpr uint64_t kTopReadInside = (uint64_t{1} << k_messages) | (uint64_t{1} << k_stream_options) |
                                    (uint64_t{1} << k_response_format) | (uint64_t{1} << k_thinking);

std::string quoted_name(RequestKey k) { return "'" + std::string(kRequestKeys[k]) + "'"; }

core::Status read_messages(element v, core::ChatRequest& r) {
  if (!v.is_array()) return bad(std::string("'messages' must be an array, not ") + type_name(v), "messages");
  size_t idx = 0;
  for (element m : simdjson::dom::array(v)) {
    auto p = [idx] { return "messages[" + std::to_string(idx) + "]"; };  // for errors only
    if (!m.is_object()) return bad(p() + " must be an object", p());
    const core::json::StrictMembers mm(kMessageKeys, m.get_object().value_unsafe(), uint64_t{1} << m_content);
    if (mm.ambiguity()) return ambiguity_error(mm.ambiguity(), "$." + p());
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
  return core::ok_status();
}

constexpr std::array<std::string_view, 1> kStreamOptionKeys{"include_usage"};

core::Status read_stream(const TopMembers& top, core::ChatRequest& r) {
  element v;
  if (top.get(k_stream, v) && !v.is_null()) {
    if (!v.is_bool()) return bad(std::string("'stream' must be a boolean, not ") + type_name(v), "stream");
    r.stream = v.get_bool().value_unsafe();
  }
  if (top.get(k_stream_options, v) && !v.is_null()) {
    if (!v.is_object()) return bad("'stream_options' must be an object", "stream_options");
    const core::json::StrictMembers so(kStreamOptionKeys, v.get_object().value_unsafe());
    if (so.ambiguity()) return ambiguity_error(so.ambiguity(), "$.stream_options");
    element iu;
    if (so.get(0, iu)) {
      if (!iu.is_bool()) return bad("'stream_options.include_usage' must be a boolean", "stream_options.include_usage");
      r.include_usage = iu.get_bool().value_unsafe();
    }
  }
  return core::ok_status();
}

// A number member within [lo, hi]; absent or null leaves `out` alone. False (with `err` set) if
// out of range or not a number. Plain bool + out-parameter: these run a dozen times per request.
bool read_number(const TopMembers& top, RequestKey k, double lo, double hi, std::optional<double>& out, core::Error& err) {
  element v;
  if (!top.get(k, v) || v.is_null()) return true;
  const double d = is_number(v) ? as_double(v) : 0;
  if (!is_number(v) || !(d >= lo && d <= hi)) {
    char lo_s[32], hi_s[32];
    auto l = std::to_chars(lo_s, lo_s + sizeof lo_s, lo);
    auto h = std::to_chars(hi_s, hi_s + sizeof hi_s, hi);
    err = bad(quoted_name(k) + " must be a number from " + std::string(lo_s, l.ptr) + " to " + std::string(hi_s, h.ptr) +
                  ", not " + value_text(v),
              std::string(kRequestKeys[k]));
    return false;
  }
  out = d;
  return true;
}

// An integer member within [lo, hi] (integers written as 5.0 are not integers); as read_number.
bool read_integer(const TopMembers& top, RequestKey k, int64_t lo, int64_t hi, std::optional<int64_t>& out,
                  core::Error& err) {
  element v;
  if (!top.get(k, v) || v.is_null()) return true;
  const bool in_range = v.is_int64() && int64_t(v.get_int64().value_unsafe()) >= lo && int64_t(v.get_int64().value_unsafe()) <= hi;
  if (!in_range) {
    std::string what;
    if (lo == 1 && hi == INT64_MAX) what = "a positive integer";
    else what = "an integer from " + std::to_string(lo) + " to " + std::to_string(hi);
    err = bad(quoted_name(k) + " must be " + what + ", not " + value_text(v), std::string(kRequestKeys[k]));
    return false;
  }
  out = int64_t(v.get_int64().value_unsafe());
  return true;
}

// Sampling and length parameters, each range-checked with OpenAI's documented bounds (top_k and
// min_p as the local engine and Qwen take them).
constexpr uint64_t bit(RequestKey k) { return uint64_t{1} << k; }
constexpr uint64_t kSamplingKeys = bit(k_max_tokens) | bit(k_max_completion_tokens) | bit(k_temperature) | bit(k_top_p) |
                                   bit(k_top_k) | bit(k_min_p) | bit(k_seed) | bit(k_n) | bit(k_presence_penalty) |
                                   bit(k_frequency_penalty) | bit(k_logprobs) | bit(k_top_logprobs) | bit(k_thinking_budget);

core::Status read_sampling(const TopMembers& top, core::ChatRequest& r) {
  std::optional<int64_t> max_tokens, max_completion_tokens, n, top_logprobs, thinking_budget;
  std::optional<double> presence_penalty, frequency_penalty;
  core::Error err;
  // Only the members present are visited (most requests set one or two of these).
  for (uint64_t todo = top.present() & kSamplingKeys; todo != 0; todo &= todo - 1) {
    const auto k = static_cast<RequestKey>(std::countr_zero(todo));
    bool ok = true;
    switch (k) {
      case k_max_tokens: ok = read_integer(top, k, 1, INT64_MAX, max_tokens, err); break;
      case k_max_completion_tokens: ok = read_integer(top, k, 1, INT64_MAX, max_completion_tokens, err); break;
      case k_temperature: ok = read_number(top, k, 0, 2, r.temperature, err); break;
      case k_top_p: ok = read_number(top, k, 0, 1, r.top_p, err); break;
      case k_top_k: ok = read_integer(top, k, 0, INT32_MAX, r.top_k, err); break;
      case k_min_p: ok = read_number(top, k, 0, 1, r.min_p, err); break;
      case k_seed: ok = read_integer(top, k, INT64_MIN, INT64_MAX, r.seed, err); break;
      case k_n: ok = read_integer(top, k, 1, 128, n, err); break;
      case k_presence_penalty: ok = read_number(top, k, -2, 2, presence_penalty, err); break;
      case k_frequency_penalty: ok = read_number(top, k, -2, 2, frequency_penalty, err); break;
      case k_top_logprobs: ok = read_integer(top, k, 0, 20, top_logprobs, err); break;
      case k_thinking_budget: ok = read_integer(top, k, 1, INT64_MAX, thinking_budget, err); break;
      default: break;  // k_logprobs, below
    }
    if (!ok) return err;
  }
  // Upstreams honour one or the other; differing values could be priced on one and served on the other.
  if (max_tokens && max_completion_tokens && *max_tokens != *max_completion_tokens)
    return bad("'max_tokens' and 'max_completion_tokens' are both set, to different values; set one of them",
               "max_completion_tokens");
  r.max_tokens = max_completion_tokens ? max_completion_tokens : max_tokens;
  r.n = n.value_or(1);
  element v;
  if (top.get(k_logprobs, v) && !v.is_null() && !v.is_bool())
    return bad(std::string("'logprobs' must be a boolean, not ") + type_name(v), "logprobs");
  return core::ok_status();
}

core::Status read_stop(const TopMembers& top, core::ChatRequest& r) {
  element v;
  if (!top.get(k_stop, v) || v.is_null()) return core::ok_status();
  if (v.is_string()) {
    r.stop.emplace_back(std::string_view(v.get_string().value_unsafe()));
  } else if (v.is_array()) {
    for (element s : simdjson::dom::array(v)) {
      if (!s.is_string()) return bad("'stop' must be a string or an array of strings", "stop");
      r.stop.emplace_back(std::string_view(s.get_string().value_unsafe()));
    }
    if (r.stop.size() > 16) return bad("'stop' may hold at most 16 strings", "stop");
  } else {
    return bad("'stop' must be a string or an array of strings", "stop");
  }
  return core::ok_status();
}

constexpr std::array<std::string_view, 1> kTypeKey{"type"};

core::Status read_response_format(const TopMembers& top, core::ChatRequest& r) {
  element v;
  if (!top.get(k_response_format, v) || v.is_null()) return core::ok_status();
  if (!v.is_object())
    return bad(std::string("'response_format' must be an object such as {\"type\":\"json_object\"}, not ") + type_name(v),
               "response_format");
  const core::json::StrictMembers rf(kTypeKey, v.get_object().value_unsafe());
  if (rf.ambiguity()) return ambiguity_error(rf.ambiguity(), "$.response_format");
  element t;
  if (!rf.get(0, t) || !t.is_string())
    return bad("'response_format.type' must be a string such as \"text\", \"json_object\" or \"json_schema\"",
               "response_format.type");
  std::string_view tt = t.get_string().value_unsafe();
  r.wants_json = tt == "json_object" || tt == "json_schema";
  return core::ok_status();
}

// The reasoning switches of the vendors (DeepSeek/Kimi/GLM thinking.type, Qwen enable_thinking and
// thinking_budget, OpenAI-style reasoning_effort). Only a switch that asks for reasoning makes the
// request need a reasoning deployment; the off forms (false, {"type":"disabled"}, "none", null) do not.
core::Status read_reasoning(const TopMembers& top, core::ChatRequest& r) {
  element v;
  bool on = false, said = false;  // said: some switch was given (on or off)
  std::string level;
  if (top.get(k_enable_thinking, v) && !v.is_null()) {
    said = true;
    if (!v.is_bool()) return bad(std::string("'enable_thinking' must be a boolean, not ") + type_name(v), "enable_thinking");
    on |= v.get_bool().value_unsafe();
  }
  if (top.get(k_thinking, v) && !v.is_null()) {
    said = true;
    if (!v.is_object())
      return bad(std::string("'thinking' must be an object such as {\"type\":\"enabled\"}, not ") + type_name(v), "thinking");
    const core::json::StrictMembers th(kTypeKey, v.get_object().value_unsafe());
    if (th.ambiguity()) return ambiguity_error(th.ambiguity(), "$.thinking");
    element t;
    if (!th.get(0, t) || !t.is_string())
      return bad("'thinking.type' must be a string such as \"enabled\" or \"disabled\"", "thinking.type");
    on |= std::string_view(t.get_string().value_unsafe()) != "disabled";
  }
  if (top.get(k_reasoning_effort, v) && !v.is_null()) {
    if (!v.is_string() || v.get_string().value_unsafe().empty())
      return bad(std::string("'reasoning_effort' must be a string such as \"low\", \"medium\" or \"high\", not ") +
                     (v.is_string() ? "an empty string" : type_name(v)),
                 "reasoning_effort");
    level = std::string(v.get_string().value_unsafe());
    on |= level != "none";
  }
  // A budget for thinking (validated as a positive integer in read_sampling) asks for it.
  if (top.get(k_thinking_budget, v) && !v.is_null()) on = said = true;
  r.wants_reasoning = on;
  r.reasoning_effort = !level.empty() ? level : on ? "default" : said ? "none" : "";
  return core::ok_status();
}

simdjson::dom::parser make_request_parser() {
  simdjson::dom::parser p(simdjson::SIMDJSON_MAXSIZE_BYTES);
  // The depth bound is simdjson's: a document nested more than kMaxDepth levels fails to parse
  // with DEPTH_ERROR (no extra pass over the body). Capacity grows with the largest body seen.
  // If this fails (out of memory), parse() allocates later and fails the same way.
  [[maybe_unused]] auto e = p.allocate(4096, kMaxDepth);
  return p;
}

core::Status read_model(const TopMembers& top, core::ChatRequest& r) {
  element v;
  if (!top.get(k_model, v)) return bad("you must provide a model parameter", "model");
  if (!v.is_string()) return bad(std::string("'model' must be a string, not ") + type_name(v), "model");
  r.model = std::string(std::string_view(v.get_string().value_unsafe()));
  if (r.model.empty() || r.model.size() > 256) return bad("'model' must be 1 to 256 characters", "model");
  return core::ok_status();
}

core::Status read_tools(const TopMembers& top, core::ChatRequest& r) {
  element v;
  if (!top.get(k_tools, v) || v.is_null()) return core::ok_status();
  if (!v.is_array()) return bad("'tools' must be an array", "tools");
  r.has_tools = v.get_array().value_unsafe().size() > 0;
  return core::ok_status();
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
  // One pass over the top-level members that also refuses repeated names anywhere in the body
  // (the members read below check their own objects as they read them).
  const TopMembers top(kRequestKeys, root.get_object().value_unsafe(), kTopReadInside);
  if (top.ambiguity()) return ambiguity_error(top.ambiguity(), "$");
  if (auto s = read_model(top, r); !s) return s.error();
  element v;
  if (!top.get(k_messages, v)) return bad("Missing required parameter: 'messages'.", "messages");
  if (auto s = read_messages(v, r); !s) return s.error();
  for (auto step : {read_stream, read_sampling, read_stop, read_tools, read_response_format, read_reasoning})
    if (auto s = step(top, r); !s) return s.error();
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

}  // namespace gateway
