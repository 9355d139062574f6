#include "gateway/state/ledger_sqlite.h"

#include <sqlite3.h>

#include <cstdio>
#include <cstdlib>

#include "gateway/state/ledger_error.h"

namespace gateway {
namespace {

// 1: request_id was the client's x-request-id (unique with attempt: clients could collide).
// 2: request_id is the gateway's own id; client_request_id and usage_source added.
// 3: baseline_pico (NULL when no baseline applied), added in place to a version 2 file.
constexpr int kSchemaVersion = 3;

const char* kSpendTable = R"sql(
CREATE TABLE IF NOT EXISTS spend (
  id                 INTEGER PRIMARY KEY,
  ts_ms              INTEGER NOT NULL,
  tenant             TEXT    NOT NULL,
  key_id             TEXT    NOT NULL,
  request_id         TEXT    NOT NULL,
  client_request_id  TEXT    NOT NULL DEFAULT '',
  attempt            INTEGER NOT NULL,
  deployment         TEXT    NOT NULL,
  status             TEXT    NOT NULL,
  usage_source       TEXT    NOT NULL DEFAULT 'provider',
  prompt_tokens      INTEGER NOT NULL,
  cached_tokens      INTEGER NOT NULL,
  cache_write_tokens INTEGER NOT NULL,
  completion_tokens  INTEGER NOT NULL,
  reasoning_tokens   INTEGER NOT NULL,
  cost_pico          INTEGER NOT NULL,
  baseline_pico      INTEGER,
  UNIQUE (request_id, attempt)
);
)sql";

const char* kSpendIndexes = R"sql(
CREATE INDEX IF NOT EXISTS spend_tenant_ts ON spend (tenant, ts_ms);
CREATE INDEX IF NOT EXISTS spend_ts ON spend (ts_ms);
CREATE INDEX IF NOT EXISTS spend_client_request ON spend (client_request_id);
)sql";

// Version 1 -> 2 in one transaction: the old rows keep their row ids, their client id moves to
// client_request_id and their gateway id becomes "v1-<row id>" (unique, and never a UUID).
const char* kMigrateV1 = R"sql(
ALTER TABLE spend RENAME TO spend_v1;
DROP INDEX IF EXISTS spend_tenant_ts;
DROP INDEX IF EXISTS spend_ts;
)sql";
const char* kCopyV1 = R"sql(
INSERT INTO spend (id, ts_ms, tenant, key_id, request_id, client_request_id, attempt, deployment, status,
                   usage_source, prompt_tokens, cached_tokens, cache_write_tokens, completion_tokens,
                   reasoning_tokens, cost_pico)
  SELECT id, ts_ms, tenant, key_id, 'v1-' || id, request_id, attempt, deployment, status, 'provider',
         prompt_tokens, cached_tokens, cache_write_tokens, completion_tokens, reasoning_tokens, cost_pico
  FROM spend_v1;
DROP TABLE spend_v1;
)sql";

std::string sqlite_message(sqlite3* db, int rc) {
  std::string m = db ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
  return m + " (sqlite code " + std::to_string(rc) + ")";
}

// Runs SQL that returns no rows (or ignores them). Returns the sqlite code.
int exec(sqlite3* db, const char* sql, std::string* err) {
  char* msg = nullptr;
  int rc = sqlite3_exec(db, sql, nullptr, nullptr, &msg);
  if (rc != SQLITE_OK && err) *err = (msg ? msg : sqlite3_errstr(rc)) + std::string(" (sqlite code ") + std::to_string(rc) + ")";
  sqlite3_free(msg);
  return rc;
}

// Version 2 -> 3: a nullable column, so every older row reads as "no baseline".
const char* kMigrateV2 = "ALTER TABLE spend ADD COLUMN baseline_pico INTEGER";

// First column of the first row as text ("" if none).
int query_text(sqlite3* db, const char* sql, std::string* out, std::string* err) {
  sqlite3_stmt* st = nullptr;
  int rc = sqlite3_prepare_v2(db, sql, -1, &st, nullptr);
  if (rc != SQLITE_OK) {
    if (err) *err = sqlite_message(db, rc);
    return rc;
  }
  rc = sqlite3_step(st);
  if (rc == SQLITE_ROW) {
    auto* t = sqlite3_column_text(st, 0);
    *out = t ? reinterpret_cast<const char*>(t) : "";
    rc = SQLITE_OK;
  } else if (rc == SQLITE_DONE) {
    out->clear();
    rc = SQLITE_OK;
  } else if (err) {
    *err = sqlite_message(db, rc);
  }
  sqlite3_finalize(st);
  return rc;
}

