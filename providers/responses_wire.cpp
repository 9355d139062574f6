#include "providers/responses_wire.h"

#include <simdjson.h>

#include <array>

#include "core/json_edit.h"
#include "core/json_scan.h"
#include "core/json_writer.h"
#include "providers/dialect.h"
#include "providers/error_map.h"
#include "providers/openai_normalize.h"
#include "providers/wire_counts.h"

namespace providers {
namespace {

using simdjson::dom::element;

thread_local simdjson::dom::parser tl_parser;

bool parse_object(std::string_view text, element& root) {
  auto padded = core::json::padded_copy(text, simdjson::SIMDJSON_PADDING);
  return tl_parser.parse(padded.data(), padded.size(), false).get(root) == simdjson::SUCCESS && root.is_object();
}

std::string_view string_member(element obj, const char* key) {
  element v;
  if (!obj.is_object() || obj[key].get(v) != simdjson::SUCCESS || !v.is_string()) return {};
  return v.get_string().value_unsafe();
}

// Figure `key` of `obj` (absent: 0, not reported).
int64_t figure(element obj, const char* key, core::Usage& u) {
  element v;
  if (!obj.is_object() || obj[key].get(v) != simdjson::SUCCESS) return 0;
  return token_count(v, u.malformed).value_or(0);
}

core::Usage usage_of(element response) {
  core::Usage u;
  element usage, details;
  if (response["usage"].get(usage) != simdjson::SUCCESS || !usage.is_object()) return u;
  u.present = true;
  u.prompt_tokens = figure(usage, "input_tokens", u);
  u.completion_tokens = figure(usage, "output_tokens", u);
  if (usage["input_tokens_details"].get(details) == simdjson::SUCCESS) u.cached_tokens = figure(details, "cached_tokens", u);
  if (usage["output_tokens_details"].get(details) == simdjson::SUCCESS)
    u.reasoning_tokens = figure(details, "reasoning_tokens", u);
  // Parts larger than their whole cannot be true: the report is not priced.
  if (u.cached_tokens > u.prompt_tokens || u.reasoning_tokens > u.completion_tokens) u.malformed = true;
  return u;
}

// The HTTP status an in-band error code stands for (OpenAI's codes; vendors reuse them).
int status_for_code(std::string_view code) {
  static constexpr std::array<std::pair<std::string_view, int>, 6> kCodes{{{"rate_limit_exceeded", 429},
                                                                           {"insufficient_quota", 402},
                                                                           {"context_length_exceeded", 400},
                                                                           {"invalid_prompt", 400},
                                                                           {"server_is_overloaded", 503},
                                                                           {"server_error", 500}}};
  for (const auto& [c, s] : kCodes)
    if (c == code) return s;
  return 500;
}

// An error object ({"code","message"}) where an answer was due -> the error chat completions
// report for the same condition; `said` replaces "returned HTTP <status>" in its message.
core::Error in_band_error(const Dialect& dialect, element err, std::string_view said) {
  const std::string_view code = string_member(err, "code");
  std::string body = "{\"error\":{\"message\":";
  core::append_json_string(body, string_member(err, "message"));
  body += ",\"code\":";
  core::append_json_string(body, code);
  body += "}}";
  const int status = status_for_code(code);
  return in_band(classify_upstream_error(dialect, status, body, ""), status, said);
}

// Whether an event that is not a delta carries content: an item added with something in it (a
// function call names its tool) does; an empty message or reasoning item, or an empty part, does not.
bool added_is_content(std::string_view type, element root) {
  if (type == "response.content_part.added" || type == "response.reasoning_summary_part.added") return false;
  element item;
  if (root["item"].get(item) != simdjson::SUCCESS) return true;
  const std::string_view kind = string_member(item, "type");
  return kind != "message" && kind != "reasoning";
}

}  // namespace

core::Result<std::string> rewrite_responses_body(std::string_view body, std::string_view model) {
  const std::string quoted = core::json_string(model);
  const std::array<core::json::MemberEdit, 3> edits{{{"model", quoted, true},
                                                    {"store", "false", true},
                                                    {"previous_response_id", std::nullopt, false}}};
  auto out = core::json::edit_members(body, edits);
  if (!out)
    return core::make_error(core::ErrorKind::bad_request, "request body is not a JSON object", core::ErrorSource::client);
  return std::move(*out);
}

core::Usage read_responses_usage(std::string_view response_json) {
  element root;
  if (!parse_object(response_json, root)) return {};
  return usage_of(root);
}

core::Result<ResponsesAnswerInfo> read_responses_answer(const Dialect& dialect, std::string_view body) {
  element root, err;
  if (!parse_object(body, root))
    return core::make_error(core::ErrorKind::server_error, dialect.name + " sent a body that is not a JSON response",
                            core::ErrorSource::upstream);
  const std::string_view status = string_member(root, "status");
  if (root["error"].get(err) == simdjson::SUCCESS && err.is_object() && (status.empty() || status == "failed"))
    return in_band_error(dialect, err, " answered HTTP 200 with an error");
  if (string_member(root, "object") != "response")
    return core::make_error(core::ErrorKind::server_error, dialect.name + " sent a body that is not a Response object",
                            core::ErrorSource::upstream);
  return ResponsesAnswerInfo{usage_of(root), std::string(status)};
}

NativeStep ResponsesStream::process(std::string_view event, std::string_view data) {
  NativeStep step;
  element root, v;
  if (!parse_object(data, root)) {
    step.action = NativeAction::error;
    step.error = core::make_error(core::ErrorKind::server_error, dialect_.name + " sent a stream event that is not JSON",
                                  core::ErrorSource::upstream);
    return step;
  }
  const std::string_view type = string_member(root, "type");
  name_.assign(type.empty() ? event : type);
  step.name = name_;
  const std::string_view n = name_;
  auto ends_with = [n](std::string_view tail) { return n.size() >= tail.size() && n.substr(n.size() - tail.size()) == tail; };
  if (n == "response.completed" || n == "response.incomplete") {
    step.action = NativeAction::stop;
    if (root["response"].get(v) == simdjson::SUCCESS && v.is_object()) {
      usage_ = usage_of(v);
      status_.assign(string_member(v, "status"));
    }
    if (status_.empty()) status_ = n.substr(9);
  } else if (n == "response.failed") {
    step.action = NativeAction::error;
    element err;
    if (root["response"].get(v) != simdjson::SUCCESS || v["error"].get(err) != simdjson::SUCCESS) err = root;
    step.error = in_band_error(dialect_, err, " reported response.failed");
  } else if (n == "error") {
    step.action = NativeAction::error;
    step.error = in_band_error(dialect_, root, " reported an error mid-stream");
  } else if (n.empty()) {
    step.action = NativeAction::error;
    step.error = core::make_error(core::ErrorKind::server_error, dialect_.name + " sent a stream event without a type",
                                  core::ErrorSource::upstream);
  } else if (ends_with(".delta")) {
    step.content = true;
    if (auto d = string_member(root, "delta"); !d.empty()) step.est_tokens = estimate_text_tokens(d);
  } else if (ends_with(".added")) {
    step.content = added_is_content(n, root);
  } else if (ends_with(".done")) {
    step.content = true;
  }
  // response.created / in_progress / queued and unknown types are relayed as they came, held.
  return step;
}

}  // namespace providers
