#include "gateway/api/openai_responses.h"

#include <simdjson.h>

#include <algorithm>
#include <array>

#include "core/json_members.h"
#include "core/json_writer.h"
#include "gateway/api/client_json.h"
#include "gateway/api/openai_chat.h"
#include "gateway/api/responses_items.h"

namespace gateway {
namespace {

using simdjson::dom::element;
using client_json::ambiguity_error;
using client_json::append_int;
using client_json::bad;
using client_json::json_quoted;
using client_json::make_parser;
using client_json::parse_client_body;
using client_json::shown;
using core::json::type_name;

std::string_view str(element e) { return e.get_string().value_unsafe(); }

// --- Request: Responses -> chat ----------------------------------------------------------------------

// Every top-level member this surface takes; anything else is refused by name (a member silently
// dropped would change the answer without the client knowing).
constexpr std::array<std::string_view, 19> kTopKeys{
    "model", "input", "instructions", "tools", "tool_choice", "reasoning", "max_output_tokens", "temperature",
    "top_p", "text", "metadata", "parallel_tool_calls", "stream", "store", "previous_response_id", "user",
    "truncation", "background", "include"};
enum TopKey : size_t {
  t_model, t_input, t_instructions, t_tools, t_tool_choice, t_reasoning, t_max_output_tokens, t_temperature,
  t_top_p, t_text, t_metadata, t_parallel_tool_calls, t_stream, t_store, t_previous_response_id, t_user,
  t_truncation, t_background, t_include
};
using TopMembers = core::json::StrictMembers<kTopKeys.size()>;

constexpr std::array<std::string_view, 5> kToolKeys{"type", "name", "description", "parameters", "strict"};
constexpr std::array<std::string_view, 2> kToolChoiceKeys{"type", "name"};
constexpr std::array<std::string_view, 3> kReasoningKeys{"effort", "summary", "generate_summary"};
constexpr std::array<std::string_view, 2> kTextKeys{"format", "verbosity"};
constexpr std::array<std::string_view, 5> kFormatKeys{"type", "name", "schema", "strict", "description"};

// The members of an object outside `names` are refused, the first one named.
template <size_t N>
core::Status refuse_unknown(element obj, const std::array<std::string_view, N>& names, const std::string& path,
                            std::string_view what) {
  for (auto field : simdjson::dom::object(obj))
    if (std::find(names.begin(), names.end(), field.key) == names.end()) {
      const std::string p = path.empty() ? shown(field.key) : path + "." + shown(field.key);
      return bad("'" + p + "' is not a member of " + std::string(what) + " this gateway takes", p,
                 "unsupported_parameter");
    }
  return core::ok_status();
}

// A string member that must be present (`required`) or may be absent or null.
core::Status read_string(const TopMembers& top, TopKey k, std::optional<std::string>& out, size_t max_size = 0) {
  element v;
  if (!top.get(k, v) || v.is_null()) return core::ok_status();
  const std::string name(kTopKeys[k]);
  if (!v.is_string()) return bad("'" + name + "' must be a string, not " + type_name(v), name);
  if (max_size && str(v).size() > max_size)
    return bad("'" + name + "' must be at most " + std::to_string(max_size) + " characters", name);
  out = std::string(str(v));
  return core::ok_status();
}

core::Status read_bool(const TopMembers& top, TopKey k, std::optional<bool>& out) {
  element v;
  if (!top.get(k, v) || v.is_null()) return core::ok_status();
  const std::string name(kTopKeys[k]);
  if (!v.is_bool()) return bad("'" + name + "' must be a boolean, not " + type_name(v), name);
  out = v.get_bool().value_unsafe();
  return core::ok_status();
}

// A number within [lo, hi], as the client wrote it ("null" when absent).
core::Status read_number(const TopMembers& top, TopKey k, double lo, double hi, std::string& out) {
  element v;
  out = "null";
  if (!top.get(k, v) || v.is_null()) return core::ok_status();
  const bool num = v.is_int64() || v.is_uint64() || v.is_double();
  double d = 0;
  if (v.is_double()) d = v.get_double().value_unsafe();
  else if (v.is_int64()) d = double(v.get_int64().value_unsafe());
  else if (v.is_uint64()) d = double(v.get_uint64().value_unsafe());
  const std::string name(kTopKeys[k]);
  if (!num || !(d >= lo && d <= hi))
    return bad("'" + name + "' must be a number from " + std::to_string(int(lo)) + " to " + std::to_string(int(hi)) +
                   ", not " + (num ? simdjson::minify(v) : std::string(type_name(v))),
               name);
  out = simdjson::minify(v);
  return core::ok_status();
}

// What the translation builds: the chat body's members and the Response object's echo.
struct Build {
  std::string chat;  // chat body members after "model" and "messages", each with a leading comma
  std::string echo;  // Response members, each with a leading comma
  std::vector<std::string> tool_names;
  bool has_tools = false;
  std::string reasoning_effort;  // reasoning.effort, which the chat body carries only as a switch
  void echo_member(std::string_view name, std::string_view json) {
    echo += ",\"";
    echo += name;
    echo += "\":";
    echo += json;
  }
};

core::Status read_tool(element t, const std::string& p, Build& b, std::string& chat_tools, std::string& echo_tools) {
  if (!t.is_object()) return bad(p + " must be an object", p);
  const core::json::StrictMembers tm(kToolKeys, t.get_object().value_unsafe());
  if (tm.ambiguity()) return ambiguity_error(tm.ambiguity(), "$." + p);
  element type, name, x;
  if (!tm.get(0, type) || !type.is_string()) return bad(p + ".type must be a string such as \"function\"", p + ".type");
  if (str(type) != "function")
    return bad(p + ".type " + json_quoted(str(type)) +
                   " is a built-in tool this gateway cannot run; only tools of type \"function\" are supported",
               p + ".type", "unsupported_tool");
  if (auto s = refuse_unknown(t, kToolKeys, p, "a function tool"); !s) return s;
  if (!tm.get(1, name) || !name.is_string() || str(name).empty() || str(name).size() > 64)
    return bad(p + ".name must be a string of 1 to 64 characters", p + ".name");
  b.tool_names.emplace_back(str(name));
  std::string fn = "{\"name\":";
  core::append_json_string(fn, str(name));
  std::string echo = "{\"type\":\"function\",\"name\":";
  core::append_json_string(echo, str(name));
  std::string desc = "null", params = "null", strict = "null";
  if (tm.get(2, x) && !x.is_null()) {
    if (!x.is_string()) return bad(p + ".description must be a string", p + ".description");
    desc = simdjson::minify(x);
    fn += ",\"description\":" + desc;
  }
  if (tm.get(3, x) && !x.is_null()) {
    if (!x.is_object()) return bad(p + ".parameters must be a JSON Schema object", p + ".parameters");
    params = simdjson::minify(x);
    fn += ",\"parameters\":" + params;
  }
  if (tm.get(4, x) && !x.is_null()) {
    if (!x.is_bool()) return bad(p + ".strict must be a boolean", p + ".strict");
    strict = simdjson::minify(x);
    fn += ",\"strict\":" + strict;
  }
  echo += ",\"description\":" + desc + ",\"parameters\":" + params + ",\"strict\":" + strict + "}";
  if (!chat_tools.empty()) chat_tools += ',', echo_tools += ',';
  chat_tools += "{\"type\":\"function\",\"function\":" + fn + "}}";
  echo_tools += echo;
  return core::ok_status();
}

core::Status read_tools(const TopMembers& top, Build& b) {
  element v;
  std::string chat_tools, echo_tools;
  if (top.get(t_tools, v) && !v.is_null()) {
    if (!v.is_array()) return bad(std::string("'tools' must be an array, not ") + type_name(v), "tools");
    size_t k = 0;
    for (element t : simdjson::dom::array(v))
      if (auto s = read_tool(t, "tools[" + std::to_string(k++) + "]", b, chat_tools, echo_tools); !s) return s;
  }
  b.has_tools = !chat_tools.empty();
  if (b.has_tools) b.chat += ",\"tools\":[" + chat_tools + "]";
  b.echo_member("tools", "[" + echo_tools + "]");
  return core::ok_status();
}

// "auto" | "none" | "required" | {"type":"function","name":N} -> chat's tool_choice.
core::Status read_tool_choice(const TopMembers& top, Build& b) {
  element v;
  if (!top.get(t_tool_choice, v) || v.is_null()) {
    b.echo_member("tool_choice", "\"auto\"");
    return core::ok_status();
  }
  if (v.is_string()) {
    const std::string_view c = str(v);
    if (c != "auto" && c != "none" && c != "required")
      return bad("'tool_choice' " + json_quoted(c) + " is not \"auto\", \"none\", \"required\" or a function",
                 "tool_choice");
    if (c == "required" && !b.has_tools) return bad("'tool_choice' \"required\" needs 'tools'", "tool_choice");
    if (b.has_tools) b.chat += ",\"tool_choice\":" + simdjson::minify(v);
    b.echo_member("tool_choice", simdjson::minify(v));
    return core::ok_status();
  }
  if (!v.is_object()) return bad("'tool_choice' must be a string or an object such as {\"type\":\"function\",\"name\":...}", "tool_choice");
  const core::json::StrictMembers cm(kToolChoiceKeys, v.get_object().value_unsafe());
  if (cm.ambiguity()) return ambiguity_error(cm.ambiguity(), "$.tool_choice");
  element type, name;
  if (!cm.get(0, type) || !type.is_string() || str(type) != "function")
    return bad("'tool_choice.type' must be \"function\" (the only tool type this gateway supports)", "tool_choice.type",
               "unsupported_tool");
  if (auto s = refuse_unknown(v, kToolChoiceKeys, "tool_choice", "a function tool choice"); !s) return s;
  if (!cm.get(1, name) || !name.is_string()) return bad("'tool_choice.name' must be a string", "tool_choice.name");
  if (std::find(b.tool_names.begin(), b.tool_names.end(), str(name)) == b.tool_names.end())
    return bad("'tool_choice.name' " + json_quoted(str(name)) + " is not one of the tools defined in 'tools'",
               "tool_choice.name");
  b.chat += ",\"tool_choice\":{\"type\":\"function\",\"function\":{\"name\":";
  core::append_json_string(b.chat, str(name));
  b.chat += "}}";
  std::string echo = "{\"type\":\"function\",\"name\":";
  core::append_json_string(echo, str(name));
  b.echo_member("tool_choice", echo + "}");
  return core::ok_status();
}

// reasoning {effort, summary} -> the thinking switch (see the header). generate_summary is the
// deprecated spelling of summary.
core::Status read_reasoning(const TopMembers& top, Build& b) {
  element v;
  std::string effort = "null", summary = "null";
  if (top.get(t_reasoning, v) && !v.is_null()) {
    if (!v.is_object()) return bad("'reasoning' must be an object such as {\"effort\":\"medium\"}", "reasoning");
    const core::json::StrictMembers rm(kReasoningKeys, v.get_object().value_unsafe());
    if (rm.ambiguity()) return ambiguity_error(rm.ambiguity(), "$.reasoning");
    if (auto s = refuse_unknown(v, kReasoningKeys, "reasoning", "reasoning"); !s) return s;
    element e;
    if (rm.get(0, e) && !e.is_null()) {
      constexpr std::array<std::string_view, 6> kEfforts{"none", "minimal", "low", "medium", "high", "xhigh"};
      if (!e.is_string() || std::find(kEfforts.begin(), kEfforts.end(), str(e)) == kEfforts.end())
        return bad("'reasoning.effort' must be one of none, minimal, low, medium, high, xhigh", "reasoning.effort");
      effort = simdjson::minify(e);
      b.reasoning_effort = std::string(str(e));
      b.chat += str(e) == "none" ? ",\"thinking\":{\"type\":\"disabled\"}" : ",\"thinking\":{\"type\":\"enabled\"}";
    }
    for (size_t k : {size_t{1}, size_t{2}}) {
      if (!rm.get(k, e) || e.is_null()) continue;
      const std::string name = "reasoning." + std::string(kReasoningKeys[k]);
      if (!e.is_string() || (str(e) != "auto" && str(e) != "concise" && str(e) != "detailed"))
        return bad("'" + name + "' must be \"auto\", \"concise\" or \"detailed\"", name);
      summary = simdjson::minify(e);
    }
  }
  b.echo_member("reasoning", "{\"effort\":" + effort + ",\"summary\":" + summary + "}");
  return core::ok_status();
}

// text.format -> response_format: json_schema {name, schema, strict, description}, json_object, text.
core::Status read_format(element f, Build& b, std::string& echo) {
  if (!f.is_object()) return bad("'text.format' must be an object such as {\"type\":\"text\"}", "text.format");
  const core::json::StrictMembers fm(kFormatKeys, f.get_object().value_unsafe());
  if (fm.ambiguity()) return ambiguity_error(fm.ambiguity(), "$.text.format");
  element type, x;
  if (!fm.get(0, type) || !type.is_string())
    return bad("'text.format.type' must be \"text\", \"json_object\" or \"json_schema\"", "text.format.type");
  const std::string_view t = str(type);
  if (t == "text" || t == "json_object") {
    constexpr std::array<std::string_view, 1> kTypeOnly{"type"};
    if (auto s = refuse_unknown(f, kTypeOnly, "text.format", "this text format"); !s) return s;
    if (t == "json_object") b.chat += ",\"response_format\":{\"type\":\"json_object\"}";
    echo = "{\"type\":" + simdjson::minify(type) + "}";
    return core::ok_status();
  }
  if (t != "json_schema")
    return bad("'text.format.type' " + json_quoted(t) + " is not \"text\", \"json_object\" or \"json_schema\"",
               "text.format.type");
  if (auto s = refuse_unknown(f, kFormatKeys, "text.format", "a json_schema format"); !s) return s;
  element name, schema;
  if (!fm.get(1, name) || !name.is_string() || str(name).empty() || str(name).size() > 64)
    return bad("'text.format.name' must be a string of 1 to 64 characters", "text.format.name");
  if (!fm.get(2, schema) || !schema.is_object()) return bad("'text.format.schema' must be an object", "text.format.schema");
  std::string js = "{\"name\":" + simdjson::minify(name) + ",\"schema\":" + simdjson::minify(schema);
  echo = "{\"type\":\"json_schema\",\"name\":" + simdjson::minify(name) + ",\"schema\":" + simdjson::minify(schema);
  if (fm.get(3, x) && !x.is_null()) {
    if (!x.is_bool()) return bad("'text.format.strict' must be a boolean", "text.format.strict");
    js += ",\"strict\":" + simdjson::minify(x);
    echo += ",\"strict\":" + simdjson::minify(x);
  }
  if (fm.get(4, x) && !x.is_null()) {
    if (!x.is_string()) return bad("'text.format.description' must be a string", "text.format.description");
    js += ",\"description\":" + simdjson::minify(x);
    echo += ",\"description\":" + simdjson::minify(x);
  }
  b.chat += ",\"response_format\":{\"type\":\"json_schema\",\"json_schema\":" + js + "}}";
  echo += '}';
  return core::ok_status();
}

core::Status read_text(const TopMembers& top, Build& b) {
  element v, x;
  std::string format = "{\"type\":\"text\"}";
  if (top.get(t_text, v) && !v.is_null()) {
    if (!v.is_object()) return bad("'text' must be an object such as {\"format\":{\"type\":\"text\"}}", "text");
    const core::json::StrictMembers tm(kTextKeys, v.get_object().value_unsafe());
    if (tm.ambiguity()) return ambiguity_error(tm.ambiguity(), "$.text");
    if (auto s = refuse_unknown(v, kTextKeys, "text", "text"); !s) return s;
    if (tm.get(1, x) && !x.is_null())
      return bad("'text.verbosity' cannot be honoured by the chat upstreams this gateway uses", "text.verbosity",
                 "unsupported_parameter");
    if (tm.get(0, x) && !x.is_null())
      if (auto s = read_format(x, b, format); !s) return s;
  }
  b.echo_member("text", "{\"format\":" + format + "}");
  return core::ok_status();
}

// At most 16 pairs of strings (keys up to 64 characters, values up to 512), echoed as given.
core::Status read_metadata(const TopMembers& top, ResponsesRequest& r) {
  element v;
  r.metadata_json = "{}";
  if (!top.get(t_metadata, v) || v.is_null()) return core::ok_status();
  if (!v.is_object()) return bad(std::string("'metadata' must be an object, not ") + type_name(v), "metadata");
  size_t n = 0;
  for (auto field : simdjson::dom::object(v)) {
    const std::string p = "metadata." + shown(field.key);
    if (++n > 16) return bad("'metadata' may hold at most 16 pairs", "metadata");
    if (field.key.size() > 64) return bad("'" + p + "': metadata keys are at most 64 characters", p);
    if (!field.value.is_string() || str(field.value).size() > 512)
      return bad("'" + p + "' must be a string of at most 512 characters", p);
  }
  r.metadata_json = simdjson::minify(v);
  return core::ok_status();
}

// include, truncation and background: accepted only in the forms the gateway honours.
core::Status read_unhonoured(const TopMembers& top) {
  element v;
  if (top.get(t_include, v) && !v.is_null()) {
    if (!v.is_array()) return bad("'include' must be an array", "include");
    for (element e : simdjson::dom::array(v))
      return bad("'include' value " + (e.is_string() ? json_quoted(str(e)) : std::string(type_name(e))) +
                     " cannot be honoured: this gateway returns no extra output data",
                 "include", "unsupported_parameter");
  }
  if (top.get(t_truncation, v) && !v.is_null() && !(v.is_string() && str(v) == "disabled"))
    return bad("'truncation' must be \"disabled\": this gateway does not truncate conversations", "truncation",
               "unsupported_parameter");
  if (top.get(t_background, v) && !v.is_null()) {
    if (!v.is_bool()) return bad(std::string("'background' must be a boolean, not ") + type_name(v), "background");
    if (v.get_bool().value_unsafe())
      return bad("background mode is not supported", "background", "unsupported_parameter");
  }
  return core::ok_status();
}

core::Status read_sampling(const TopMembers& top, Build& b) {
  std::string temperature, top_p;
  if (auto s = read_number(top, t_temperature, 0, 2, temperature); !s) return s;
  if (auto s = read_number(top, t_top_p, 0, 1, top_p); !s) return s;
  if (temperature != "null") b.chat += ",\"temperature\":" + temperature;
  if (top_p != "null") b.chat += ",\"top_p\":" + top_p;
  b.echo_member("temperature", temperature);
  b.echo_member("top_p", top_p);
  element v;
  std::string max = "null";
  if (top.get(t_max_output_tokens, v) && !v.is_null()) {
    if (!v.is_int64() || v.get_int64().value_unsafe() < 1)
      return bad("'max_output_tokens' must be a positive integer, not " +
                     (v.is_number() ? simdjson::minify(v) : std::string(type_name(v))),
                 "max_output_tokens");
    max = simdjson::minify(v);
    b.chat += ",\"max_tokens\":" + max;
  }
  b.echo_member("max_output_tokens", max);
  return core::ok_status();
}

core::Status read_flags(const TopMembers& top, ResponsesRequest& r, Build& b) {
  std::optional<bool> stream, store, parallel;
  if (auto s = read_bool(top, t_stream, stream); !s) return s;
  if (auto s = read_bool(top, t_store, store); !s) return s;
  if (auto s = read_bool(top, t_parallel_tool_calls, parallel); !s) return s;
  r.stream = stream.value_or(false);
  r.store = store.value_or(true);
  // Usage always asked for: response.completed carries it.
  if (r.stream) b.chat += ",\"stream\":true,\"stream_options\":{\"include_usage\":true}";
  if (parallel && b.has_tools) b.chat += *parallel ? ",\"parallel_tool_calls\":true" : ",\"parallel_tool_calls\":false";
  b.echo_member("parallel_tool_calls", parallel.value_or(true) ? "true" : "false");
  b.echo_member("store", r.store ? "true" : "false");
  std::optional<std::string> user, previous;
  if (auto s = read_string(top, t_user, user, 256); !s) return s;
  if (auto s = read_string(top, t_previous_response_id, previous, 256); !s) return s;
  if (user) {
    b.chat += ",\"user\":" + core::json_string(*user);
    b.echo_member("user", core::json_string(*user));
  }
  r.previous_response_id = previous.value_or("");
  b.echo_member("previous_response_id", previous ? core::json_string(*previous) : "null");
  b.echo_member("truncation", "\"disabled\"");
  return core::ok_status();
}

core::Status refuse_unknown_top(element root) {
  for (auto field : simdjson::dom::object(root))
    if (std::find(kTopKeys.begin(), kTopKeys.end(), field.key) == kTopKeys.end())
      return bad("'" + shown(field.key) + "' is not a Responses API parameter this gateway supports", shown(field.key),
                 "unsupported_parameter");
  return core::ok_status();
}

core::Status read_model(const TopMembers& top, ResponsesRequest& r) {
  element v;
  if (!top.get(t_model, v)) return bad("'model' is required", "model");
  if (!v.is_string() || str(v).empty() || str(v).size() > 256)
    return bad("'model' must be a string of 1 to 256 characters", "model");
  r.model = std::string(str(v));
  return core::ok_status();
}

// "messages":[instructions?, prior items..., input items...] into `out`.
core::Status write_messages(const TopMembers& top, std::string_view prior_items_json, ResponsesRequest& r,
                            Build& b, std::string& out) {
  std::optional<std::string> instructions;
  if (auto s = read_string(top, t_instructions, instructions); !s) return s;
  b.echo_member("instructions", instructions ? core::json_string(*instructions) : "null");
  ItemReader items(r.response_id);
  if (instructions && !instructions->empty()) items.system(*instructions);
  if (auto s = items.read_prior(prior_items_json); !s) return s;
  element v;
  if (top.get(t_input, v) && !v.is_null())
    if (auto s = items.read_input(v); !s) return s;
  auto messages = items.finish();
  if (!messages) return std::move(messages).error();
  out += ",\"messages\":[" + *messages + "]";
  r.input_items_json = items.input_items_json();
  return core::ok_status();
}

}  // namespace

core::Result<std::optional<std::string>> responses_previous_id(std::string_view body) {
  thread_local simdjson::dom::parser parser = make_parser();
  element root;
  if (!parse_client_body(parser, body, root)) return std::optional<std::string>{};
  const TopMembers top(kTopKeys, root.get_object().value_unsafe());
  if (top.ambiguity()) return ambiguity_error(top.ambiguity(), "$");
  std::optional<std::string> id;
  if (auto s = read_string(top, t_previous_response_id, id, 256); !s) return s.error();
  return id;
}

core::Result<ResponsesRequest> responses_to_chat(std::string_view body, std::string_view prior_items_json,
                                                 std::string_view response_id) {
  thread_local simdjson::dom::parser parser = make_parser();
  element root;
  if (auto s = parse_client_body(parser, body, root); !s) return s.error();
  const TopMembers top(kTopKeys, root.get_object().value_unsafe());
  if (top.ambiguity()) return ambiguity_error(top.ambiguity(), "$");
  if (auto s = refuse_unknown_top(root); !s) return s.error();
  ResponsesRequest r;
  r.response_id = std::string(response_id);
  if (auto s = read_model(top, r); !s) return s.error();
  if (auto s = read_unhonoured(top); !s) return s.error();
  Build b;
  std::string out = "{\"model\":" + core::json_string(r.model);
  if (auto s = write_messages(top, prior_items_json, r, b, out); !s) return s.error();
  for (auto step : {read_sampling, read_tools, read_tool_choice, read_reasoning, read_text})
    if (auto s = step(top, b); !s) return s.error();
  if (auto s = read_flags(top, r, b); !s) return s.error();
  if (auto s = read_metadata(top, r); !s) return s.error();
  b.echo_member("metadata", r.metadata_json);
  out += b.chat + "}";
  r.echo_json = b.echo.substr(1);

  // The chat parser reads the result: one source of truth for the request's features (token
  // estimate, tools, images, reasoning) and a check that the translation is a body it accepts.
  auto chat = parse_chat_request(std::move(out));
  if (!chat.ok()) {
    core::Error e = std::move(chat).error();
    e.log_detail = "the translated Responses request was refused by the chat parser";
    return e;
  }
  r.chat = std::move(chat).value();
  if (!b.reasoning_effort.empty()) r.chat.reasoning_effort = b.reasoning_effort;
  r.estimated_input_tokens = core::estimate_prompt_tokens(r.chat);
  return r;
}

}  // namespace gateway
