#include "providers/anthropic_wire.h"

#include <simdjson.h>

#include <algorithm>
#include <array>
#include <vector>

#include "core/json_members.h"
#include "core/json_scan.h"
#include "core/json_writer.h"
#include "providers/dialect.h"
#include "providers/error_map.h"
#include "providers/openai_normalize.h"
#include "providers/wire_counts.h"

namespace providers {
namespace {

using simdjson::dom::element;
using core::json::Members;

thread_local simdjson::dom::parser tl_parser;

// Parses with the thread's parser from a padded copy in a reused buffer (no allocation per call).
// `root` is valid until the thread's next parse.
bool parse_object(std::string_view text, element& root) {
  auto padded = core::json::padded_copy(text, simdjson::SIMDJSON_PADDING);
  return tl_parser.parse(padded.data(), padded.size(), false).get(root) == simdjson::SUCCESS && root.is_object();
}

std::string_view string_of(element v) {
  return v.is_string() ? std::string_view(v.get_string().value_unsafe()) : std::string_view();
}

// Member `key` of object `obj` when it is a string, else "".
std::string_view string_member(element obj, const char* key) {
  element v;
  if (!obj.is_object() || obj[key].get(v) != simdjson::SUCCESS) return {};
  return string_of(v);
}

std::optional<int64_t> count_of(const auto& members, size_t i, bool& bad) {
  element v;
  if (!members.get(i, v)) return std::nullopt;
  return token_count(v, bad);
}

constexpr std::array<std::string_view, 4> kUsageKeys{"input_tokens", "cache_read_input_tokens",
                                                     "cache_creation_input_tokens", "output_tokens"};

void merge_usage(AnthropicUsage& u, element obj) {
  if (!obj.is_object()) return;
  u.present = true;
  const Members m(kUsageKeys, obj.get_object().value_unsafe());
  int64_t* figures[] = {&u.input_tokens, &u.cache_read_input_tokens, &u.cache_creation_input_tokens,
                        &u.output_tokens};
  for (size_t i = 0; i < kUsageKeys.size(); ++i)
    if (auto n = count_of(m, i, u.malformed)) *figures[i] = std::max(*figures[i], *n);
}

// The output tokens a content_block_delta carries, estimated from its text as chat completions
// estimate theirs; a signature or an unknown delta type carries none the client sees as output.
int64_t delta_tokens(element delta) {
  const std::string_view type = string_member(delta, "type");
  std::string_view text;
  if (type == "text_delta") text = string_member(delta, "text");
  else if (type == "thinking_delta") text = string_member(delta, "thinking");
  else if (type == "input_json_delta") text = string_member(delta, "partial_json");
  else return 0;
  return text.empty() ? 0 : estimate_text_tokens(text);
}

// A content_block_start carries content unless it opens a text or thinking block with nothing in it
// yet (the usual case: the text follows in deltas). A tool_use block carries the tool's name.
bool block_start_is_content(element block, int64_t& est) {
  const std::string_view type = string_member(block, "type");
  std::string_view text;
  if (type == "text") text = string_member(block, "text");
  else if (type == "thinking") text = string_member(block, "thinking");
  else return true;
  if (text.empty()) return false;
  est = estimate_text_tokens(text);
  return true;
}

// An error object sent where an answer was due (`event: error`, or a 200 body) -> the error chat
// completions would report for the same condition; `said` replaces "returned HTTP <status>" in its
// message, since the HTTP status was 200, not the one the error type names.
core::Error in_band_error(const Dialect& dialect, element root, std::string_view data, std::string_view said) {
  element err;
  std::string_view type;
  if (root["error"].get(err) == simdjson::SUCCESS) type = string_member(err, "type");
  const int status = anthropic_error_status(type);
  return in_band(classify_anthropic_error(dialect, status, data, ""), status, said);
}

}  // namespace

std::optional<int64_t> token_count(simdjson::dom::element v, bool& bad) {
  if (v.is_null()) return std::nullopt;
  if (v.is_int64()) {
    int64_t n = v.get_int64().value_unsafe();
    if (n >= 0) return n;
  } else if (v.is_double()) {
    double d = v.get_double().value_unsafe();
    if (d >= 0 && d <= 9007199254740992.0 && d == static_cast<double>(static_cast<int64_t>(d)))
      return static_cast<int64_t>(d);
  }
  bad = true;
  return 0;
}

core::Result<std::string> rewrite_anthropic_model(std::string_view body, std::string_view model) {
  namespace json = core::json;
  std::vector<std::string_view> values;  // the top-level "model" values, in order
  size_t members = 0;
  const bool ok = json::for_each_member(body, [&](const json::Member& m) {
    ++members;
    if (json::key_is(m.key, "model")) values.push_back(m.value);
  });
  if (!ok)
    return core::make_error(core::ErrorKind::bad_request, "request body is not a JSON object",
                            core::ErrorSource::client);
  std::string out;
  out.reserve(body.size() + model.size() + 16);
  if (values.empty()) {
    const size_t open = json::skip_ws(body, 0);  // for_each_member saw '{' there
    out.append(body.substr(0, open + 1));
    out += "\"model\":";
    core::append_json_string(out, model);
    if (members > 0) out.push_back(',');
    out.append(body.substr(open + 1));
    return out;
  }
  // Every occurrence is replaced (the gateway refuses duplicates; none may survive if one came).
  size_t copied = 0;
  for (std::string_view v : values) {
    const size_t at = static_cast<size_t>(v.data() - body.data());
    out.append(body.substr(copied, at - copied));
    core::append_json_string(out, model);
    copied = at + v.size();
  }
  out.append(body.substr(copied));
  return out;
}

void AnthropicUsage::merge(std::string_view usage_json) {
  element root;
  if (parse_object(usage_json, root)) merge_usage(*this, root);
}

core::Usage AnthropicUsage::to_core() const {
  core::Usage u;
  u.present = present;
  u.malformed = malformed;
  u.prompt_tokens = input_tokens + cache_read_input_tokens + cache_creation_input_tokens;
  u.cached_tokens = cache_read_input_tokens;
  u.cache_write_tokens = cache_creation_input_tokens;
  u.completion_tokens = output_tokens;
  return u;
}

core::Result<AnthropicMessageInfo> read_anthropic_message(const Dialect& dialect, std::string_view body) {
  element root;
  if (!parse_object(body, root))
    return core::make_error(core::ErrorKind::server_error, dialect.name + " sent a body that is not a JSON message",
                            core::ErrorSource::upstream);
  if (string_member(root, "type") == "error") return in_band_error(dialect, root, body, " answered HTTP 200 with an error");
  AnthropicMessageInfo info;
  AnthropicUsage usage;
  element v;
  if (root["usage"].get(v) == simdjson::SUCCESS) merge_usage(usage, v);
  info.usage = usage.to_core();
  info.stop_reason = std::string(string_member(root, "stop_reason"));
  return info;
}

core::Usage AnthropicStream::usage() const {
  core::Usage u = usage_.to_core();
  u.present = saw_final_usage_;
  return u;
}

int64_t AnthropicStream::input_tokens_reported() const {
  if (!usage_.present || usage_.malformed) return -1;
  const core::Usage u = usage_.to_core();
  return u.prompt_tokens;
}

AnthropicStream::Step AnthropicStream::process(std::string_view event, std::string_view data) {
  Step step;
  element root;
  if (!parse_object(data, root)) {
    step.action = Action::error;
    step.error = core::make_error(core::ErrorKind::server_error,
                                  dialect_.name + " sent a stream event that is not JSON", core::ErrorSource::upstream);
    return step;
  }
  // The data's type is what clients dispatch on; the SSE name is the fallback.
  const std::string_view type = string_member(root, "type");
  name_.assign(type.empty() ? event : type);
  step.name = name_;
  element v;
  if (name_ == "message_start") {
    element message;
    if (root["message"].get(message) == simdjson::SUCCESS && message.is_object() &&
        message["usage"].get(v) == simdjson::SUCCESS)
      merge_usage(usage_, v);
  } else if (name_ == "ping") {
    step.keepalive = true;
  } else if (name_ == "content_block_start") {
    step.content = root["content_block"].get(v) != simdjson::SUCCESS || block_start_is_content(v, step.est_tokens);
  } else if (name_ == "content_block_delta") {
    step.content = true;
    if (root["delta"].get(v) == simdjson::SUCCESS) step.est_tokens = delta_tokens(v);
  } else if (name_ == "content_block_stop") {
    step.content = true;
  } else if (name_ == "message_delta") {
    step.content = true;
    saw_message_delta_ = true;
    if (root["delta"].get(v) == simdjson::SUCCESS) {
      if (auto reason = string_member(v, "stop_reason"); !reason.empty()) stop_reason_.assign(reason);
    }
    if (root["usage"].get(v) == simdjson::SUCCESS && v.is_object()) {
      merge_usage(usage_, v);
      saw_final_usage_ = true;
    }
  } else if (name_ == "message_stop") {
    step.action = Action::stop;
  } else if (name_ == "error") {
    step.action = Action::error;
    step.error = in_band_error(dialect_, root, data, " reported an error mid-stream");
  } else if (name_.empty()) {
    step.action = Action::error;
    step.error = core::make_error(core::ErrorKind::server_error,
                                  dialect_.name + " sent a stream event without a type", core::ErrorSource::upstream);
  }
  // Any other type (a newer API's event) is relayed as it came; it does not commit the attempt.
  return step;
}

}  // namespace providers
