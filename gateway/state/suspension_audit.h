#pragma once
// The kill switch's audit table, in the ledger's database: every suspend and lift is one row
// (who, when, why, what). The runtime suspensions in effect are replayed from it at start-up, so
// they survive a restart. Same table in SQLite (the ledger file) and PostgreSQL (the fleet's
// ledger database):
//   suspension_audit(seq, ts_ms, action 'suspend'|'lift', suspension_id, kind, target, reason, by, since)
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/result.h"
#include "routing/suspensions.h"

namespace gateway {

struct SuspensionAuditRow {
  int64_t ts_ms = 0;
  std::string action;  // "suspend" | "lift"
  routing::Suspension suspension;  // for a lift: the suspension lifted; `by` is who lifted it
};

class SuspensionAudit {
 public:
  virtual ~SuspensionAudit() = default;
  virtual std::string describe() const = 0;
  // Durable once it returns ok; an error means the row is not recorded.
  virtual core::Status append(const SuspensionAuditRow& row) = 0;
  // Every row, oldest first.
  virtual core::Result<std::vector<SuspensionAuditRow>> rows() const = 0;
};

core::Result<std::unique_ptr<SuspensionAudit>> open_sqlite_suspension_audit(const std::string& path);
core::Result<std::unique_ptr<SuspensionAudit>> open_postgres_suspension_audit(const std::string& conninfo);

// A row from its stored columns, in table order (ts_ms, then action .. since as text); a kind this
// gateway does not know reads as `deployment` (it then covers nothing, and is still listed).
SuspensionAuditRow audit_row_of(int64_t ts_ms, const std::string (&text)[7]);

// The suspensions still in effect after `rows`: each suspend not followed by a lift of its id.
routing::SuspensionList replay_suspensions(const std::vector<SuspensionAuditRow>& rows);

}  // namespace gateway
