#pragma once
// The kill switch's admin endpoints, as functions of the App and the request (the HTTP layer only
// dispatches and offloads them, since they write the audit table and may talk to Redis):
//   GET    /admin/suspend                      {"suspensions":[...], "fleet": {...}}
//   POST   /admin/suspend  {selector, reason, by?}  201 {suspension}
//   DELETE /admin/suspend/{id}                 200 {suspension lifted}
//   DELETE /admin/suspend?selector=vendor:qwen 200 {"lifted":[...]}
// A suspension from the policy file is read-only here (409: edit the file and reload).
#include <string>
#include <string_view>

#include "gateway/app/app.h"

namespace gateway {

struct AdminReply {
  int status = 200;
  std::string body;
};

AdminReply list_suspensions(const App& app);
// `caller`: who the admin caller is, the default for `by`.
AdminReply create_suspension(App& app, std::string_view body, const std::string& caller);
AdminReply lift_suspension(App& app, const std::string& id, const std::string& caller);
AdminReply lift_suspensions_matching(App& app, std::string_view selector, const std::string& caller);

// One suspension as JSON: {id, kind, target, selector, reason, since, by, source: policy|runtime}.
std::string suspension_json(const routing::Suspension& s);

// Selectors of a POST /admin/explain `what_if` member or of --what-if suspend=..., read against
// the live policy (bad_request naming the selector when unknown).
core::Result<routing::SuspensionList> what_if_from_specs(const App& app, const std::vector<std::string>& specs);

// The `what_if` member of a POST /admin/explain body: a selector or a list of them (empty when
// absent); anything else is a bad_request.
core::Result<std::vector<std::string>> what_if_member(std::string_view body);

}  // namespace gateway