struct StmtGuard {
  sqlite3_stmt* st = nullptr;
  ~StmtGuard() { sqlite3_finalize(st); }
};

std::string explain_open_failure(const std::string& path, int rc, const std::string& detail) {
  int primary = rc & 0xff;
  if (primary == SQLITE_NOTADB || primary == SQLITE_CORRUPT)
    return "the file is corrupt or not a SQLite database (" + detail +
           "); move it aside to start a new ledger, or restore it from a backup";
  if (primary == SQLITE_CANTOPEN || primary == SQLITE_READONLY || primary == SQLITE_PERM || primary == SQLITE_IOERR)
    return "cannot open it for writing (" + detail + "); check that the file and its directory exist and are writable";
  if (primary == SQLITE_BUSY || primary == SQLITE_LOCKED)
    return "the database is locked by another process (" + detail + ")";
  return detail;
}

bool has_column(sqlite3* db, const char* table, const char* column) {
  StmtGuard g;
  if (sqlite3_prepare_v2(db, "SELECT 1 FROM pragma_table_info(?1) WHERE name = ?2", -1, &g.st, nullptr) != SQLITE_OK)
    return false;
  sqlite3_bind_text(g.st, 1, table, -1, SQLITE_STATIC);
  sqlite3_bind_text(g.st, 2, column, -1, SQLITE_STATIC);
  return sqlite3_step(g.st) == SQLITE_ROW;
}

// Creates the current schema, or migrates an older one, inside the caller's transaction.
int create_or_migrate(sqlite3* db, int version, std::string* err) {
  int rc = SQLITE_OK;
  if (version == 1) {
    rc = exec(db, kMigrateV1, err);
    if (rc == SQLITE_OK) rc = exec(db, kSpendTable, err);
    if (rc == SQLITE_OK) rc = exec(db, kCopyV1, err);
  } else if (version == 2) {
    rc = has_column(db, "spend", "baseline_pico") ? SQLITE_OK : exec(db, kMigrateV2, err);
  } else {
    rc = exec(db, kSpendTable, err);
  }
  if (rc == SQLITE_OK) rc = exec(db, kSpendIndexes, err);
  if (rc == SQLITE_OK) rc = exec(db, ("PRAGMA user_version=" + std::to_string(kSchemaVersion)).c_str(), err);
  return rc;
}

}  // namespace

