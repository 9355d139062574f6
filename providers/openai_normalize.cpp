#include "providers/openai_normalize.h"

#include <simdjson.h>

#include <charconv>

#include "core/json_members.h"
#include "core/json_scan.h"
#include "core/json_writer.h"
#include "providers/dialect.h"
#include "providers/error_map.h"
#include "providers/wire_counts.h"

namespace providers {
namespace {

using simdjson::dom::element;
using simdjson::dom::object;

using core::json::Members;

int64_t int_of(element v) {
  if (v.is_int64()) return v.get_int64().value_unsafe();
  if (v.is_uint64()) return static_cast<int64_t>(v.get_uint64().value_unsafe());
  if (v.is_double()) return static_cast<int64_t>(v.get_double().value_unsafe());
  return 0;
}

// 0 when absent or not a number.
int64_t int_member(const auto& members, size_t i) {
  element v;
  return members.get(i, v) ? int_of(v) : 0;
}

// A token count: a non-negative integer (an integral JSON number up to 2^53 counts too); absent or
// null is 0. Anything else sets `bad` and reads as 0, never wrapped or truncated into a price.
int64_t count_member(const auto& members, size_t i, bool& bad) {
  element v;
  if (!members.get(i, v)) return 0;
  return token_count(v, bad).value_or(0);  // negative, fractional, beyond int64, a string...: bad
}

constexpr std::array<std::string_view, 6> kUsageKeys{"prompt_tokens", "completion_tokens", "prompt_tokens_details",
                                                     "prompt_cache_hit_tokens", "cached_tokens",
                                                     "completion_tokens_details"};
constexpr std::array<std::string_view, 2> kPromptDetailKeys{"cached_tokens", "cache_creation_input_tokens"};
constexpr std::array<std::string_view, 1> kCompletionDetailKeys{"reasoning_tokens"};

core::Usage usage_from(element u) {
  core::Usage out;
  if (!u.is_object()) return out;
  out.present = true;
  bool& bad = out.malformed;
  const Members m(kUsageKeys, u.get_object().value_unsafe());
  out.prompt_tokens = count_member(m, 0, bad);
  out.completion_tokens = count_member(m, 1, bad);
  element d;
  if (m.get(2, d) && d.is_object()) {
    const Members pd(kPromptDetailKeys, d.get_object().value_unsafe());
    out.cached_tokens = count_member(pd, 0, bad);
    out.cache_write_tokens = count_member(pd, 1, bad);
  }
  // DeepSeek: prompt_cache_hit_tokens; Kimi: cached_tokens at the top of usage.
  if (out.cached_tokens == 0) out.cached_tokens = count_member(m, 3, bad);
  if (out.cached_tokens == 0) out.cached_tokens = count_member(m, 4, bad);
  if (m.get(5, d) && d.is_object())
    out.reasoning_tokens = count_member(Members(kCompletionDetailKeys, d.get_object().value_unsafe()), 0, bad);
  return out;
}

constexpr std::array<std::string_view, 3> kAnswerKeys{"choices", "usage", "object"};
constexpr std::array<std::string_view, 3> kChoiceKeys{"usage", "finish_reason", "delta"};
constexpr std::array<std::string_view, 7> kChunkKeys{"error", "id", "model", "created", "object", "usage", "choices"};
enum ChunkKey : size_t { c_error, c_id, c_model, c_created, c_object, c_usage, c_choices };
constexpr std::array<std::string_view, 4> kDeltaKeys{"content", "reasoning_content", "tool_calls", "function_call"};

// A delta member that carries something: a non-empty string or array, or any other non-null value.
bool carries_content(element v) {
  if (v.is_string()) return !std::string_view(v.get_string().value_unsafe()).empty();
  if (v.is_array()) return v.get_array().value_unsafe().size() > 0;
  return !v.is_null();
}

// Completion tokens a delta member carries, estimated like the prompt estimate: a code point of
// three or more UTF-8 bytes (CJK) about one token, other text about four bytes a token; at least
// one per member that carries anything (streams send about one token per chunk).
int64_t estimate_delta_tokens(element v) {
  if (!v.is_string()) return 1;
  return estimate_text_tokens(std::string_view(v.get_string().value_unsafe()));
}

}  // namespace

int64_t estimate_text_tokens(std::string_view t) {
  int64_t wide = 0, other = 0;
  for (unsigned char c : t) {
    if (c >= 0xE0) ++wide, other -= 2;  // its two continuation bytes follow
    else ++other;
  }
  if (other < 0) other = 0;
  int64_t n = wide + (other + 3) / 4;
  return n > 0 ? n : 1;
}

namespace {

thread_local simdjson::dom::parser tl_parser;

// Parses with the thread's parser from a padded copy in a reused buffer (no allocation per call).
simdjson::error_code parse_text(std::string_view text, element& root) {
  auto padded = core::json::padded_copy(text, simdjson::SIMDJSON_PADDING);
  return tl_parser.parse(padded.data(), padded.size(), false).get(root);
}

void append_member_head(std::string& s, std::string_view raw_key) {
  s.push_back('"');
  s += raw_key;
  s += "\":";
}

// Writes the object `text` in OpenAI's shape: "object" added when missing, usage removed (the
// caller emits it where OpenAI puts it), usage inside choices (Kimi) removed, finish reasons
// mapped. Members are copied verbatim from the upstream's text. Callers have already parsed
// `text` and rejected finish reasons that mean failure.
// With rewrite_choices false the choices are copied whole (nothing inside them needs a change).
void rewrite_openai(std::string& s, std::string_view text, bool has_object, const char* object_value,
                    bool rewrite_choices) {
  namespace json = core::json;
  s.push_back('{');
  bool first = true;
  if (!has_object) {
    s += "\"object\":\"";
    s += object_value;
    s += "\"";
    first = false;
  }
  json::for_each_member(text, [&](const json::Member& field) {
    if (json::key_is(field.key, "usage")) return;
    if (!first) s.push_back(',');
    first = false;
    append_member_head(s, field.key);
    if (!rewrite_choices || !json::key_is(field.key, "choices") || field.value.empty() || field.value[0] != '[') {
      s += field.value;
      return;
    }
    s.push_back('[');
    bool cfirst = true;
    json::for_each_element(field.value, [&](std::string_view c) {
      if (!cfirst) s.push_back(',');
      cfirst = false;
      if (c.empty() || c[0] != '{') {
        s += c;
        return;
      }
      s.push_back('{');
      bool ffirst = true;
      bool has_finish = false;
      std::string_view finish;
      json::for_each_member(c, [&](const json::Member& m) {
        if (json::key_is(m.key, "usage")) return;
        if (json::key_is(m.key, "finish_reason")) {
          has_finish = true;
          finish = m.value;
          return;
        }
        if (!ffirst) s.push_back(',');
        ffirst = false;
        append_member_head(s, m.key);
        s += m.value;
      });
      if (has_finish) {
        if (!ffirst) s.push_back(',');
        s += "\"finish_reason\":";
        std::string decoded;
        if (!finish.empty() && finish[0] == '"' && core::json::decode_string(finish, decoded))
          core::append_json_string(s, map_finish_reason(decoded));
        else
          s += "null";
      }
      s.push_back('}');
    });
    s.push_back(']');
  });
  s.push_back('}');
}

}  // namespace

core::Usage parse_usage_json(std::string_view usage_json) {
  element root;
  if (parse_text(usage_json, root) != simdjson::SUCCESS) return {};
  return usage_from(root);
}

namespace {
void append_int(std::string& s, int64_t v) {
  char buf[24];
  auto r = std::to_chars(buf, buf + sizeof buf, v);
  s.append(buf, static_cast<size_t>(r.ptr - buf));
}
}  // namespace

std::string usage_to_json(const core::Usage& u) {
  std::string s;
  s.reserve(192);
  append_usage_json(s, u);
  return s;
}

void append_usage_json(std::string& s, const core::Usage& u) {
  s += "{\"prompt_tokens\":";
  append_int(s, u.prompt_tokens);
  s += ",\"completion_tokens\":";
  append_int(s, u.completion_tokens);
  s += ",\"total_tokens\":";
  append_int(s, u.total_tokens());
  s += ",\"prompt_tokens_details\":{\"cached_tokens\":";
  append_int(s, u.cached_tokens);
  if (u.cache_write_tokens) {
    s += ",\"cache_creation_input_tokens\":";
    append_int(s, u.cache_write_tokens);
  }
  s += "},\"completion_tokens_details\":{\"reasoning_tokens\":";
  append_int(s, u.reasoning_tokens);
  s += "}}";
}

std::string map_finish_reason(std::string_view r) {
  if (r == "stop" || r == "length" || r == "tool_calls" || r == "content_filter" || r == "function_call")
    return std::string(r);
  if (r == "sensitive") return "content_filter";                  // GLM
  if (r == "model_context_window_exceeded") return "length";      // GLM
  if (r == "network_error" || r == "insufficient_system_resource") return "";  // GLM / DeepSeek: a failure
  return std::string(r);
}

core::Result<NormalizedResponse> normalize_response(const Dialect& dialect, std::string_view body) {
  element root;
  if (parse_text(body, root) != simdjson::SUCCESS || !root.is_object())
    return core::make_error(core::ErrorKind::server_error,
                            dialect.name + " returned a body that is not a JSON object", core::ErrorSource::upstream);
  const Members top(kAnswerKeys, root.get_object().value_unsafe());
  element choices;
  if (!top.get(0, choices) || !choices.is_array())
    return core::make_error(core::ErrorKind::server_error,
                            dialect.name + " returned a response without 'choices'", core::ErrorSource::upstream);
  NormalizedResponse out;
  element u;
  if (top.get(1, u)) out.usage = usage_from(u);
  // Usage (top level, or inside a choice for Kimi) and the first finish reason; a finish reason
  // that means failure makes the whole answer an upstream error.
  bool rewrite_choices = false;
  for (element c : simdjson::dom::array(choices)) {
    if (!c.is_object()) continue;
    const Members cm(kChoiceKeys, c.get_object().value_unsafe());
    element cu;
    if (cm.get(0, cu)) {
      rewrite_choices = true;
      if (!out.usage.present) out.usage = usage_from(cu);
    }
    element fr;
    if (cm.get(1, fr)) {
      if (!fr.is_string()) {
        if (!fr.is_null()) rewrite_choices = true;  // written as null
        continue;
      }
      std::string_view raw(fr.get_string().value_unsafe());
      std::string mapped = map_finish_reason(raw);
      if (mapped != raw) rewrite_choices = true;
      if (mapped.empty())
        return core::make_error(core::ErrorKind::server_error,
                                dialect.name + " ended the answer with finish_reason '" + sanitize_upstream_text(raw, 64) + "'",
                                core::ErrorSource::upstream);
      if (out.finish_reason.empty()) out.finish_reason = mapped;
    }
  }
  std::string& s = out.body;
  s.reserve(body.size() + 128);
  rewrite_openai(s, body, top.has(2), "chat.completion", rewrite_choices);
  s.pop_back();  // reopen the object to append usage
  if (out.usage.present) {
    s += ",\"usage\":";
    append_usage_json(s, out.usage);
  }
  s.push_back('}');
  return out;
}

StreamNormalizer::Step StreamNormalizer::process(std::string_view data) {
  Step step;
  if (data == "[DONE]") {
    step.action = Action::done;
    return step;
  }
  element root;
  if (parse_text(data, root) != simdjson::SUCCESS || !root.is_object()) {
    step.action = Action::error;
    step.error = core::make_error(core::ErrorKind::server_error,
                                  dialect_.name + " sent a stream event that is not JSON", core::ErrorSource::upstream);
    return step;
  }
  const Members top(kChunkKeys, root.get_object().value_unsafe());
  element err;
  if (top.get(c_error, err) && !err.is_null()) {
    std::string msg = dialect_.name + " reported an error mid-stream";
    element m;
    if (err.is_object() && err["message"].get(m) == simdjson::SUCCESS && m.is_string())
      msg += ": " + sanitize_upstream_text(std::string_view(m.get_string().value_unsafe()));
    step.action = Action::error;
    step.error = core::make_error(core::ErrorKind::server_error, msg, core::ErrorSource::upstream);
    return step;
  }
  ++chunks_;
  element v;
  if (id_.empty() && top.get(c_id, v) && v.is_string()) id_ = std::string(std::string_view(v.get_string().value_unsafe()));
  if (model_.empty() && top.get(c_model, v) && v.is_string())
    model_ = std::string(std::string_view(v.get_string().value_unsafe()));
  if (created_ == 0) created_ = int_member(top, c_created);

  bool rewrite = false;
  const bool has_object = top.has(c_object);
  if (!has_object) rewrite = true;  // GLM omits "object": OpenAI SDKs expect it
  element u;
  bool top_usage = top.get(c_usage, u) && !u.is_null();
  if (top_usage) {
    usage_ = usage_from(u);
    rewrite = true;  // the gateway sends usage in its own final chunk
  }
  element choices;
  bool has_choices = top.get(c_choices, choices) && choices.is_array() &&
                     choices.get_array().value_unsafe().size() > 0;
  std::string mapped_finish;
  bool rewrite_choices = false;
  if (has_choices) {
    for (element c : simdjson::dom::array(choices)) {
      if (!c.is_object()) continue;
      const Members cm(kChoiceKeys, c.get_object().value_unsafe());
      element cu;
      if (cm.get(0, cu)) {
        rewrite_choices = true;  // removed from the choice, even when null
        if (!cu.is_null()) {  // Kimi
          usage_ = usage_from(cu);
          rewrite = true;
        }
      }
      element fr;
      if (cm.get(1, fr) && fr.is_string()) {
        std::string_view raw(fr.get_string().value_unsafe());
        mapped_finish = map_finish_reason(raw);
        if (mapped_finish.empty()) {
          step.action = Action::error;
          step.error = core::make_error(core::ErrorKind::server_error,
                                        dialect_.name + " ended the stream with finish_reason '" +
                                            sanitize_upstream_text(raw, 64) + "'",
                                        core::ErrorSource::upstream);
          return step;
        }
        if (mapped_finish != raw) rewrite = rewrite_choices = true;
        finish_reason_ = mapped_finish;
        step.content = true;
      }
      element delta;
      if (cm.get(2, delta) && delta.is_object()) {
        const Members dm(kDeltaKeys, delta.get_object().value_unsafe());
        element x;
        for (size_t i = 0; i < kDeltaKeys.size(); ++i)
          if (dm.get(i, x) && carries_content(x)) {
            step.content = true;
            step.est_tokens += estimate_delta_tokens(x);
          }
      }
    }
  }
  if (!has_choices) {
    // Usage-only chunk (DeepSeek/Qwen/OpenAI with include_usage): the gateway re-emits usage itself.
    step.action = Action::drop;
    return step;
  }
  step.action = Action::forward;
  if (!rewrite) {
    step.out = data;
    return step;
  }
  std::string& s = rewritten_;
  s.clear();
  rewrite_openai(s, data, has_object, "chat.completion.chunk", rewrite_choices);
  step.out = s;
  return step;
}

std::string StreamNormalizer::usage_chunk() const {
  if (!usage_.present) return {};
  std::string s = "{\"id\":";
  core::append_json_string(s, id_);
  s += ",\"object\":\"chat.completion.chunk\",\"created\":" + std::to_string(created_) + ",\"model\":";
  core::append_json_string(s, model_);
  s += ",\"choices\":[],\"usage\":" + usage_to_json(usage_) + "}";
  return s;
}

}  // namespace providers
