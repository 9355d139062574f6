#include "providers/openai_normalize.h"

#include <simdjson.h>

#include "core/json_writer.h"
#include "providers/dialect.h"

namespace providers {
namespace {

using simdjson::dom::element;
using simdjson::dom::object;

int64_t int_field(element obj, std::string_view key) {
  element v;
  if (obj[key].get(v) != simdjson::SUCCESS) return 0;
  if (v.is_int64()) return v.get_int64().value_unsafe();
  if (v.is_uint64()) return static_cast<int64_t>(v.get_uint64().value_unsafe());
  if (v.is_double()) return static_cast<int64_t>(v.get_double().value_unsafe());
  return 0;
}

core::Usage usage_from(element u) {
  core::Usage out;
  if (!u.is_object()) return out;
  out.present = true;
  out.prompt_tokens = int_field(u, "prompt_tokens");
  out.completion_tokens = int_field(u, "completion_tokens");
  element d;
  if (u["prompt_tokens_details"].get(d) == simdjson::SUCCESS && d.is_object()) {
    out.cached_tokens = int_field(d, "cached_tokens");
    out.cache_write_tokens = int_field(d, "cache_creation_input_tokens");
  }
  // DeepSeek: prompt_cache_hit_tokens; Kimi: cached_tokens at the top of usage.
  if (out.cached_tokens == 0) out.cached_tokens = int_field(u, "prompt_cache_hit_tokens");
  if (out.cached_tokens == 0) out.cached_tokens = int_field(u, "cached_tokens");
  if (u["completion_tokens_details"].get(d) == simdjson::SUCCESS && d.is_object())
    out.reasoning_tokens = int_field(d, "reasoning_tokens");
  return out;
}

// Appends `"key":<minified value>` for every field of obj except those in skip.
void copy_fields(std::string& out, object obj, std::initializer_list<std::string_view> skip, bool& first) {
  for (auto field : obj) {
    bool skipped = false;
    for (auto s : skip) skipped |= field.key == s;
    if (skipped) continue;
    if (!first) out.push_back(',');
    first = false;
    core::append_json_string(out, field.key);
    out.push_back(':');
    out += simdjson::minify(field.value);
  }
}

bool non_empty_string(element obj, std::string_view key) {
  element v;
  if (obj[key].get(v) != simdjson::SUCCESS) return false;
  if (v.is_string()) return !std::string_view(v.get_string().value_unsafe()).empty();
  if (v.is_array()) return v.get_array().value_unsafe().size() > 0;
  return !v.is_null();
}

thread_local simdjson::dom::parser tl_parser;

// Writes `root` in OpenAI's shape: "object" added when missing, usage removed (the caller emits it
// where OpenAI puts it), usage inside choices (Kimi) removed, finish reasons mapped. Callers have
// already rejected finish reasons that mean failure.
void rewrite_openai(std::string& s, object root, bool has_object, const char* object_value) {
  s.push_back('{');
  bool first = true;
  if (!has_object) {
    s += "\"object\":\"";
    s += object_value;
    s += "\"";
    first = false;
  }
  for (auto field : root) {
    if (field.key == "usage") continue;
    if (!first) s.push_back(',');
    first = false;
    core::append_json_string(s, field.key);
    s.push_back(':');
    if (field.key != "choices" || !field.value.is_array()) {
      s += simdjson::minify(field.value);
      continue;
    }
    s.push_back('[');
    bool cfirst = true;
    for (element c : simdjson::dom::array(field.value)) {
      if (!cfirst) s.push_back(',');
      cfirst = false;
      if (!c.is_object()) { s += simdjson::minify(c); continue; }
      s.push_back('{');
      bool ffirst = true;
      copy_fields(s, object(c), {"usage", "finish_reason"}, ffirst);
      element fr;
      if (c["finish_reason"].get(fr) == simdjson::SUCCESS) {
        if (!ffirst) s.push_back(',');
        s += "\"finish_reason\":";
        if (fr.is_string()) core::append_json_string(s, map_finish_reason(std::string_view(fr.get_string().value_unsafe())));
        else s += "null";
      }
      s.push_back('}');
    }
    s.push_back(']');
  }
  s.push_back('}');
}

}  // namespace

core::Usage parse_usage_json(std::string_view usage_json) {
  simdjson::padded_string p(usage_json);
  element root;
  if (tl_parser.parse(p).get(root) != simdjson::SUCCESS) return {};
  return usage_from(root);
}

std::string usage_to_json(const core::Usage& u) {
  std::string s = "{\"prompt_tokens\":" + std::to_string(u.prompt_tokens) +
                  ",\"completion_tokens\":" + std::to_string(u.completion_tokens) +
                  ",\"total_tokens\":" + std::to_string(u.total_tokens()) +
                  ",\"prompt_tokens_details\":{\"cached_tokens\":" + std::to_string(u.cached_tokens);
  if (u.cache_write_tokens) s += ",\"cache_creation_input_tokens\":" + std::to_string(u.cache_write_tokens);
  s += "},\"completion_tokens_details\":{\"reasoning_tokens\":" + std::to_string(u.reasoning_tokens) + "}}";
  return s;
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
  simdjson::padded_string p(body);
  element root;
  if (tl_parser.parse(p).get(root) != simdjson::SUCCESS || !root.is_object())
    return core::make_error(core::ErrorKind::server_error,
                            dialect.name + " returned a body that is not a JSON object", core::ErrorSource::upstream);
  element choices;
  if (root["choices"].get(choices) != simdjson::SUCCESS || !choices.is_array())
    return core::make_error(core::ErrorKind::server_error,
                            dialect.name + " returned a response without 'choices'", core::ErrorSource::upstream);
  NormalizedResponse out;
  element u;
  if (root["usage"].get(u) == simdjson::SUCCESS) out.usage = usage_from(u);
  // Usage (top level, or inside a choice for Kimi) and the first finish reason; a finish reason
  // that means failure makes the whole answer an upstream error.
  for (element c : simdjson::dom::array(choices)) {
    if (!c.is_object()) continue;
    element cu;
    if (!out.usage.present && c["usage"].get(cu) == simdjson::SUCCESS) out.usage = usage_from(cu);
    element fr;
    if (c["finish_reason"].get(fr) == simdjson::SUCCESS && fr.is_string()) {
      std::string_view raw(fr.get_string().value_unsafe());
      std::string mapped = map_finish_reason(raw);
      if (mapped.empty())
        return core::make_error(core::ErrorKind::server_error,
                                dialect.name + " ended the answer with finish_reason '" + std::string(raw) + "'",
                                core::ErrorSource::upstream);
      if (out.finish_reason.empty()) out.finish_reason = mapped;
    }
  }
  std::string& s = out.body;
  s.reserve(body.size() + 128);
  element obj_field;
  rewrite_openai(s, object(root), root["object"].get(obj_field) == simdjson::SUCCESS, "chat.completion");
  s.pop_back();  // reopen the object to append usage
  if (out.usage.present) {
    s += ",\"usage\":";
    s += usage_to_json(out.usage);
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
  simdjson::padded_string p(data);
  element root;
  if (tl_parser.parse(p).get(root) != simdjson::SUCCESS || !root.is_object()) {
    step.action = Action::error;
    step.error = core::make_error(core::ErrorKind::server_error,
                                  dialect_.name + " sent a stream event that is not JSON", core::ErrorSource::upstream);
    return step;
  }
  element err;
  if (root["error"].get(err) == simdjson::SUCCESS && !err.is_null()) {
    std::string msg = dialect_.name + " reported an error mid-stream";
    element m;
    if (err.is_object() && err["message"].get(m) == simdjson::SUCCESS && m.is_string())
      msg += ": " + std::string(std::string_view(m.get_string().value_unsafe()));
    step.action = Action::error;
    step.error = core::make_error(core::ErrorKind::server_error, msg, core::ErrorSource::upstream);
    return step;
  }
  ++chunks_;
  element v;
  if (id_.empty() && root["id"].get(v) == simdjson::SUCCESS && v.is_string())
    id_ = std::string(std::string_view(v.get_string().value_unsafe()));
  if (model_.empty() && root["model"].get(v) == simdjson::SUCCESS && v.is_string())
    model_ = std::string(std::string_view(v.get_string().value_unsafe()));
  if (created_ == 0) created_ = int_field(root, "created");

  bool rewrite = false;
  element obj_field;
  const bool has_object = root["object"].get(obj_field) == simdjson::SUCCESS;
  if (!has_object) rewrite = true;  // GLM omits "object": OpenAI SDKs expect it
  element u;
  bool top_usage = root["usage"].get(u) == simdjson::SUCCESS && !u.is_null();
  if (top_usage) {
    usage_ = usage_from(u);
    rewrite = true;  // the gateway sends usage in its own final chunk
  }
  element choices;
  bool has_choices = root["choices"].get(choices) == simdjson::SUCCESS && choices.is_array() &&
                     choices.get_array().value_unsafe().size() > 0;
  std::string mapped_finish;
  if (has_choices) {
    for (element c : simdjson::dom::array(choices)) {
      if (!c.is_object()) continue;
      element cu;
      if (c["usage"].get(cu) == simdjson::SUCCESS && !cu.is_null()) {  // Kimi
        usage_ = usage_from(cu);
        rewrite = true;
      }
      element fr;
      if (c["finish_reason"].get(fr) == simdjson::SUCCESS && fr.is_string()) {
        std::string_view raw(fr.get_string().value_unsafe());
        mapped_finish = map_finish_reason(raw);
        if (mapped_finish.empty()) {
          step.action = Action::error;
          step.error = core::make_error(core::ErrorKind::server_error,
                                        dialect_.name + " ended the stream with finish_reason '" + std::string(raw) + "'",
                                        core::ErrorSource::upstream);
          return step;
        }
        if (mapped_finish != raw) rewrite = true;
        finish_reason_ = mapped_finish;
        step.content = true;
      }
      element delta;
      if (c["delta"].get(delta) == simdjson::SUCCESS && delta.is_object()) {
        if (non_empty_string(delta, "content") || non_empty_string(delta, "reasoning_content") ||
            non_empty_string(delta, "tool_calls") || non_empty_string(delta, "function_call"))
          step.content = true;
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
  rewrite_openai(s, object(root), has_object, "chat.completion.chunk");
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