core::Result<std::unique_ptr<SqliteLedgerStore>> SqliteLedgerStore::open(const std::string& path, bool fsync_commits) {
  std::unique_ptr<SqliteLedgerStore> l(new SqliteLedgerStore());
  l->path_ = path;
  std::string err;
  auto fail = [&](int rc, const std::string& detail) { return ledger_error(path, explain_open_failure(path, rc, detail)); };

  int rc = sqlite3_open_v2(path.c_str(), &l->wdb_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                           nullptr);
  if (rc != SQLITE_OK) return fail(rc, sqlite_message(l->wdb_, rc));
  sqlite3_busy_timeout(l->wdb_, 5000);
  sqlite3_extended_result_codes(l->wdb_, 1);
  if (sqlite3_db_readonly(l->wdb_, "main") == 1) return fail(SQLITE_READONLY, "opened read-only");

  // quick_check reads every page (O(size)) but skips index/row cross-checks; a torn or foreign file
  // fails here, before any request is served.
  std::string check;
  rc = query_text(l->wdb_, "PRAGMA quick_check", &check, &err);
  if (rc != SQLITE_OK) return fail(rc, err);
  if (check != "ok") return fail(SQLITE_CORRUPT, "integrity check: " + check);

  std::string mode;
  rc = query_text(l->wdb_, "PRAGMA journal_mode=WAL", &mode, &err);
  if (rc != SQLITE_OK) return fail(rc, err);
  if (mode != "wal") return fail(SQLITE_CANTOPEN, "could not switch to WAL mode (journal_mode=" + mode + ")");
  rc = exec(l->wdb_, fsync_commits ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL", &err);
  if (rc != SQLITE_OK) return fail(rc, err);

  // Creating the schema (or an empty write transaction on an existing one) proves we can write.
  // The version is read inside the write transaction: two processes opening an old file at once
  // migrate it once.
  rc = exec(l->wdb_, "BEGIN IMMEDIATE", &err);
  if (rc != SQLITE_OK) return fail(rc, err);
  std::string version;
  rc = query_text(l->wdb_, "PRAGMA user_version", &version, &err);
  if (rc != SQLITE_OK) {
    exec(l->wdb_, "ROLLBACK", nullptr);
    return fail(rc, err);
  }
  const int found = std::atoi(version.c_str());
  if (found > kSchemaVersion) {
    exec(l->wdb_, "ROLLBACK", nullptr);
    return fail(SQLITE_ERROR, "schema version " + version + " is newer than this gateway understands (" +
                                  std::to_string(kSchemaVersion) + ")");
  }
  rc = create_or_migrate(l->wdb_, found, &err);
  if (rc != SQLITE_OK) {
    exec(l->wdb_, "ROLLBACK", nullptr);
    return fail(rc, err);
  }
  rc = exec(l->wdb_, "COMMIT", &err);
  if (rc != SQLITE_OK) return fail(rc, err);

  rc = sqlite3_prepare_v3(l->wdb_,
                          "INSERT OR IGNORE INTO spend (ts_ms, tenant, key_id, request_id, attempt, deployment, status,"
                          " prompt_tokens, cached_tokens, cache_write_tokens, completion_tokens, reasoning_tokens,"
                          " cost_pico, client_request_id, usage_source, baseline_pico)"
                          " VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14,?15,?16)",
                          -1, SQLITE_PREPARE_PERSISTENT, &l->insert_, nullptr);
  if (rc != SQLITE_OK) return fail(rc, sqlite_message(l->wdb_, rc));

  rc = sqlite3_open_v2(path.c_str(), &l->rdb_, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, nullptr);
  if (rc != SQLITE_OK) return fail(rc, sqlite_message(l->rdb_, rc));
  sqlite3_busy_timeout(l->rdb_, 5000);

  // No automatic checkpoint inside COMMIT: the writer checkpoints between commits (the hook only
  // records the WAL's size), so entries are durable before their checkpoint is paid for.
  sqlite3_wal_autocheckpoint(l->wdb_, 0);
  sqlite3_wal_hook(l->wdb_, &SqliteLedgerStore::wal_hook, l.get());
  return l;
}

SqliteLedgerStore::~SqliteLedgerStore() {
  sqlite3_finalize(insert_);
  if (rdb_) sqlite3_close_v2(rdb_);
  if (wdb_) sqlite3_close_v2(wdb_);
}

int SqliteLedgerStore::wal_hook(void* self, sqlite3*, const char*, int pages) {
  static_cast<SqliteLedgerStore*>(self)->wal_pages_ = pages;
  static_cast<SqliteLedgerStore*>(self)->wal_dirty_ = true;
  return SQLITE_OK;
}

void SqliteLedgerStore::checkpoint(bool truncate) {
  int log = 0, done = 0;
  int rc = sqlite3_wal_checkpoint_v2(wdb_, nullptr, truncate ? SQLITE_CHECKPOINT_TRUNCATE : SQLITE_CHECKPOINT_PASSIVE,
                                     &log, &done);
  if (rc == SQLITE_OK && (truncate || done >= log)) {
    wal_pages_ = 0;
    if (truncate) wal_dirty_ = false;
    checkpoints_.fetch_add(1, std::memory_order_relaxed);
  } else if (rc != SQLITE_OK && rc != SQLITE_BUSY) {
    std::fprintf(stderr, "gateway: spend ledger %s: checkpoint failed: %s\n", path_.c_str(), sqlite3_errmsg(wdb_));
  }
}

// After the callbacks: the checkpoint's fsync delays the next commit, never this one.
void SqliteLedgerStore::after_commit() {
  if (wal_pages_ >= kCheckpointPages) checkpoint(false);
}

std::optional<std::chrono::milliseconds> SqliteLedgerStore::idle_after() const {
  if (wal_dirty_) return kIdleCheckpoint;
  return std::nullopt;
}

bool SqliteLedgerStore::idle(std::string*) {
  checkpoint(true);  // idle: fold the WAL into the database and truncate it
  return true;
}

int64_t SqliteLedgerStore::prune(int64_t cutoff_ms, const std::function<bool()>& yield) {
  // Chunks of kPruneChunk rows, each its own transaction, with the WAL kept bounded between them:
  // the first prune of a large ledger neither stalls appends for long nor grows the WAL.
  sqlite3_stmt* del = nullptr;
  if (sqlite3_prepare_v2(wdb_, "DELETE FROM spend WHERE id IN (SELECT id FROM spend WHERE ts_ms < ?1 LIMIT ?2)", -1,
                         &del, nullptr) != SQLITE_OK) {
    std::fprintf(stderr, "gateway: spend ledger %s: prune: %s\n", path_.c_str(), sqlite3_errmsg(wdb_));
    return 0;
  }
  int64_t total = 0;
  for (;;) {
    sqlite3_bind_int64(del, 1, cutoff_ms);
    sqlite3_bind_int64(del, 2, kPruneChunk);
    int rc = sqlite3_step(del);
    sqlite3_reset(del);
    if (rc != SQLITE_DONE) {
      std::fprintf(stderr, "gateway: spend ledger %s: prune: %s\n", path_.c_str(), sqlite3_errmsg(wdb_));
      break;
    }
    const int n = sqlite3_changes(wdb_);
    total += n;
    if (wal_pages_ >= kCheckpointPages) checkpoint(false);
    if (n < kPruneChunk || yield()) break;  // appends first; the rest waits for the next prune
  }
  sqlite3_finalize(del);
  return total;
}

bool SqliteLedgerStore::commit(const std::vector<const LedgerEntry*>& batch, std::string* error) {
  int rc = exec(wdb_, "BEGIN IMMEDIATE", error);
  if (rc != SQLITE_OK) return false;
  for (const LedgerEntry* p : batch) {
    const auto& e = *p;
    sqlite3_reset(insert_);
    sqlite3_bind_int64(insert_, 1, e.ts_ms);
    sqlite3_bind_text(insert_, 2, e.tenant.data(), static_cast<int>(e.tenant.size()), SQLITE_STATIC);
    sqlite3_bind_text(insert_, 3, e.key_id.data(), static_cast<int>(e.key_id.size()), SQLITE_STATIC);
    sqlite3_bind_text(insert_, 4, e.request_id.data(), static_cast<int>(e.request_id.size()), SQLITE_STATIC);
    sqlite3_bind_int64(insert_, 5, e.attempt);
    sqlite3_bind_text(insert_, 6, e.deployment.data(), static_cast<int>(e.deployment.size()), SQLITE_STATIC);
    sqlite3_bind_text(insert_, 7, e.status.data(), static_cast<int>(e.status.size()), SQLITE_STATIC);
    sqlite3_bind_int64(insert_, 8, e.usage.prompt_tokens);
    sqlite3_bind_int64(insert_, 9, e.usage.cached_tokens);
    sqlite3_bind_int64(insert_, 10, e.usage.cache_write_tokens);
    sqlite3_bind_int64(insert_, 11, e.usage.completion_tokens);
    sqlite3_bind_int64(insert_, 12, e.usage.reasoning_tokens);
    sqlite3_bind_int64(insert_, 13, e.cost.pico);
    sqlite3_bind_text(insert_, 14, e.client_request_id.data(), static_cast<int>(e.client_request_id.size()),
                      SQLITE_STATIC);
    sqlite3_bind_text(insert_, 15, e.usage_source.data(), static_cast<int>(e.usage_source.size()), SQLITE_STATIC);
    if (e.baseline_cost) sqlite3_bind_int64(insert_, 16, e.baseline_cost->pico);
    else sqlite3_bind_null(insert_, 16);
    rc = sqlite3_step(insert_);
    if (rc != SQLITE_DONE) {
      *error = sqlite_message(wdb_, rc);
      sqlite3_reset(insert_);
      exec(wdb_, "ROLLBACK", nullptr);
      return false;
    }
  }
  sqlite3_reset(insert_);
  sqlite3_clear_bindings(insert_);
  rc = exec(wdb_, "COMMIT", error);
  if (rc != SQLITE_OK) {
    exec(wdb_, "ROLLBACK", nullptr);
    return false;
  }
  return true;
}

core::Result<std::vector<SpendRow>> SqliteLedgerStore::report(SpendGroup group, int64_t from_ms, int64_t to_ms) const {
  const char* key_expr = group == SpendGroup::tenant       ? "tenant"
                         : group == SpendGroup::deployment ? "deployment"
                                                           : "strftime('%Y-%m-%d', ts_ms / 1000, 'unixepoch')";
  std::string sql = std::string("SELECT ") + key_expr +
                    " AS k, COUNT(*), SUM(prompt_tokens), SUM(cached_tokens), SUM(cache_write_tokens),"
                    " SUM(completion_tokens), SUM(reasoning_tokens), SUM(cost_pico),"
                    " COALESCE(SUM(baseline_pico), 0),"
                    " COALESCE(SUM(CASE WHEN baseline_pico IS NULL THEN 0 ELSE cost_pico END), 0), COUNT(baseline_pico)"
                    " FROM spend WHERE ts_ms >= ?1 AND ts_ms < ?2 GROUP BY k ORDER BY k";
  std::lock_guard lk(read_mu_);
  StmtGuard g;
  int rc = sqlite3_prepare_v2(rdb_, sql.c_str(), -1, &g.st, nullptr);
  if (rc != SQLITE_OK) return ledger_error(path_, "report: " + sqlite_message(rdb_, rc));
  sqlite3_bind_int64(g.st, 1, from_ms);
  sqlite3_bind_int64(g.st, 2, to_ms);
  std::vector<SpendRow> rows;
  while ((rc = sqlite3_step(g.st)) == SQLITE_ROW) {
    SpendRow r;
    auto* k = sqlite3_column_text(g.st, 0);
    r.key = k ? reinterpret_cast<const char*>(k) : "";
    for (int i = 0; i < SpendRow::kColumns; ++i) r.v[i] = sqlite3_column_int64(g.st, i + 1);
    rows.push_back(std::move(r));
  }
  if (rc != SQLITE_DONE) return ledger_error(path_, "report: " + sqlite_message(rdb_, rc));
  return rows;
}

core::Result<core::Money> SqliteLedgerStore::spent(std::string_view tenant, int64_t since_ms) const {
  std::lock_guard lk(read_mu_);
  StmtGuard g;
  int rc = sqlite3_prepare_v2(rdb_, "SELECT COALESCE(SUM(cost_pico), 0) FROM spend WHERE tenant = ?1 AND ts_ms >= ?2",
                              -1, &g.st, nullptr);
  if (rc != SQLITE_OK) return ledger_error(path_, "spent: " + sqlite_message(rdb_, rc));
  sqlite3_bind_text(g.st, 1, tenant.data(), static_cast<int>(tenant.size()), SQLITE_STATIC);
  sqlite3_bind_int64(g.st, 2, since_ms);
  rc = sqlite3_step(g.st);
  if (rc != SQLITE_ROW) return ledger_error(path_, "spent: " + sqlite_message(rdb_, rc));
  return core::Money{sqlite3_column_int64(g.st, 0)};
}

core::Result<std::pair<int64_t, core::Money>> SqliteLedgerStore::totals() const {
  std::lock_guard lk(read_mu_);
  StmtGuard g;
  int rc = sqlite3_prepare_v2(rdb_, "SELECT COUNT(*), COALESCE(SUM(cost_pico), 0) FROM spend", -1, &g.st, nullptr);
  if (rc != SQLITE_OK) return ledger_error(path_, "totals: " + sqlite_message(rdb_, rc));
  rc = sqlite3_step(g.st);
  if (rc != SQLITE_ROW) return ledger_error(path_, "totals: " + sqlite_message(rdb_, rc));
  return std::pair<int64_t, core::Money>{sqlite3_column_int64(g.st, 0), core::Money{sqlite3_column_int64(g.st, 1)}};
}

}  // namespace gateway
