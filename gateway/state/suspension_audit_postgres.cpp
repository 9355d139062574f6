// The suspension audit table in the fleet's PostgreSQL ledger database: one connection, re-made
// when it breaks; every append is one INSERT (auto-commit), durable when the server acknowledges it.
#include <libpq-fe.h>

#include <cstdlib>
#include <mutex>

#include "gateway/state/postgres_schema_lock.h"
#include "gateway/state/suspension_audit.h"

namespace gateway {
namespace {

const char* kAuditTable = R"sql(
CREATE TABLE IF NOT EXISTS suspension_audit (
  seq           BIGSERIAL PRIMARY KEY,
  ts_ms         BIGINT NOT NULL,
  action        TEXT   NOT NULL,
  suspension_id TEXT   NOT NULL,
  kind          TEXT   NOT NULL,
  target        TEXT   NOT NULL,
  reason        TEXT   NOT NULL,
  by            TEXT   NOT NULL,
  since         TEXT   NOT NULL
)
)sql";

core::Error audit_error(const std::string& what) {
  return core::make_error(core::ErrorKind::internal, "suspension audit (postgres): " + what,
                          core::ErrorSource::gateway, "suspension_audit_unavailable");
}

std::string one_line(const PGconn* c) {
  std::string m = c ? PQerrorMessage(c) : "out of memory";
  for (char& ch : m)
    if (ch == '\n') ch = ' ';
  while (!m.empty() && m.back() == ' ') m.pop_back();
  return m.empty() ? "connection lost" : m;
}

void quiet(void*, const char*) {}

class PostgresSuspensionAudit final : public SuspensionAudit {
 public:
  explicit PostgresSuspensionAudit(std::string conninfo) : conninfo_(std::move(conninfo)) {}
  ~PostgresSuspensionAudit() override { PQfinish(conn_); }

  std::string describe() const override { return "postgres"; }

  core::Status prepare() {
    std::lock_guard lock(mu_);
    if (auto s = connected(); !s) return s;
    // Under the schema lock, as the ledger's tables: another replica may be creating it right now.
    const std::string create = std::string("BEGIN;") + kPostgresSchemaLock + ";" + kAuditTable + ";COMMIT;";
    PGresult* r = PQexec(conn_, create.c_str());
    const bool ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    PQclear(r);
    if (ok) return core::ok_status();
    const std::string why = one_line(conn_);
    PQclear(PQexec(conn_, "ROLLBACK"));
    return audit_error(why);
  }

  core::Status append(const SuspensionAuditRow& row) override {
    std::lock_guard lock(mu_);
    if (auto s = connected(); !s) return s;
    const auto& s = row.suspension;
    const std::string ts = std::to_string(row.ts_ms), kind = routing::to_string(s.selector.kind);
    const char* params[] = {ts.c_str(), row.action.c_str(), s.id.c_str(), kind.c_str(), s.selector.target.c_str(),
                            s.reason.c_str(), s.by.c_str(), s.since.c_str()};
    PGresult* r = PQexecParams(conn_,
                               "INSERT INTO suspension_audit (ts_ms, action, suspension_id, kind, target, reason, by,"
                               " since) VALUES ($1,$2,$3,$4,$5,$6,$7,$8)",
                               8, nullptr, params, nullptr, nullptr, 0);
    const bool ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    PQclear(r);
    if (!ok) return failed();
    return core::ok_status();
  }

  core::Result<std::vector<SuspensionAuditRow>> rows() const override {
    std::lock_guard lock(mu_);
    if (auto s = connected(); !s) return s.error();
    PGresult* r = PQexec(conn_,
                         "SELECT ts_ms, action, suspension_id, kind, target, reason, by, since FROM suspension_audit"
                         " ORDER BY seq");
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
      PQclear(r);
      return failed().error();
    }
    std::vector<SuspensionAuditRow> out;
    for (int i = 0; i < PQntuples(r); ++i) {
      std::string text[7];
      for (int c = 0; c < 7; ++c) text[c] = PQgetvalue(r, i, c + 1);
      out.push_back(audit_row_of(std::strtoll(PQgetvalue(r, i, 0), nullptr, 10), text));
    }
    PQclear(r);
    return out;
  }

 private:
  // Caller holds mu_.
  core::Status connected() const {
    if (conn_ && PQstatus(conn_) == CONNECTION_OK) return core::ok_status();
    PQfinish(conn_);
    const char* keys[] = {"connect_timeout", "application_name", "dbname", nullptr};
    const char* vals[] = {"5", "gateway", conninfo_.c_str(), nullptr};
    conn_ = PQconnectdbParams(keys, vals, 1);
    if (conn_ && PQstatus(conn_) == CONNECTION_OK) {
      PQsetNoticeProcessor(conn_, quiet, nullptr);
      return core::ok_status();
    }
    return audit_error(one_line(conn_));
  }
  // A failed statement: report it, and drop a broken connection so the next call re-makes it.
  core::Status failed() const {
    core::Error e = audit_error(one_line(conn_));
    if (PQstatus(conn_) != CONNECTION_OK) {
      PQfinish(conn_);
      conn_ = nullptr;
    }
    return e;
  }

  std::string conninfo_;
  mutable PGconn* conn_ = nullptr;
  mutable std::mutex mu_;
};

}  // namespace

core::Result<std::unique_ptr<SuspensionAudit>> open_postgres_suspension_audit(const std::string& conninfo) {
  auto a = std::make_unique<PostgresSuspensionAudit>(conninfo);
  if (auto s = a->prepare(); !s) return s.error();
  return std::unique_ptr<SuspensionAudit>(std::move(a));
}

}  // namespace gateway
