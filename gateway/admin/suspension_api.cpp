#include "gateway/admin/suspension_api.h"

#include <simdjson.h>

#include "core/json_members.h"
#include "core/json_writer.h"
#include "gateway/api/openai_chat.h"
#include "routing/what_if.h"

namespace gateway {
namespace {

constexpr size_t kMaxReason = 500, kMaxBy = 100;

AdminReply error_reply(const core::Error& e, int status) { return {status, error_json(e)}; }

core::Error bad(std::string message, std::string param = {}) {
  return core::make_error(core::ErrorKind::bad_request, std::move(message), core::ErrorSource::client,
                          "invalid_suspension", std::move(param));
}

// Printable text only: the fields end up in log lines, the audit table and Redis values.
bool printable(std::string_view s) {
  for (unsigned char c : s)
    if (c < 0x20 || c == 0x7f) return false;
  return true;
}

std::optional<core::Error> no_service(const App& app) {
  if (!app.policy_router)
    return core::make_error(core::ErrorKind::bad_request, "suspensions need a policy file (`policy:` in the config)",
                            core::ErrorSource::client, "no_policy");
  if (!app.suspensions)
    return core::make_error(core::ErrorKind::bad_request,
                            "runtime suspensions need a ledger database to record them in (state.ledger_path or "
                            "state.ledger.backend postgres); the policy file's `suspended:` list works without one",
                            core::ErrorSource::client, "no_suspension_audit");
  return std::nullopt;
}

int status_of(const core::Error& e) {
  return e.kind == core::ErrorKind::not_found ? 404 : e.kind == core::ErrorKind::bad_request ? 400 : 500;
}

}  // namespace

std::string suspension_json(const routing::Suspension& s) {
  std::string o = "{\"id\":";
  core::append_json_string(o, s.id);
  o += ",\"kind\":";
  core::append_json_string(o, routing::to_string(s.selector.kind));
  o += ",\"target\":";
  core::append_json_string(o, s.selector.target);
  o += ",\"selector\":";
  core::append_json_string(o, s.selector.text());
  o += ",\"reason\":";
  core::append_json_string(o, s.reason);
  o += ",\"since\":";
  core::append_json_string(o, s.since);
  o += ",\"by\":";
  core::append_json_string(o, s.by);
  o += ",\"source\":";
  o += s.from_policy ? "\"policy\"" : "\"runtime\"";
  o += ",\"exclusion_reason\":";
  core::append_json_string(o, routing::suspension_reason(s));
  o += '}';
  return o;
}

AdminReply list_suspensions(const App& app) {
  if (!app.policy_router) return error_reply(*no_service(app), 409);
  auto all = app.policy_router->suspensions();
  std::string o = "{\"suspensions\":[";
  for (size_t i = 0; i < all->size(); ++i) {
    if (i) o += ',';
    o += suspension_json((*all)[i]);
  }
  o += "],\"runtime_enabled\":";
  o += app.suspensions ? "true" : "false";
  if (app.suspensions && app.suspensions->fleet()) {
    o += ",\"fleet\":{\"poll_interval_ms\":" + std::to_string(app.suspensions->poll_interval().count()) +
         ",\"sync_failing\":" + (app.suspensions->fleet_sync_failing() ? "true" : "false") +
         ",\"polls\":" + std::to_string(app.suspensions->fleet_polls()) + "}";
  }
  o += '}';
  return {200, std::move(o)};
}

AdminReply create_suspension(App& app, std::string_view body, const std::string& caller) {
  if (auto e = no_service(app)) return error_reply(*e, 409);
  simdjson::dom::parser parser;
  simdjson::dom::element root;
  if (parser.parse(body.data(), body.size()).get(root) != simdjson::SUCCESS || !root.is_object())
    return error_reply(bad("the body must be a JSON object {selector, reason, by}"), 400);
  core::json::Ambiguity amb;
  if (core::json::find_repeated_member(root, amb))
    return error_reply(bad("member '" + std::string(amb.key) + "' appears twice"), 400);
  std::string selector, reason, by = caller;
  for (auto field : simdjson::dom::object(root)) {
    const std::string_view key = field.key;
    std::string* out = key == "selector" ? &selector : key == "reason" ? &reason : key == "by" ? &by : nullptr;
    if (!out) return error_reply(bad("unknown member '" + std::string(key) + "' (expected selector, reason, by)"), 400);
    std::string_view v;
    if (field.value.get_string().get(v) != simdjson::SUCCESS)
      return error_reply(bad(std::string(key) + " must be a string", std::string(key)), 400);
    *out = std::string(v);
  }
  if (selector.empty()) return error_reply(bad("selector is required (e.g. \"vendor:qwen\", \"jurisdiction:CN\")", "selector"), 400);
  if (reason.empty()) return error_reply(bad("reason is required: say why the vendor is suspended", "reason"), 400);
  if (reason.size() > kMaxReason || !printable(reason))
    return error_reply(bad("reason must be printable text of at most 500 bytes", "reason"), 400);
  if (by.empty() || by.size() > kMaxBy || !printable(by))
    return error_reply(bad("by must be printable text of 1 to 100 bytes", "by"), 400);
  auto sel = routing::parse_suspension_selector(selector, app.policy_router->policy()->deployments);
  if (!sel) return error_reply(sel.error(), 400);
  auto s = app.suspensions->suspend(*sel, reason, by);
  if (!s) return error_reply(s.error(), 500);  // not recorded: not in effect
  return {201, suspension_json(*s)};
}

AdminReply lift_suspension(App& app, const std::string& id, const std::string& caller) {
  if (auto e = no_service(app)) return error_reply(*e, 409);
  for (const auto& s : app.policy_router->policy()->suspended)
    if (s.id == id)
      return error_reply(core::make_error(core::ErrorKind::bad_request,
                                          "suspension '" + id + "' comes from the policy file " +
                                              app.policy_router->policy()->file +
                                              "; remove it there and reload (it is read-only through the API)",
                                          core::ErrorSource::client, "suspension_read_only"),
                         409);
  auto s = app.suspensions->lift(id, caller);
  if (!s) return error_reply(s.error(), status_of(s.error()));
  return {200, suspension_json(*s)};
}

AdminReply lift_suspensions_matching(App& app, std::string_view selector, const std::string& caller) {
  if (auto e = no_service(app)) return error_reply(*e, 409);
  auto sel = routing::parse_suspension_selector(selector, app.policy_router->policy()->deployments);
  if (!sel) return error_reply(sel.error(), 400);
  const auto ids = app.suspensions->ids_of(*sel);
  if (ids.empty())
    return error_reply(core::make_error(core::ErrorKind::not_found,
                                        "no runtime suspension has selector '" + sel->text() + "'",
                                        core::ErrorSource::client, "suspension_not_found"),
                       404);
  std::string o = "{\"lifted\":[";
  for (size_t i = 0; i < ids.size(); ++i) {
    auto s = app.suspensions->lift(ids[i], caller);
    if (!s) return error_reply(s.error(), status_of(s.error()));
    if (i) o += ',';
    o += suspension_json(*s);
  }
  o += "]}";
  return {200, std::move(o)};
}

core::Result<routing::SuspensionList> what_if_from_specs(const App& app, const std::vector<std::string>& specs) {
  std::vector<std::string> selectors;
  for (const auto& spec : specs) {
    constexpr std::string_view kSuspend = "suspend=";
    std::string_view s = spec;
    if (s.rfind(kSuspend, 0) == 0) s.remove_prefix(kSuspend.size());
    selectors.emplace_back(s);
  }
  return routing::what_if_suspensions(selectors, app.policy_router->policy()->deployments);
}

core::Result<std::vector<std::string>> what_if_member(std::string_view body) {
  std::vector<std::string> out;
  simdjson::dom::parser parser;
  simdjson::dom::element root, v;
  // A body that is not a JSON object is the chat parser's to refuse.
  if (parser.parse(body.data(), body.size()).get(root) != simdjson::SUCCESS || !root.is_object()) return out;
  if (root["what_if"].get(v) != simdjson::SUCCESS) return out;
  auto bad_member = [] {
    return core::make_error(core::ErrorKind::bad_request,
                            "what_if must be a selector or a list of selectors (\"alibaba\", \"jurisdiction:CN\")",
                            core::ErrorSource::client, "invalid_suspension", "what_if");
  };
  std::string_view one;
  if (v.get_string().get(one) == simdjson::SUCCESS) {
    out.emplace_back(one);
    return out;
  }
  simdjson::dom::array list;
  if (v.get_array().get(list) != simdjson::SUCCESS) return bad_member();
  for (auto item : list) {
    if (item.get_string().get(one) != simdjson::SUCCESS) return bad_member();
    out.emplace_back(one);
  }
  if (out.empty()) return bad_member();
  return out;
}

}  // namespace gateway
