#include "gateway/api/responses_native.h"

#include <algorithm>
#include <array>

#include "core/json_edit.h"
#include "core/json_scan.h"
#include "core/json_writer.h"
#include "gateway/api/openai_responses.h"

namespace gateway {
namespace {

namespace json = core::json;

// The value of member `key` of an object's text ("" when absent or not an object).
std::string_view member_of(std::string_view obj, std::string_view key) {
  std::string_view found;
  json::for_each_member(obj, [&](const json::Member& m) {
    if (found.empty() && json::key_is(m.key, key)) found = m.value;
  });
  return found;
}

std::string decoded(std::string_view literal) {
  std::string out;
  if (!literal.empty() && literal.front() == '"') json::decode_string(literal, out);
  return out;
}

// An object keeping only the members named in `keep`; members in `nested` are arrays of objects
// filtered by `part_keep`.
template <size_t N, size_t M>
std::string filtered(std::string_view obj, const std::array<std::string_view, N>& keep,
                     const std::array<std::string_view, M>& part_keep, bool parts) {
  std::string out = "{";
  json::for_each_member(obj, [&](const json::Member& m) {
    std::string key;
    json::decode_string("\"" + std::string(m.key) + "\"", key);
    if (std::find(keep.begin(), keep.end(), key) == keep.end()) return;
    if (out.size() > 1) out.push_back(',');
    core::append_json_string(out, key);
    out.push_back(':');
    if (parts && (key == "content" || key == "summary") && json::trim(m.value).starts_with('[')) {
      out.push_back('[');
      bool first = true;
      json::for_each_element(m.value, [&](std::string_view part) {
        if (!first) out.push_back(',');
        first = false;
        if (json::trim(part).starts_with('{')) out += filtered(part, part_keep, part_keep, false);
        else out.append(part);
      });
      out.push_back(']');
    } else {
      out.append(m.value);
    }
  });
  out.push_back('}');
  return out;
}

constexpr std::array<std::string_view, 10> kItemKeep{"type", "id", "status", "role", "content", "call_id",
                                                      "name", "arguments", "output", "summary"};
constexpr std::array<std::string_view, 5> kPartKeep{"type", "text", "annotations", "refusal", "logprobs"};
constexpr std::array<std::string_view, 4> kKnownItems{"message", "function_call", "function_call_output",
                                                      "reasoning"};

std::string stored_item(std::string_view item) {
  const std::string type = decoded(member_of(item, "type"));
  if (std::find(kKnownItems.begin(), kKnownItems.end(), type) == kKnownItems.end()) return std::string(item);
  return filtered(item, kItemKeep, kPartKeep, true);
}

}  // namespace

std::optional<std::string> responses_native_body(std::string_view body, std::string_view prior_items_json,
                                                 std::string_view input_items_json) {
  std::string input;
  const bool continues = !json::trim(prior_items_json).empty() && json::trim(prior_items_json) != "[]";
  if (continues) {
    // Two arrays joined: "[a,b" + "," + "c]".
    std::string_view prior = json::trim(prior_items_json), own = json::trim(input_items_json);
    input.assign(prior.substr(0, prior.size() - 1));
    if (own.size() > 2) {
      input.push_back(',');
      input.append(own.substr(1));
    } else {
      input.push_back(']');
    }
  }
  std::array<json::MemberEdit, 2> edits{{{"previous_response_id", std::nullopt, false},
                                         {"input", std::string_view(input), false}}};
  return json::edit_members(body, std::span(edits.data(), continues ? 2 : 1));
}

std::optional<std::string> without_builtin_tools(std::string_view body) {
  bool builtin = false;
  std::string tools = "[";
  json::for_each_element(member_of(body, "tools"), [&](std::string_view tool) {
    if (decoded(member_of(tool, "type")) != "function") {
      builtin = true;
      return;
    }
    if (tools.size() > 1) tools.push_back(',');
    tools.append(tool);
  });
  tools.push_back(']');
  const std::string_view choice = member_of(body, "tool_choice");
  const bool builtin_choice = json::trim(choice).starts_with('{') && decoded(member_of(choice, "type")) != "function";
  if (!builtin && !builtin_choice) return std::nullopt;
  std::array<json::MemberEdit, 2> edits{{{"tools", std::string_view(tools), false}, {"tool_choice", std::nullopt, false}}};
  return json::edit_members(body, std::span(edits.data(), builtin_choice ? 2 : 1));
}

std::optional<std::string> rewrite_native_response(std::string_view response_json, const ResponseIdentity& who) {
  const std::string id = core::json_string(who.id), model = core::json_string(who.model);
  const std::string previous = who.previous_response_id.empty() ? "null" : core::json_string(who.previous_response_id);
  const std::array<json::MemberEdit, 4> edits{{{"id", id, true},
                                              {"model", model, false},
                                              {"store", who.store ? "true" : "false", false},
                                              {"previous_response_id", previous, false}}};
  return json::edit_members(response_json, edits);
}

std::string native_output_items(std::string_view response_json) {
  std::string out = "[";
  json::for_each_element(member_of(response_json, "output"), [&](std::string_view item) {
    if (out.size() > 1) out.push_back(',');
    out += stored_item(item);
  });
  out.push_back(']');
  return out;
}

std::optional<std::string> NativeEventRewriter::rewrite(std::string_view data) {
  std::string seq = std::to_string(sequence_);
  std::optional<std::string> response;
  if (auto r = member_of(data, "response"); json::trim(r).starts_with('{')) {
    response = rewrite_native_response(r, who_);
    if (!response) return std::nullopt;
  }
  if (decoded(member_of(data, "type")) == "response.output_item.done")
    if (auto item = member_of(data, "item"); !item.empty()) done_items_.push_back(stored_item(item));
  std::array<json::MemberEdit, 2> edits{{{"sequence_number", std::string_view(seq), true},
                                         {"response", std::nullopt, false}}};
  if (response) edits[1].value = *response;
  auto out = json::edit_members(data, std::span(edits.data(), response ? 2 : 1));
  if (!out) return std::nullopt;
  if (response) response_ = std::move(*response);
  ++sequence_;
  return out;
}

std::string NativeEventRewriter::failed(const core::Error& e, const std::optional<core::Usage>& usage) {
  std::string base = response_;
  if (base.empty()) {
    base = "{\"id\":" + core::json_string(who_.id) + ",\"object\":\"response\",\"model\":" +
           core::json_string(who_.model) + "}";
  }
  std::string output = "[";
  for (const auto& item : done_items_) {
    if (output.size() > 1) output.push_back(',');
    output += item;
  }
  output.push_back(']');
  const std::string error = responses_failure_json(e);
  const std::string usage_json = usage ? responses_usage_json(*usage) : "null";
  const std::array<json::MemberEdit, 4> edits{{{"status", "\"failed\"", true},
                                              {"error", error, true},
                                              {"output", output, true},
                                              {"usage", usage_json, true}}};
  response_ = json::edit_members(base, edits).value_or(base);
  std::string event = "{\"type\":\"response.failed\",\"sequence_number\":" + std::to_string(sequence_++) +
                      ",\"response\":" + response_ + "}";
  return event;
}

}  // namespace gateway
