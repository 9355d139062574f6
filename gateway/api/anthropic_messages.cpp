#include "gateway/api/anthropic_messages.h"

#include <simdjson.h>

#include <algorithm>
#include <array>

#include "core/json_members.h"
#include "core/json_scan.h"
#include "core/json_writer.h"
#include "gateway/api/client_json.h"
#include "gateway/api/openai_chat.h"
#include "providers/openai_normalize.h"

namespace gateway {
namespace {

using simdjson::dom::element;
using core::ErrorKind;

using client_json::ambiguity_error;
using client_json::append_int;
using client_json::bad;
using client_json::json_quoted;
using client_json::make_parser;
using client_json::parse_client_body;
using client_json::shown;
using client_json::upstream_fault;
using core::json::type_name;

std::string_view str(element e) { return e.get_string().value_unsafe(); }

// --- Request: Anthropic -> OpenAI ------------------------------------------------------------------

// Top-level members. The first group is translated; service_tier is advisory (ignored); the last
// group has no OpenAI-chat equivalent and is refused when set. Anything else is refused too: a field
// silently dropped would change the answer without the client knowing.
constexpr std::array<std::string_view, 17> kTopKeys{
    "model", "max_tokens", "messages", "system", "tools", "tool_choice", "stop_sequences", "temperature",
    "top_p", "top_k", "metadata", "thinking", "stream", "service_tier", "container", "mcp_servers",
    "context_management"};
enum TopKey : size_t {
  t_model, t_max_tokens, t_messages, t_system, t_tools, t_tool_choice, t_stop_sequences, t_temperature,
  t_top_p, t_top_k, t_metadata, t_thinking, t_stream, t_service_tier, t_container, t_mcp_servers,
  t_context_management
};
constexpr uint64_t bit(size_t k) { return uint64_t{1} << k; }
// Members whose objects are read (and checked for repeats) by a StrictMembers of their own.
constexpr uint64_t kTopReadInside =
    bit(t_messages) | bit(t_system) | bit(t_tools) | bit(t_tool_choice) | bit(t_metadata) | bit(t_thinking);
using TopMembers = core::json::StrictMembers<kTopKeys.size()>;

// Every member any content block has; which ones a block may use depends on its type.
constexpr std::array<std::string_view, 12> kBlockKeys{"type", "text", "source", "id", "name", "input",
                                                      "tool_use_id", "content", "is_error", "thinking",
                                                      "signature", "data"};
enum BlockKey : size_t { b_type, b_text, b_source, b_id, b_name, b_input, b_tool_use_id, b_content, b_is_error,
                         b_thinking, b_signature, b_data };
constexpr uint64_t kBlockReadInside = bit(b_source) | bit(b_content);
using BlockMembers = core::json::StrictMembers<kBlockKeys.size()>;

constexpr std::array<std::string_view, 4> kSourceKeys{"type", "media_type", "data", "url"};
constexpr std::array<std::string_view, 2> kMessageKeys{"role", "content"};
constexpr std::array<std::string_view, 5> kToolKeys{"name", "description", "input_schema", "type", "cache_control"};
constexpr std::array<std::string_view, 3> kToolChoiceKeys{"type", "name", "disable_parallel_tool_use"};
constexpr std::array<std::string_view, 2> kThinkingKeys{"type", "budget_tokens"};
constexpr std::array<std::string_view, 1> kMetadataKeys{"user_id"};

// One OpenAI message's content parts (text and image_url), written as a plain string when it is a
// single text part (what every OpenAI-compatible server accepts) and as an array otherwise.
struct Parts {
  std::vector<std::string> json;  // each part's JSON object
  std::string only_text;          // the text when there is exactly one part and it is text
  bool single_text = false;

