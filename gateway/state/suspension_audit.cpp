#include "gateway/state/suspension_audit.h"

#include <algorithm>

namespace gateway {

SuspensionAuditRow audit_row_of(int64_t ts_ms, const std::string (&text)[7]) {
  SuspensionAuditRow r;
  r.ts_ms = ts_ms;
  r.action = text[0];
  r.suspension.id = text[1];
  r.suspension.selector.kind = routing::parse_suspension_kind(text[2]).value_or(routing::SuspensionKind::deployment);
  r.suspension.selector.target = text[3];
  r.suspension.reason = text[4];
  r.suspension.by = text[5];
  r.suspension.since = text[6];
  return r;
}

routing::SuspensionList replay_suspensions(const std::vector<SuspensionAuditRow>& rows) {
  routing::SuspensionList active;
  for (const auto& r : rows) {
    auto same = [&](const routing::Suspension& s) { return s.id == r.suspension.id; };
    if (r.action == "suspend") {
      if (std::none_of(active.begin(), active.end(), same)) active.push_back(r.suspension);
    } else if (r.action == "lift") {
      active.erase(std::remove_if(active.begin(), active.end(), same), active.end());
    }
  }
  return active;
}

}  // namespace gateway
