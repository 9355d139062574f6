// The suspension audit table in the SQLite ledger file: its own connection (the ledger's writer
// thread keeps its own), a busy timeout for the moments the writer holds the lock.
#include <sqlite3.h>

#include <mutex>

#include "gateway/state/suspension_audit.h"

namespace gateway {
namespace {

const char* kAuditTable = R"sql(
CREATE TABLE IF NOT EXISTS suspension_audit (
  seq           INTEGER PRIMARY KEY AUTOINCREMENT,
  ts_ms         INTEGER NOT NULL,
  action        TEXT    NOT NULL,
  suspension_id TEXT    NOT NULL,
  kind          TEXT    NOT NULL,
  target        TEXT    NOT NULL,
  reason        TEXT    NOT NULL,
  by            TEXT    NOT NULL,
  since         TEXT    NOT NULL
);
)sql";

core::Error audit_error(const std::string& path, const std::string& what) {
  return core::make_error(core::ErrorKind::internal, "suspension audit " + path + ": " + what,
                          core::ErrorSource::gateway, "suspension_audit_unavailable");
}

std::string text_at(sqlite3_stmt* st, int col) {
  auto* t = sqlite3_column_text(st, col);
  return t ? reinterpret_cast<const char*>(t) : "";
}

class SqliteSuspensionAudit final : public SuspensionAudit {
 public:
  explicit SqliteSuspensionAudit(std::string path) : path_(std::move(path)) {}
  ~SqliteSuspensionAudit() override { sqlite3_close(db_); }

  core::Status open() {
    int rc = sqlite3_open_v2(path_.c_str(), &db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                             nullptr);
    if (rc != SQLITE_OK) return audit_error(path_, message(rc));
    sqlite3_busy_timeout(db_, 5000);
    char* err = nullptr;
    rc = sqlite3_exec(db_, kAuditTable, nullptr, nullptr, &err);
    std::string why = err ? err : "";
    sqlite3_free(err);
    if (rc != SQLITE_OK) return audit_error(path_, why.empty() ? message(rc) : why);
    return core::ok_status();
  }

  std::string describe() const override { return path_; }

  core::Status append(const SuspensionAuditRow& row) override {
    std::lock_guard lock(mu_);
    sqlite3_stmt* st = nullptr;
    int rc = sqlite3_prepare_v2(db_,
                                "INSERT INTO suspension_audit (ts_ms, action, suspension_id, kind, target, reason, by,"
                                " since) VALUES (?1,?2,?3,?4,?5,?6,?7,?8)",
                                -1, &st, nullptr);
    if (rc != SQLITE_OK) return audit_error(path_, message(rc));
    const auto& s = row.suspension;
    sqlite3_bind_int64(st, 1, row.ts_ms);
    const std::string* texts[] = {&row.action, &s.id, nullptr, &s.selector.target, &s.reason, &s.by, &s.since};
    const std::string kind = routing::to_string(s.selector.kind);
    for (int i = 0; i < 7; ++i) {
      const std::string& v = texts[i] ? *texts[i] : kind;
      sqlite3_bind_text(st, i + 2, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
    }
    rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) return audit_error(path_, message(rc));
    return core::ok_status();
  }

  core::Result<std::vector<SuspensionAuditRow>> rows() const override {
    std::lock_guard lock(mu_);
    sqlite3_stmt* st = nullptr;
    int rc = sqlite3_prepare_v2(db_,
                                "SELECT ts_ms, action, suspension_id, kind, target, reason, by, since"
                                " FROM suspension_audit ORDER BY seq",
                                -1, &st, nullptr);
    if (rc != SQLITE_OK) return audit_error(path_, message(rc));
    std::vector<SuspensionAuditRow> out;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
      std::string text[7];
      for (int i = 0; i < 7; ++i) text[i] = text_at(st, i + 1);
      out.push_back(audit_row_of(sqlite3_column_int64(st, 0), text));
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) return audit_error(path_, message(rc));
    return out;
  }

 private:
  std::string message(int rc) const {
    return std::string(db_ ? sqlite3_errmsg(db_) : sqlite3_errstr(rc)) + " (sqlite code " + std::to_string(rc) + ")";
  }

  std::string path_;
  sqlite3* db_ = nullptr;
  mutable std::mutex mu_;
};

}  // namespace

core::Result<std::unique_ptr<SuspensionAudit>> open_sqlite_suspension_audit(const std::string& path) {
  auto a = std::make_unique<SqliteSuspensionAudit>(path);
  if (auto s = a->open(); !s) return s.error();
  return std::unique_ptr<SuspensionAudit>(std::move(a));
}

}  // namespace gateway