  void text(std::string_view s) {
    single_text = json.empty();
    only_text = s;
    std::string p = "{\"type\":\"text\",\"text\":";
    core::append_json_string(p, s);
    p += '}';
    json.push_back(std::move(p));
  }
  void image_url(std::string_view url) {
    single_text = false;
    std::string p = "{\"type\":\"image_url\",\"image_url\":{\"url\":";
    core::append_json_string(p, url);
    p += "}}";
    json.push_back(std::move(p));
  }
  void write(std::string& out) const {
    if (json.empty()) {
      out += "null";
    } else if (json.size() == 1 && single_text) {
      core::append_json_string(out, only_text);
    } else {
      out += '[';
      for (size_t i = 0; i < json.size(); ++i) {
        if (i) out += ',';
        out += json[i];
      }
      out += ']';
    }
  }
};

struct Writer {
  std::string messages;  // the OpenAI messages, comma-separated, without the brackets
  // tool_use ids of the previous assistant turn that its next user turn must answer.
  std::vector<std::string> pending_tools;
  void begin_message(std::string_view role) {
    if (!messages.empty()) messages += ',';
    messages += "{\"role\":\"";
    messages += role;
    messages += '"';
  }
};

bool is_user(std::string_view role) { return role == "user"; }

bool is_allowed_media_type(std::string_view t) {
  return t == "image/jpeg" || t == "image/png" || t == "image/gif" || t == "image/webp";
}

core::Status read_image(const BlockMembers& bm, const std::string& p, Parts& parts) {
  element src;
  if (!bm.get(b_source, src) || !src.is_object())
    return bad(p + ".source must be an object such as {\"type\":\"base64\",...}", p + ".source");
  const core::json::StrictMembers sm(kSourceKeys, src.get_object().value_unsafe());
  if (sm.ambiguity()) return ambiguity_error(sm.ambiguity(), "$." + p + ".source");
  element type, x;
  if (!sm.get(0, type) || !type.is_string())
    return bad(p + ".source.type must be \"base64\" or \"url\"", p + ".source.type");
  const std::string_view t = str(type);
  if (t == "base64") {
    element media, data;
    if (!sm.get(1, media) || !media.is_string() || !is_allowed_media_type(str(media)))
      return bad(p + ".source.media_type must be one of image/jpeg, image/png, image/gif, image/webp",
                 p + ".source.media_type");
    if (!sm.get(2, data) || !data.is_string() || str(data).empty())
      return bad(p + ".source.data must be a non-empty base64 string", p + ".source.data");
    std::string url = "data:";
    url += str(media);
    url += ";base64,";
    url += str(data);
    parts.image_url(url);
    return core::ok_status();
  }
  if (t == "url") {
    if (!sm.get(3, x) || !x.is_string() || str(x).empty())
      return bad(p + ".source.url must be a non-empty string", p + ".source.url");
    parts.image_url(str(x));
    return core::ok_status();
  }
  return bad(p + ".source.type " + json_quoted(t) + " cannot be sent to this deployment; use \"base64\" or \"url\"",
             p + ".source.type");
}

core::Status read_text(const BlockMembers& bm, const std::string& p, Parts& parts) {
  element text;
  if (!bm.get(b_text, text) || !text.is_string()) return bad(p + ".text must be a string", p + ".text");
  if (str(text).empty()) return bad(p + ".text: text content blocks must be non-empty", p + ".text");
  parts.text(str(text));
  return core::ok_status();
}

// The content of a tool_result: a string, or text blocks (images cannot travel in an OpenAI tool
// message).
core::Status read_tool_result_content(element c, const std::string& p, std::string& out) {
  if (c.is_string()) {
    out += str(c);
    return core::ok_status();
  }
  if (!c.is_array()) return bad(p + " must be a string or an array of text blocks, not " + type_name(c), p);
  size_t k = 0;
  for (element b : simdjson::dom::array(c)) {
    const std::string bp = p + "[" + std::to_string(k++) + "]";
    if (!b.is_object()) return bad(bp + " must be an object", bp);
    const BlockMembers bm(kBlockKeys, b.get_object().value_unsafe(), kBlockReadInside);
    if (bm.ambiguity()) return ambiguity_error(bm.ambiguity(), "$." + bp);
    element type, text;
    if (!bm.get(b_type, type) || !type.is_string()) return bad(bp + ".type must be a string", bp + ".type");
    if (str(type) != "text")
      return bad(bp + ".type " + json_quoted(str(type)) +
                     ": only text can be returned in a tool_result on this deployment (OpenAI tool messages carry "
                     "text only)",
                 bp + ".type");
    if (!bm.get(b_text, text) || !text.is_string()) return bad(bp + ".text must be a string", bp + ".text");
    if (!out.empty() && k > 1) out += '\n';
    out += str(text);
  }
  return core::ok_status();
}

core::Status read_tool_result(const BlockMembers& bm, const std::string& p, Writer& w) {
  element id, x;
  if (!bm.get(b_tool_use_id, id) || !id.is_string() || str(id).empty())
    return bad(p + ".tool_use_id must be a non-empty string", p + ".tool_use_id");
  const std::string tool_id(str(id));
  auto it = std::find(w.pending_tools.begin(), w.pending_tools.end(), tool_id);
  if (it == w.pending_tools.end())
    return bad(p + ".tool_use_id " + json_quoted(tool_id) +
                   " does not match a tool_use block of the previous assistant message (or was answered already)",
               p + ".tool_use_id");
  w.pending_tools.erase(it);
  bool is_error = false;
  if (bm.get(b_is_error, x) && !x.is_null()) {
    if (!x.is_bool()) return bad(p + ".is_error must be a boolean", p + ".is_error");
    is_error = x.get_bool().value_unsafe();
  }
  std::string text = is_error ? "[tool error] " : "";
  if (bm.get(b_content, x) && !x.is_null())
    if (auto s = read_tool_result_content(x, p + ".content", text); !s) return s;
  w.begin_message("tool");
  w.messages += ",\"tool_call_id\":";
  core::append_json_string(w.messages, tool_id);
  w.messages += ",\"content\":";
  core::append_json_string(w.messages, text);
  w.messages += '}';
  return core::ok_status();
}

// What an assistant turn collects besides its text parts.
struct AssistantExtras {
  std::string reasoning;
  std::string tool_calls;  // comma-separated OpenAI tool call objects
  std::vector<std::string> tool_ids;
};

core::Status read_tool_use(const BlockMembers& bm, const std::string& p, AssistantExtras& a) {
  element id, name, input;
  if (!bm.get(b_id, id) || !id.is_string() || str(id).empty())
    return bad(p + ".id must be a non-empty string", p + ".id");
  if (!bm.get(b_name, name) || !name.is_string() || str(name).empty())
    return bad(p + ".name must be a non-empty string", p + ".name");
  if (!bm.get(b_input, input) || !input.is_object()) return bad(p + ".input must be an object", p + ".input");
  const std::string tool_id(str(id));
  if (std::find(a.tool_ids.begin(), a.tool_ids.end(), tool_id) != a.tool_ids.end())
    return bad(p + ".id " + json_quoted(tool_id) + " is used by another tool_use block of this message", p + ".id");
  a.tool_ids.push_back(tool_id);
  if (!a.tool_calls.empty()) a.tool_calls += ',';
  a.tool_calls += "{\"id\":";
  core::append_json_string(a.tool_calls, tool_id);
  a.tool_calls += ",\"type\":\"function\",\"function\":{\"name\":";
  core::append_json_string(a.tool_calls, str(name));
  a.tool_calls += ",\"arguments\":";
  core::append_json_string(a.tool_calls, simdjson::minify(input));
  a.tool_calls += "}}";
  return core::ok_status();
}

core::Status read_thinking(const BlockMembers& bm, const std::string& p, AssistantExtras& a) {
  element t;
  if (!bm.get(b_thinking, t) || !t.is_string()) return bad(p + ".thinking must be a string", p + ".thinking");
  // The signature (if any) is dropped: an OpenAI-side upstream neither checks nor needs it.
  if (!a.reasoning.empty()) a.reasoning += '\n';
  a.reasoning += str(t);
  return core::ok_status();
}

// One block of a message: text and images join `parts`, tool_result blocks are written at once as
// tool messages, an assistant's tool_use and thinking go to `extra`.
core::Status read_block(element b, const std::string& bp, std::string_view role, Writer& w, Parts& parts,
                        AssistantExtras& extra) {
  if (!b.is_object()) return bad(bp + " must be an object", bp);
  const BlockMembers bm(kBlockKeys, b.get_object().value_unsafe(), kBlockReadInside);
  if (bm.ambiguity()) return ambiguity_error(bm.ambiguity(), "$." + bp);
  element type;
  if (!bm.get(b_type, type) || !type.is_string()) return bad(bp + ".type must be a string", bp + ".type");
  const std::string_view t = str(type);
  const bool user = is_user(role);
  if (t == "text") return read_text(bm, bp, parts);
  if (t == "image" && user) return read_image(bm, bp, parts);
  if (t == "tool_result" && user) return read_tool_result(bm, bp, w);
  if (t == "tool_use" && !user) return read_tool_use(bm, bp, extra);
  if (t == "thinking" && !user) return read_thinking(bm, bp, extra);
  if (t == "redacted_thinking" && !user) return core::ok_status();  // ciphertext only Anthropic can read
  if (t == "image" || t == "tool_result" || t == "tool_use" || t == "thinking" || t == "redacted_thinking")
    return bad(bp + ": a block of type " + json_quoted(t) + " cannot appear in a message with role " + json_quoted(role),
               bp + ".type");
  return bad(bp + ".type " + json_quoted(t) + " is not a content block this deployment can take (text, image, "
             "tool_use, tool_result, thinking, redacted_thinking)",
             bp + ".type");
}

// The user message after its tool messages (if it has more than tool results).
core::Status write_user_turn(const std::string& p, const Parts& parts, Writer& w) {
  if (!w.pending_tools.empty())
    return bad(p + " lacks a tool_result for the tool_use " + json_quoted(w.pending_tools.front()) +
                   " of the previous assistant message: each tool_use must be answered in the next message",
               p);
  if (parts.json.empty()) return core::ok_status();
  w.begin_message("user");
  w.messages += ",\"content\":";
  parts.write(w.messages);
  w.messages += '}';
  return core::ok_status();
}

core::Status write_assistant_turn(const std::string& p, const Parts& parts, AssistantExtras& extra, Writer& w,
                                  bool last) {
  if (!extra.tool_calls.empty() && last)
    return bad(p + " ends the conversation with tool_use blocks that no tool_result answers", p);
  w.begin_message("assistant");
  w.messages += ",\"content\":";
  if (parts.json.empty() && extra.tool_calls.empty()) w.messages += "\"\"";
  else parts.write(w.messages);
  if (!extra.reasoning.empty()) {
    w.messages += ",\"reasoning_content\":";
    core::append_json_string(w.messages, extra.reasoning);
  }
  if (!extra.tool_calls.empty()) w.messages += ",\"tool_calls\":[" + extra.tool_calls + "]";
  w.messages += '}';
  w.pending_tools = std::move(extra.tool_ids);
  return core::ok_status();
}

core::Status read_blocks(element content, const std::string& p, std::string_view role, Writer& w, bool last) {
  Parts parts;
  AssistantExtras extra;
  size_t k = 0;
  for (element b : simdjson::dom::array(content))
    if (auto s = read_block(b, p + "[" + std::to_string(k++) + "]", role, w, parts, extra); !s) return s;
  return is_user(role) ? write_user_turn(p, parts, w) : write_assistant_turn(p, parts, extra, w, last);
}

core::Status read_messages(element v, Writer& w) {
  if (!v.is_array()) return bad(std::string("'messages' must be an array, not ") + type_name(v), "messages");
  const size_t n = simdjson::dom::array(v).size();
  if (n == 0) return bad("'messages' must contain at least one message", "messages");
  size_t idx = 0;
  for (element m : simdjson::dom::array(v)) {
    const std::string p = "messages[" + std::to_string(idx) + "]";
    const bool last = ++idx == n;
    if (!m.is_object()) return bad(p + " must be an object", p);
    const core::json::StrictMembers mm(kMessageKeys, m.get_object().value_unsafe(), bit(1));
    if (mm.ambiguity()) return ambiguity_error(mm.ambiguity(), "$." + p);
    element role, content;
    if (!mm.get(0, role) || !role.is_string()) return bad(p + ".role must be a string", p + ".role");
    const std::string_view r = str(role);
    if (r != "user" && r != "assistant")
      return bad(p + ".role " + json_quoted(r) + " must be \"user\" or \"assistant\" (the system prompt goes in 'system')",
                 p + ".role");
    if (!mm.get(1, content)) return bad(p + ".content is required", p + ".content");
    if (!is_user(r) && !w.pending_tools.empty())
      return bad(p + " follows an assistant message whose tool_use " + json_quoted(w.pending_tools.front()) +
                     " was not answered: a user message with its tool_result must come first",
                 p);
    if (content.is_string()) {
      const bool allowed_empty = last && r == "assistant";  // an empty prefill is harmless
      if (str(content).empty() && !allowed_empty) return bad(p + ".content must not be empty", p + ".content");
      if (is_user(r) && !w.pending_tools.empty())
        return bad(p + ".content lacks a tool_result for the tool_use " + json_quoted(w.pending_tools.front()) +
                       " of the previous assistant message",
                   p + ".content");
      w.pending_tools.clear();
      w.begin_message(r);
      w.messages += ",\"content\":";
      core::append_json_string(w.messages, str(content));
      w.messages += '}';
      continue;
    }
    if (!content.is_array())
      return bad(p + ".content must be a string or an array of content blocks, not " + type_name(content), p + ".content");
    if (simdjson::dom::array(content).size() == 0) return bad(p + ".content must not be empty", p + ".content");
    if (auto s = read_blocks(content, p + ".content", r, w, last); !s) return s;
  }
  return core::ok_status();
}

core::Status read_system(const TopMembers& top, std::string& out) {
  element v;
  if (!top.get(t_system, v) || v.is_null()) return core::ok_status();
  Parts parts;
  if (v.is_string()) {
    if (!str(v).empty()) parts.text(str(v));
  } else if (v.is_array()) {
    size_t k = 0;
    for (element b : simdjson::dom::array(v)) {
      const std::string bp = "system[" + std::to_string(k++) + "]";
      if (!b.is_object()) return bad(bp + " must be an object", bp);
      const BlockMembers bm(kBlockKeys, b.get_object().value_unsafe(), kBlockReadInside);
      if (bm.ambiguity()) return ambiguity_error(bm.ambiguity(), "$." + bp);
      element type;
      if (!bm.get(b_type, type) || !type.is_string() || str(type) != "text")
        return bad(bp + ".type must be \"text\" (the system prompt holds text blocks only)", bp + ".type");
      if (auto s = read_text(bm, bp, parts); !s) return s;
    }
  } else {
    return bad(std::string("'system' must be a string or an array of text blocks, not ") + type_name(v), "system");
  }
  if (parts.json.empty()) return core::ok_status();
  out += "{\"role\":\"system\",\"content\":";
  parts.write(out);
  out += '}';
  return core::ok_status();
}

bool valid_tool_name(std::string_view n) {
  if (n.empty() || n.size() > 64) return false;
  for (char c : n)
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-'))
      return false;
  return true;
}

core::Status read_tools(const TopMembers& top, std::string& out, std::vector<std::string>& names) {
  element v;
  if (!top.get(t_tools, v) || v.is_null()) return core::ok_status();
  if (!v.is_array()) return bad(std::string("'tools' must be an array, not ") + type_name(v), "tools");
  size_t k = 0;
  for (element t : simdjson::dom::array(v)) {
    const std::string p = "tools[" + std::to_string(k++) + "]";
    if (!t.is_object()) return bad(p + " must be an object", p);
    const core::json::StrictMembers tm(kToolKeys, t.get_object().value_unsafe());
    if (tm.ambiguity()) return ambiguity_error(tm.ambiguity(), "$." + p);
    element x;
    if (tm.get(3, x) && !x.is_null()) {
      if (!x.is_string()) return bad(p + ".type must be a string", p + ".type");
      if (str(x) != "custom")
        return bad(p + " is Anthropic's built-in tool " + json_quoted(str(x)) +
                       ", which this deployment cannot run; define it as a custom tool with an input_schema",
                   p + ".type", "unsupported_tool");
    }
    element name, schema;
    if (!tm.get(0, name) || !name.is_string() || !valid_tool_name(str(name)))
      return bad(p + ".name must be 1 to 64 characters of a-z, A-Z, 0-9, '_' and '-'", p + ".name");
    if (!tm.get(2, schema) || !schema.is_object()) return bad(p + ".input_schema must be an object", p + ".input_schema");
    names.emplace_back(str(name));
    if (!out.empty()) out += ',';
    out += "{\"type\":\"function\",\"function\":{\"name\":";
    core::append_json_string(out, str(name));
    if (tm.get(1, x) && !x.is_null()) {
      if (!x.is_string()) return bad(p + ".description must be a string", p + ".description");
      out += ",\"description\":";
      core::append_json_string(out, str(x));
    }
    out += ",\"parameters\":" + simdjson::minify(schema) + "}}";
  }
  return core::ok_status();
}

// tool_choice -> OpenAI's tool_choice (auto / required / none / a named function) and
// parallel_tool_calls:false for disable_parallel_tool_use.
core::Status read_tool_choice(const TopMembers& top, const std::vector<std::string>& tools, std::string& out) {
  element v;
  if (!top.get(t_tool_choice, v) || v.is_null()) return core::ok_status();
  if (!v.is_object()) return bad("'tool_choice' must be an object such as {\"type\":\"auto\"}", "tool_choice");
  const core::json::StrictMembers cm(kToolChoiceKeys, v.get_object().value_unsafe());
  if (cm.ambiguity()) return ambiguity_error(cm.ambiguity(), "$.tool_choice");
  element type, x;
  if (!cm.get(0, type) || !type.is_string())
    return bad("'tool_choice.type' must be one of auto, any, tool, none", "tool_choice.type");
  const std::string_view t = str(type);
  if ((t == "any" || t == "tool") && tools.empty())
    return bad("'tool_choice' of type " + json_quoted(t) + " needs 'tools'", "tool_choice.type");
  out += ",\"tool_choice\":";
  if (t == "auto") out += "\"auto\"";
  else if (t == "any") out += "\"required\"";
  else if (t == "none") out += "\"none\"";
  else if (t == "tool") {
    if (!cm.get(1, x) || !x.is_string()) return bad("'tool_choice.name' must be a string", "tool_choice.name");
    if (std::find(tools.begin(), tools.end(), str(x)) == tools.end())
      return bad("'tool_choice.name' " + json_quoted(str(x)) + " is not one of the tools defined in 'tools'", "tool_choice.name");
    out += "{\"type\":\"function\",\"function\":{\"name\":";
    core::append_json_string(out, str(x));
    out += "}}";
  } else {
    return bad("'tool_choice.type' " + json_quoted(t) + " is not one of auto, any, tool, none", "tool_choice.type");
  }
  if (cm.get(2, x) && !x.is_null()) {
    if (!x.is_bool())
      return bad("'tool_choice.disable_parallel_tool_use' must be a boolean", "tool_choice.disable_parallel_tool_use");
    if (x.get_bool().value_unsafe() && t != "none") out += ",\"parallel_tool_calls\":false";
  }
  return core::ok_status();
}

// A number member within [lo, hi] (Anthropic's bounds for temperature and top_p), copied as written.
core::Status copy_number(const TopMembers& top, TopKey k, std::string_view range, double lo, double hi,
                         std::string& out) {
  element v;
  if (!top.get(k, v) || v.is_null()) return core::ok_status();
  const bool num = v.is_int64() || v.is_uint64() || v.is_double();
  double d = 0;
  if (v.is_double()) d = v.get_double().value_unsafe();
  else if (v.is_int64()) d = double(v.get_int64().value_unsafe());
  else if (v.is_uint64()) d = double(v.get_uint64().value_unsafe());
  if (!num || !(d >= lo && d <= hi))
    return bad("'" + std::string(kTopKeys[k]) + "' must be a number from " + std::string(range) + ", not " +
                   (num ? simdjson::minify(v) : std::string(type_name(v))),
               std::string(kTopKeys[k]));
  out += ",\"";
  out += kTopKeys[k];
  out += "\":" + simdjson::minify(v);
  return core::ok_status();
}

// A non-negative integer member ("5.0" is not one); false with `err` set otherwise.
bool read_int(element v, std::string_view name, int64_t lo, int64_t& out, core::Error& err) {
  if (!v.is_int64() || v.get_int64().value_unsafe() < lo) {
    err = bad("'" + std::string(name) + "' must be an integer of at least " + std::to_string(lo) + ", not " +
                  (v.is_int64() || v.is_uint64() || v.is_double() ? simdjson::minify(v) : std::string(type_name(v))),
              std::string(name));
    return false;
  }
  out = v.get_int64().value_unsafe();
  return true;
}

core::Status read_stop_sequences(const TopMembers& top, std::vector<std::string>& stops, std::string& out) {
  element v;
  if (!top.get(t_stop_sequences, v) || v.is_null()) return core::ok_status();
  if (!v.is_array()) return bad("'stop_sequences' must be an array of strings", "stop_sequences");
  size_t k = 0;
  for (element s : simdjson::dom::array(v)) {
    const std::string p = "stop_sequences[" + std::to_string(k++) + "]";
    if (!s.is_string() || str(s).empty()) return bad(p + " must be a non-empty string", p);
    stops.emplace_back(str(s));
  }
  if (stops.size() > 16) return bad("'stop_sequences' may hold at most 16 strings on this deployment", "stop_sequences");
  if (stops.empty()) return core::ok_status();
  out += ",\"stop\":[";
  for (size_t i = 0; i < stops.size(); ++i) {
    if (i) out += ',';
    core::append_json_string(out, stops[i]);
  }
  out += ']';
  return core::ok_status();
}

// thinking {type: enabled, budget_tokens} | {type: adaptive} | {type: disabled} -> the thinking
// switch DeepSeek, Kimi and GLM read (openai_chat.cpp counts it as asking for reasoning).
core::Status read_thinking_switch(const TopMembers& top, std::optional<int64_t> max_tokens, bool& on, std::string& out) {
  element v;
  if (!top.get(t_thinking, v) || v.is_null()) return core::ok_status();
  if (!v.is_object()) return bad("'thinking' must be an object such as {\"type\":\"enabled\",\"budget_tokens\":2048}", "thinking");
  const core::json::StrictMembers th(kThinkingKeys, v.get_object().value_unsafe());
  if (th.ambiguity()) return ambiguity_error(th.ambiguity(), "$.thinking");
  element type, budget;
  if (!th.get(0, type) || !type.is_string())
    return bad("'thinking.type' must be \"enabled\", \"adaptive\" or \"disabled\"", "thinking.type");
  const std::string_view t = str(type);
  if (t == "disabled") {
    out += ",\"thinking\":{\"type\":\"disabled\"}";
    return core::ok_status();
  }
  if (t == "adaptive") {  // the model chooses its budget: thinking on, no budget
    on = true;
    out += ",\"thinking\":{\"type\":\"enabled\"}";
    return core::ok_status();
  }
  if (t != "enabled")
    return bad("'thinking.type' " + json_quoted(t) + " is not \"enabled\", \"adaptive\" or \"disabled\"", "thinking.type");
  if (!th.get(1, budget)) return bad("'thinking.budget_tokens' is required when thinking is enabled", "thinking.budget_tokens");
  int64_t b = 0;
  core::Error err;
  if (!read_int(budget, "thinking.budget_tokens", 1024, b, err)) return err;
  if (max_tokens && b >= *max_tokens)
    return bad("'thinking.budget_tokens' (" + std::to_string(b) + ") must be less than 'max_tokens' (" +
                   std::to_string(*max_tokens) + ")",
               "thinking.budget_tokens");
  on = true;
  out += ",\"thinking\":{\"type\":\"enabled\",\"budget_tokens\":";
  append_int(out, b);
  out += '}';
  return core::ok_status();
}

core::Status read_metadata(const TopMembers& top, std::string& out) {
  element v;
  if (!top.get(t_metadata, v) || v.is_null()) return core::ok_status();
  if (!v.is_object()) return bad("'metadata' must be an object", "metadata");
  for (auto field : simdjson::dom::object(v))
    if (field.key != "user_id")
      return bad("'metadata." + shown(field.key) + "' is not a metadata field (only user_id is)",
                 "metadata." + shown(field.key));
  const core::json::StrictMembers mm(kMetadataKeys, v.get_object().value_unsafe());
  if (mm.ambiguity()) return ambiguity_error(mm.ambiguity(), "$.metadata");
  element id;
  if (!mm.get(0, id) || id.is_null()) return core::ok_status();
  if (!id.is_string() || str(id).size() > 256)
    return bad("'metadata.user_id' must be a string of at most 256 characters", "metadata.user_id");
  out += ",\"user\":";
  core::append_json_string(out, str(id));
  return core::ok_status();
}

// Members outside the list, and the listed ones that cannot be expressed, are refused by name.
core::Status refuse_unsupported(element root, const TopMembers& top) {
  for (auto field : simdjson::dom::object(root)) {
    if (std::find(kTopKeys.begin(), kTopKeys.end(), field.key) == kTopKeys.end())
      return bad("'" + shown(field.key) + "' is not a Messages API parameter this deployment can translate for "
                 "its OpenAI-compatible upstream",
                 shown(field.key), "unsupported_parameter");
  }
  for (TopKey k : {t_container, t_mcp_servers, t_context_management}) {
    element v;
    if (top.get(k, v) && !v.is_null())
      return bad("'" + std::string(kTopKeys[k]) + "' is not supported by this deployment (the OpenAI-compatible "
                 "upstream it uses has no equivalent)",
                 std::string(kTopKeys[k]), "unsupported_parameter");
  }
  return core::ok_status();
}

enum class Purpose { message, count_tokens };

core::Status read_model(const TopMembers& top, TranslatedRequest& tr) {
  element v;
  if (!top.get(t_model, v)) return bad("'model' is required", "model");
  if (!v.is_string() || str(v).empty() || str(v).size() > 256)
    return bad("'model' must be a string of 1 to 256 characters", "model");
  tr.model = std::string(str(v));
  return core::ok_status();
}

// Required on /v1/messages; count_tokens bodies have none (absent or null).
core::Status read_max_tokens(const TopMembers& top, Purpose purpose, std::optional<int64_t>& max_tokens) {
  element v;
  const bool given = top.get(t_max_tokens, v) && !(purpose == Purpose::count_tokens && v.is_null());
  if (!given) {
    if (purpose == Purpose::message) return bad("'max_tokens' is required", "max_tokens");
    return core::ok_status();
  }
  int64_t n = 0;
  core::Error err;
  if (!read_int(v, "max_tokens", 1, n, err)) return err;
  max_tokens = n;
  return core::ok_status();
}

// "messages":[system?, ...] into `out`.
core::Status write_messages(const TopMembers& top, std::string& out) {
  out += ",\"messages\":[";
  if (auto s = read_system(top, out); !s) return s;
  element v;
  if (!top.get(t_messages, v)) return bad("'messages' is required", "messages");
  Writer w;
  if (auto s = read_messages(v, w); !s) return s;
  if (out.back() != '[' && !w.messages.empty()) out += ',';
  out += w.messages;
  out += ']';
  return core::ok_status();
}

core::Status write_sampling(const TopMembers& top, TranslatedRequest& tr, std::string& out) {
  if (auto s = copy_number(top, t_temperature, "0 to 1", 0, 1, out); !s) return s;
  if (auto s = copy_number(top, t_top_p, "0 to 1", 0, 1, out); !s) return s;
  element v;
  if (top.get(t_top_k, v) && !v.is_null()) {
    int64_t k = 0;
    core::Error err;
    if (!read_int(v, "top_k", 0, k, err)) return err;
    out += ",\"top_k\":";
    append_int(out, k);
  }
  return read_stop_sequences(top, tr.stop_sequences, out);
}

core::Status write_tools(const TopMembers& top, std::string& out) {
  std::string tools;
  std::vector<std::string> tool_names;
  if (auto s = read_tools(top, tools, tool_names); !s) return s;
  if (!tools.empty()) out += ",\"tools\":[" + tools + "]";
  return read_tool_choice(top, tool_names, out);
}

core::Status write_stream(const TopMembers& top, Purpose purpose, TranslatedRequest& tr, std::string& out) {
  element v;
  if (top.get(t_stream, v) && !v.is_null()) {
    if (!v.is_bool()) return bad(std::string("'stream' must be a boolean, not ") + type_name(v), "stream");
    tr.stream = purpose == Purpose::message && v.get_bool().value_unsafe();
  }
  // Usage always asked for: the answer's message_delta carries it.
  if (tr.stream) out += ",\"stream\":true,\"stream_options\":{\"include_usage\":true}";
  return core::ok_status();
}

core::Result<TranslatedRequest> translate(std::string_view body, Purpose purpose, bool defer_unsupported = false) {
  thread_local simdjson::dom::parser parser = make_parser();
  element root;
  if (auto s = parse_client_body(parser, body, root); !s) return s.error();
  const TopMembers top(kTopKeys, root.get_object().value_unsafe(), kTopReadInside);
  if (top.ambiguity()) return ambiguity_error(top.ambiguity(), "$");
  TranslatedRequest tr;
  if (auto s = refuse_unsupported(root, top); !s) {
    if (!defer_unsupported) return s.error();
    tr.untranslatable = s.error();
  }
  std::optional<int64_t> max_tokens;
  if (auto s = read_model(top, tr); !s) return s.error();
  if (auto s = read_max_tokens(top, purpose, max_tokens); !s) return s.error();
  std::string out = "{\"model\":";
  core::append_json_string(out, tr.model);
  if (auto s = write_messages(top, out); !s) return s.error();
  if (max_tokens) {
    out += ",\"max_tokens\":";
    append_int(out, *max_tokens);
  }
  if (auto s = write_stream(top, purpose, tr, out); !s) return s.error();
  if (auto s = write_sampling(top, tr, out); !s) return s.error();
  if (auto s = write_tools(top, out); !s) return s.error();
  if (auto s = read_metadata(top, out); !s) return s.error();
  if (auto s = read_thinking_switch(top, max_tokens, tr.thinking, out); !s) return s.error();
  element v;
  if (top.get(t_service_tier, v) && !v.is_null() && !v.is_string())
    return bad("'service_tier' must be a string", "service_tier");  // advisory: checked, not forwarded
  out += '}';

  // The OpenAI surface reads the result: one source of truth for the request's features (token
  // estimate, tools, images, reasoning) and a check that the translation is a body it accepts.
  auto chat = parse_chat_request(std::move(out));
  if (!chat.ok()) {
    core::Error e = std::move(chat).error();
    e.log_detail = "the translated Anthropic request was refused by the OpenAI parser";
    return e;
  }
  tr.chat = std::move(chat).value();
  return tr;
}

// --- Answers: OpenAI -> Anthropic ------------------------------------------------------------------

// "msg_" and the upstream's id with only [A-Za-z0-9_-] kept, so the id is traceable in upstream logs.
std::string message_id(std::string_view upstream_id) {
  std::string id = "msg_";
  for (char c : upstream_id)
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-') id += c;
  if (id.size() == 4) id += "gateway";
  return id;
}

void append_usage(std::string& s, const core::Usage& u) {
  s += "{\"input_tokens\":";
  append_int(s, u.uncached_prompt_tokens());
  s += ",\"cache_creation_input_tokens\":";
  append_int(s, u.cache_write_tokens);
  s += ",\"cache_read_input_tokens\":";
  append_int(s, u.cached_tokens);
  s += ",\"output_tokens\":";
  append_int(s, u.completion_tokens);
  s += '}';
}

// Usage when the upstream reported none: the gateway's estimates, marked as such by present=false.
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

// The stop string that ended the answer, when the upstream says (vLLM and SGLang put it in
// choices[].stop_reason); empty if unknown or not one the client asked for.
std::string matched_stop(element choice, const std::vector<std::string>& stops) {
  element r;
  if (!choice.is_object() || choice["stop_reason"].get(r) != simdjson::SUCCESS || !r.is_string()) return {};
  const std::string_view s = str(r);
  return std::find(stops.begin(), stops.end(), s) != stops.end() ? std::string(s) : std::string();
}

void append_stop(std::string& s, std::string_view finish_reason, const std::string& stop, bool tools) {
  std::string_view reason = anthropic_stop_reason(finish_reason, !stop.empty());
  if (tools && reason == "end_turn") reason = "tool_use";  // vendors that say "stop" after tool calls
  s += "\"stop_reason\":\"";
  s += reason;
  s += "\",\"stop_sequence\":";
  if (reason == "stop_sequence") core::append_json_string(s, stop);
  else s += "null";
}

constexpr std::array<std::string_view, 4> kCompletionKeys{"id", "choices", "usage", "model"};
constexpr std::array<std::string_view, 3> kChoiceKeys{"message", "finish_reason", "usage"};
constexpr std::array<std::string_view, 3> kMessageOutKeys{"content", "reasoning_content", "tool_calls"};
constexpr std::array<std::string_view, 2> kToolCallKeys{"id", "function"};
constexpr std::array<std::string_view, 2> kFunctionKeys{"name", "arguments"};

std::string string_member(const auto& members, size_t i) {
  element v;
  return members.get(i, v) && v.is_string() ? std::string(str(v)) : std::string();
}

// A tool call's arguments as the JSON object Anthropic's `input` holds ("" is {}).
core::Status append_tool_input(std::string& s, std::string_view arguments) {
  if (arguments.find_first_not_of(" \t\r\n") == std::string_view::npos) {
    s += "{}";
    return core::ok_status();
  }
  thread_local simdjson::dom::parser args_parser = make_parser();
  element v;
  auto padded = core::json::padded_copy(arguments, simdjson::SIMDJSON_PADDING);
  if (args_parser.parse(padded.data(), padded.size(), false).get(v) || !v.is_object())
    return upstream_fault("The upstream returned tool call arguments that are not a JSON object.");
  s += simdjson::minify(v);
  return core::ok_status();
}

core::Status append_tool_uses(std::string& s, element calls, const std::string& msg_id) {
  size_t k = 0;
  for (element c : simdjson::dom::array(calls)) {
    if (!c.is_object()) return upstream_fault("The upstream returned a tool call that is not an object.");
    const core::json::Members cm(kToolCallKeys, c.get_object().value_unsafe());
    element fn;
    if (!cm.get(1, fn) || !fn.is_object()) return upstream_fault("The upstream returned a tool call without a function.");
    const core::json::Members fm(kFunctionKeys, fn.get_object().value_unsafe());
    std::string id = string_member(cm, 0);
    if (id.empty()) id = "toolu_" + msg_id.substr(4) + "_" + std::to_string(k);
    ++k;
    s += ",{\"type\":\"tool_use\",\"id\":";
    core::append_json_string(s, id);
    s += ",\"name\":";
    core::append_json_string(s, string_member(fm, 0));
    s += ",\"input\":";
    if (auto st = append_tool_input(s, string_member(fm, 1)); !st) return st;
    s += '}';
  }
  return core::ok_status();
}

// --- Stream events ---------------------------------------------------------------------------------

SseEvent event(std::string_view name, std::string data) { return {std::string(name), std::move(data)}; }

std::string block_event(std::string_view type, int index) {
  std::string s = "{\"type\":\"";
  s += type;
  s += "\",\"index\":";
  append_int(s, index);
  return s;
}

constexpr std::array<std::string_view, 3> kChunkKeys{"id", "choices", "usage"};
constexpr std::array<std::string_view, 4> kChunkChoiceKeys{"delta", "finish_reason", "usage", "index"};
constexpr std::array<std::string_view, 3> kDeltaKeys{"content", "reasoning_content", "tool_calls"};
constexpr std::array<std::string_view, 3> kToolDeltaKeys{"index", "id", "function"};

}  // namespace

core::Result<TranslatedRequest> anthropic_to_openai(std::string_view body) { return translate(body, Purpose::message); }

core::Result<TranslatedRequest> anthropic_to_openai_for_relay(std::string_view body) {
  return translate(body, Purpose::message, true);
}

core::Result<TranslatedRequest> anthropic_count_tokens_request(std::string_view body) {
  return translate(body, Purpose::count_tokens);
}

std::string count_tokens_json(const TranslatedRequest& req) {
  std::string s = "{\"input_tokens\":";
  append_int(s, core::estimate_prompt_tokens(req.chat));
  s += '}';
  return s;
}

std::string_view anthropic_stop_reason(std::string_view finish_reason, bool stop_sequence_matched) {
  if (finish_reason == "length") return "max_tokens";
  if (finish_reason == "tool_calls" || finish_reason == "function_call") return "tool_use";
  if (finish_reason == "content_filter") return "refusal";
  return stop_sequence_matched ? "stop_sequence" : "end_turn";
}

core::Result<std::string> openai_to_anthropic_response(std::string_view openai_completion, const TranslatedRequest& req) {
  thread_local simdjson::dom::parser parser = make_parser();
  element root;
  auto padded = core::json::padded_copy(openai_completion, simdjson::SIMDJSON_PADDING);
  if (parser.parse(padded.data(), padded.size(), false).get(root) || !root.is_object())
    return upstream_fault("The upstream answer is not a JSON object.");
  const core::json::Members top(kCompletionKeys, root.get_object().value_unsafe());
  element choices, choice, msg, x;
  if (!top.get(1, choices) || !choices.is_array() || simdjson::dom::array(choices).size() == 0 ||
      !(choice = simdjson::dom::array(choices).at(0).value_unsafe()).is_object())
    return upstream_fault("The upstream answer has no choices.");
  const core::json::Members cm(kChoiceKeys, choice.get_object().value_unsafe());
  if (!cm.get(0, msg) || !msg.is_object()) return upstream_fault("The upstream answer has no message.");
  const core::json::Members mm(kMessageOutKeys, msg.get_object().value_unsafe());

  const std::string id = message_id(string_member(top, 0));
  std::string s = "{\"id\":";
  core::append_json_string(s, id);
  s += ",\"type\":\"message\",\"role\":\"assistant\",\"model\":";
  core::append_json_string(s, req.model);
  s += ",\"content\":[";
  const size_t content_start = s.size();
  int64_t output_bytes = 0;
  if (const std::string r = string_member(mm, 1); !r.empty()) {
    s += ",{\"type\":\"thinking\",\"thinking\":";
    core::append_json_string(s, r);
    s += ",\"signature\":\"\"}";
    output_bytes += static_cast<int64_t>(r.size());
  }
  if (const std::string t = string_member(mm, 0); !t.empty()) {
    s += ",{\"type\":\"text\",\"text\":";
    core::append_json_string(s, t);
    s += '}';
    output_bytes += static_cast<int64_t>(t.size());
  }
  const bool tools = mm.get(2, x) && x.is_array() && simdjson::dom::array(x).size() > 0;
  if (tools)
    if (auto st = append_tool_uses(s, x, id); !st) return st.error();
  if (s.size() > content_start) s.erase(content_start, 1);  // the first block's leading comma
  s += "],";
  append_stop(s, string_member(cm, 1), matched_stop(choice, req.stop_sequences), tools);
  s += ",\"usage\":";
  core::Usage u;
  if (top.get(2, x)) u = usage_of(x);
  if (!u.present && cm.get(2, x)) u = usage_of(x);  // Kimi: usage inside the choice
  if (!u.present) u = estimated_usage(core::estimate_prompt_tokens(req.chat), output_bytes);
  append_usage(s, u);
  s += '}';
  return s;
}

AnthropicStreamEncoder::AnthropicStreamEncoder(const TranslatedRequest& req, int64_t estimated_input_tokens)
    : model_(req.model), stop_sequences_(req.stop_sequences), estimated_input_tokens_(estimated_input_tokens) {}

void AnthropicStreamEncoder::start(std::vector<SseEvent>& out, std::string_view upstream_id) {
  started_ = true;
  message_id_ = message_id(upstream_id);
  std::string s = "{\"type\":\"message_start\",\"message\":{\"id\":";
  core::append_json_string(s, message_id_);
  s += ",\"type\":\"message\",\"role\":\"assistant\",\"model\":";
  core::append_json_string(s, model_);
  s += ",\"content\":[],\"stop_reason\":null,\"stop_sequence\":null,\"usage\":";
  // Input tokens as known now: the upstream's count if the first chunk carries usage, else the estimate.
  core::Usage u;
  if (usage_ && usage_->present) u = *usage_;
  else u.prompt_tokens = estimated_input_tokens_;
  u.completion_tokens = 0;
  append_usage(s, u);
  s += "}}";
  out.push_back(event("message_start", std::move(s)));
  out.push_back(event("ping", "{\"type\":\"ping\"}"));
}

void AnthropicStreamEncoder::open(std::vector<SseEvent>& out, Block kind, std::string_view tool_id,
                                  std::string_view tool_name) {
  close(out);
  block_ = kind;
  ++block_index_;
  std::string s = block_event("content_block_start", block_index_);
  s += ",\"content_block\":";
  switch (kind) {
    case Block::thinking: s += "{\"type\":\"thinking\",\"thinking\":\"\",\"signature\":\"\"}"; break;
    case Block::text: s += "{\"type\":\"text\",\"text\":\"\"}"; break;
    case Block::tool:
      s += "{\"type\":\"tool_use\",\"id\":";
      core::append_json_string(s, tool_id);
      s += ",\"name\":";
      core::append_json_string(s, tool_name);
      s += ",\"input\":{}}";
      break;
    case Block::none: break;
  }
  s += '}';
  out.push_back(event("content_block_start", std::move(s)));
}

void AnthropicStreamEncoder::close(std::vector<SseEvent>& out) {
  if (block_ == Block::none) return;
  // Anthropic sends a thinking block's signature last; ours is empty (nothing upstream signs it).
  if (block_ == Block::thinking) delta(out, "signature_delta", "signature", "");
  if (block_ == Block::tool) closed_tools_.push_back(tool_index_);
  out.push_back(event("content_block_stop", block_event("content_block_stop", block_index_) + "}"));
  block_ = Block::none;
  tool_index_ = -1;
}

void AnthropicStreamEncoder::delta(std::vector<SseEvent>& out, std::string_view type, std::string_view field,
                                   std::string_view text) {
  std::string s = block_event("content_block_delta", block_index_);
  s += ",\"delta\":{\"type\":\"";
  s += type;
  s += "\",\"";
  s += field;
  s += "\":";
  core::append_json_string(s, text);
  s += "}}";
  out.push_back(event("content_block_delta", std::move(s)));
}

core::Status AnthropicStreamEncoder::tool_fragment(std::vector<SseEvent>& out, int64_t index, std::string_view id,
                                                   std::string_view name, std::string_view arguments) {
  if (block_ != Block::tool || tool_index_ != index) {
    if (std::find(closed_tools_.begin(), closed_tools_.end(), index) != closed_tools_.end())
      return upstream_fault("The upstream interleaved the fragments of two tool calls.");
    const std::string made_id = id.empty() ? "toolu_" + message_id_.substr(4) + "_" + std::to_string(index) : "";
    open(out, Block::tool, id.empty() ? std::string_view(made_id) : id, name);
    tool_index_ = index;
  }
  if (!arguments.empty()) delta(out, "input_json_delta", "partial_json", arguments);
  return core::ok_status();
}

core::Result<std::vector<SseEvent>> AnthropicStreamEncoder::feed(std::string_view chunk_json) {
  std::vector<SseEvent> out;
  if (ended_ || chunk_json == "[DONE]") return out;
  thread_local simdjson::dom::parser parser = make_parser();
  element root;
  auto padded = core::json::padded_copy(chunk_json, simdjson::SIMDJSON_PADDING);
  if (parser.parse(padded.data(), padded.size(), false).get(root) || !root.is_object())
    return upstream_fault("The upstream sent a stream chunk that is not a JSON object.");
  const core::json::Members top(kChunkKeys, root.get_object().value_unsafe());
  element x;
  if (top.get(2, x) && x.is_object()) usage_ = usage_of(x);
  if (!started_) start(out, string_member(top, 0));
  if (!top.get(1, x) || !x.is_array()) return out;
  for (element choice : simdjson::dom::array(x)) {
    if (!choice.is_object()) continue;
    const core::json::Members cm(kChunkChoiceKeys, choice.get_object().value_unsafe());
    element v;
    if (cm.get(3, v) && v.is_int64() && v.get_int64().value_unsafe() != 0) continue;  // n is always 1
    if (cm.get(2, v) && v.is_object()) usage_ = usage_of(v);  // Kimi
    if (cm.get(0, v) && v.is_object()) {
      const core::json::Members dm(kDeltaKeys, v.get_object().value_unsafe());
      element d;
      if (dm.get(1, d) && d.is_string() && !str(d).empty()) {
        if (block_ != Block::thinking) open(out, Block::thinking, {}, {});
        delta(out, "thinking_delta", "thinking", str(d));
        output_bytes_ += static_cast<int64_t>(str(d).size());
      }
      if (dm.get(0, d) && d.is_string() && !str(d).empty()) {
        if (block_ != Block::text) open(out, Block::text, {}, {});
        delta(out, "text_delta", "text", str(d));
        output_bytes_ += static_cast<int64_t>(str(d).size());
      }
      if (dm.get(2, d) && d.is_array()) {
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
          output_bytes_ += static_cast<int64_t>(args.size());
          if (auto s = tool_fragment(out, index, string_member(tm, 1), name, args); !s) return s.error();
        }
      }
    }
    if (cm.get(1, v) && v.is_string()) {
      finish_reason_ = std::string(str(v));
      matched_stop_ = matched_stop(choice, stop_sequences_);
    }
  }
  return out;
}

std::vector<SseEvent> AnthropicStreamEncoder::finish(const std::optional<core::Usage>& usage) {
  std::vector<SseEvent> out;
  if (ended_) return out;
  if (!started_) start(out, {});
  const bool tools = block_ == Block::tool || !closed_tools_.empty();
  close(out);
  ended_ = true;
  core::Usage u = usage ? *usage : usage_.value_or(core::Usage{});
  if (!u.present && !usage) u = estimated_usage(estimated_input_tokens_, output_bytes_);
  std::string s = "{\"type\":\"message_delta\",\"delta\":{";
  append_stop(s, finish_reason_, matched_stop_, tools);
  s += "},\"usage\":";
  append_usage(s, u);
  s += '}';
  out.push_back(event("message_delta", std::move(s)));
  out.push_back(event("message_stop", "{\"type\":\"message_stop\"}"));
  return out;
}

std::vector<SseEvent> AnthropicStreamEncoder::fail(const core::Error& error) {
  std::vector<SseEvent> out;
  if (ended_) return out;
  ended_ = true;
  out.push_back(event("error", anthropic_error_json(error)));
  return out;
}

namespace {

struct ErrorShape {
  const char* type;
  int status;
};

ErrorShape error_shape(const core::Error& e) {
  using K = ErrorKind;
  const bool upstream = e.source == core::ErrorSource::upstream || e.source == core::ErrorSource::local;
  switch (e.kind) {
    case K::bad_request:
    case K::context_too_long:
    case K::content_filter: return {"invalid_request_error", 400};
    // An upstream's key or model problem is the operator's, not the client's (502, as on the OpenAI surface).
    case K::auth: return upstream ? ErrorShape{"api_error", 502} : ErrorShape{"authentication_error", 401};
    case K::forbidden: return {"permission_error", 403};
    case K::not_found: return upstream ? ErrorShape{"api_error", 502} : ErrorShape{"not_found_error", 404};
    case K::payload_too_large: return {"request_too_large", 413};
    case K::rate_limited: return {"rate_limit_error", 429};
    case K::overloaded: return {"overloaded_error", 529};
    case K::unavailable: return e.permanent ? ErrorShape{"api_error", 503} : ErrorShape{"overloaded_error", 529};
    case K::out_of_balance: return {"api_error", 503};
    case K::timeout:
    case K::server_error:
    case K::cancelled:
    case K::internal: return {"api_error", e.http_status()};
  }
  return {"api_error", 500};
}

}  // namespace

int anthropic_status(const core::Error& e) { return error_shape(e).status; }

std::string anthropic_error_json(const core::Error& e) {
  std::string s = "{\"type\":\"error\",\"error\":{\"type\":\"";
  s += error_shape(e).type;
  s += "\",\"message\":";
  core::append_json_string(s, e.message);
  s += "}}";
  return s;
}

}  // namespace gateway
