#include "gateway/state/ledger.h"

#include <sqlite3.h>
#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <random>

#include "core/json_writer.h"

namespace gateway {
namespace {

// 1: request_id was the client's x-request-id (unique with attempt: clients could collide).
// 2: request_id is the gateway's own id; client_request_id and usage_source added.
constexpr int kSchemaVersion = 2;

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

core::Error ledger_error(const std::string& path, const std::string& what) {
  return core::make_error(core::ErrorKind::internal, "spend ledger " + path + ": " + what, core::ErrorSource::gateway,
                          "ledger_unavailable");
}

// Runs SQL that returns no rows (or ignores them). Returns the sqlite code.
int exec(sqlite3* db, const char* sql, std::string* err) {
  char* msg = nullptr;
  int rc = sqlite3_exec(db, sql, nullptr, nullptr, &msg);
  if (rc != SQLITE_OK && err) *err = (msg ? msg : sqlite3_errstr(rc)) + std::string(" (sqlite code ") + std::to_string(rc) + ")";
  sqlite3_free(msg);
  return rc;
}

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

// Creates the current schema, or migrates an older one, inside the caller's transaction.
int create_or_migrate(sqlite3* db, int version, std::string* err) {
  int rc = SQLITE_OK;
  if (version == 1) {
    rc = exec(db, kMigrateV1, err);
    if (rc == SQLITE_OK) rc = exec(db, kSpendTable, err);
    if (rc == SQLITE_OK) rc = exec(db, kCopyV1, err);
  } else {
    rc = exec(db, kSpendTable, err);
  }
  if (rc == SQLITE_OK) rc = exec(db, kSpendIndexes, err);
  if (rc == SQLITE_OK) rc = exec(db, ("PRAGMA user_version=" + std::to_string(kSchemaVersion)).c_str(), err);
  return rc;
}

// One entry as a JSON object (the recovery file's and stderr's line format).
std::string entry_json(const LedgerEntry& e) {
  std::string s = "{\"ts_ms\":" + std::to_string(e.ts_ms);
  auto str = [&s](const char* k, const std::string& v) {
    s += ",\"";
    s += k;
    s += "\":";
    core::append_json_string(s, v);
  };
  auto num = [&s](const char* k, int64_t v) { s += ",\"" + std::string(k) + "\":" + std::to_string(v); };
  str("tenant", e.tenant);
  str("key_id", e.key_id);
  str("request_id", e.request_id);
  str("client_request_id", e.client_request_id);
  num("attempt", e.attempt);
  str("deployment", e.deployment);
  str("status", e.status);
  str("usage_source", e.usage_source);
  num("prompt_tokens", e.usage.prompt_tokens);
  num("cached_tokens", e.usage.cached_tokens);
  num("cache_write_tokens", e.usage.cache_write_tokens);
  num("completion_tokens", e.usage.completion_tokens);
  num("reasoning_tokens", e.usage.reasoning_tokens);
  num("cost_pico", e.cost.pico);
  s += "}";
  return s;
}

// The inverse of entry_json (JSON is YAML's flow syntax, so yaml-cpp reads it); false if the line
// is not such an object (a torn last line).
bool entry_from_json(const std::string& line, LedgerEntry& e) {
  try {
    YAML::Node n = YAML::Load(line);
    if (!n.IsMap() || !n["request_id"] || !n["cost_pico"]) return false;
    e.ts_ms = n["ts_ms"].as<int64_t>();
    e.tenant = n["tenant"].as<std::string>();
    e.key_id = n["key_id"].as<std::string>();
    e.request_id = n["request_id"].as<std::string>();
    e.client_request_id = n["client_request_id"].as<std::string>();
    e.attempt = n["attempt"].as<int>();
    e.deployment = n["deployment"].as<std::string>();
    e.status = n["status"].as<std::string>();
    e.usage_source = n["usage_source"].as<std::string>();
    e.usage.prompt_tokens = n["prompt_tokens"].as<int64_t>();
    e.usage.cached_tokens = n["cached_tokens"].as<int64_t>();
    e.usage.cache_write_tokens = n["cache_write_tokens"].as<int64_t>();
    e.usage.completion_tokens = n["completion_tokens"].as<int64_t>();
    e.usage.reasoning_tokens = n["reasoning_tokens"].as<int64_t>();
    e.usage.present = true;
    e.cost = core::Money{n["cost_pico"].as<int64_t>()};
    return true;
  } catch (const YAML::Exception&) {
    return false;
  }
}

}  // namespace

std::string new_ledger_id() {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  const uint64_t ms = static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                                std::chrono::system_clock::now().time_since_epoch()).count());
  const uint64_t r1 = rng(), r2 = rng();
  unsigned char b[16];
  for (int i = 0; i < 6; ++i) b[i] = static_cast<unsigned char>(ms >> (40 - 8 * i));
  b[6] = static_cast<unsigned char>(0x70 | ((r1 >> 8) & 0x0f));  // version 7
  b[7] = static_cast<unsigned char>(r1);
  b[8] = static_cast<unsigned char>(0x80 | ((r1 >> 16) & 0x3f));  // RFC 4122 variant
  for (int i = 9; i < 16; ++i) b[i] = static_cast<unsigned char>(r2 >> (8 * (i - 9)));
  static constexpr char hex[] = "0123456789abcdef";
  std::string s;
  s.reserve(36);
  for (int i = 0; i < 16; ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) s += '-';
    s += hex[b[i] >> 4];
    s += hex[b[i] & 15];
  }
  return s;
}

core::Result<std::unique_ptr<Ledger>> Ledger::open(const std::string& path, size_t max_queue, bool fsync_commits) {
  std::unique_ptr<Ledger> l(new Ledger());
  l->path_ = path;
  l->max_queue_ = max_queue == 0 ? 1 : max_queue;
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
                          " cost_pico, client_request_id, usage_source)"
                          " VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14,?15)",
                          -1, SQLITE_PREPARE_PERSISTENT, &l->insert_, nullptr);
  if (rc != SQLITE_OK) return fail(rc, sqlite_message(l->wdb_, rc));

  if (auto st = l->import_recovery(); !st) return st.error();

  rc = sqlite3_open_v2(path.c_str(), &l->rdb_, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, nullptr);
  if (rc != SQLITE_OK) return fail(rc, sqlite_message(l->rdb_, rc));
  sqlite3_busy_timeout(l->rdb_, 5000);

  // No automatic checkpoint inside COMMIT: the writer checkpoints between commits (the hook only
  // records the WAL's size), so entries are durable before their checkpoint is paid for.
  sqlite3_wal_autocheckpoint(l->wdb_, 0);
  sqlite3_wal_hook(l->wdb_, &Ledger::wal_hook, l.get());

  l->writer_ = std::thread([p = l.get()] { p->writer_loop(); });
  return l;
}

Ledger::~Ledger() {
  close();
  sqlite3_finalize(insert_);
  if (rdb_) sqlite3_close_v2(rdb_);
  if (wdb_) sqlite3_close_v2(wdb_);
}

void Ledger::close() {
  if (writer_.joinable()) {
    {
      std::lock_guard lk(mu_);
      stop_ = true;
    }
    not_empty_.notify_all();
    not_full_.notify_all();
    writer_.join();  // the writer's last act is a TRUNCATE checkpoint (or the spill)
  }
}

int Ledger::wal_hook(void* self, sqlite3*, const char*, int pages) {
  static_cast<Ledger*>(self)->wal_pages_ = pages;
  static_cast<Ledger*>(self)->wal_dirty_ = true;
  return SQLITE_OK;
}

void Ledger::checkpoint(bool truncate) {
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

core::Status Ledger::import_recovery() {
  const std::string rp = recovery_path();
  std::ifstream in(rp);
  if (!in) return core::ok_status();  // none: the usual case
  std::deque<Pending> batch;
  std::string line;
  size_t lineno = 0;
  while (std::getline(in, line)) {
    ++lineno;
    if (line.empty()) continue;
    Pending p;
    if (!entry_from_json(line, p.entry)) {
      // A line torn by a full disk: its entry was also printed to stderr when it was spilled.
      std::fprintf(stderr, "gateway: spend ledger %s: recovery file line %zu is not an entry, skipped: %s\n",
                   path_.c_str(), lineno, line.c_str());
      continue;
    }
    batch.push_back(std::move(p));
  }
  std::string err;
  if (!batch.empty() && !commit_batch(batch, &err))
    return ledger_error(path_, "cannot import the recovery file " + rp + ": " + err);
  if (::unlink(rp.c_str()) != 0)
    return ledger_error(path_, "imported the recovery file " + rp + " but cannot remove it: " + std::strerror(errno));
  recovered_on_open_ = batch.size();
  std::fprintf(stderr, "gateway: spend ledger %s: imported %zu entries from %s\n", path_.c_str(), batch.size(),
               rp.c_str());
  return core::ok_status();
}

void Ledger::spill(const std::deque<Pending>& entries) {
  if (entries.empty()) return;
  std::string text;
  for (const auto& p : entries) text += entry_json(p.entry) + "\n";
  const std::string rp = recovery_path();
  bool ok = false;
  if (FILE* f = std::fopen(rp.c_str(), "a")) {
    ok = std::fwrite(text.data(), 1, text.size(), f) == text.size() && std::fflush(f) == 0 && ::fsync(fileno(f)) == 0;
    ok = (std::fclose(f) == 0) && ok;
  }
  if (ok) {
    std::fprintf(stderr, "gateway: spend ledger %s: %zu unwritten entries saved to %s; the next start imports them\n",
                 path_.c_str(), entries.size(), rp.c_str());
    return;
  }
  std::fprintf(stderr,
               "gateway: spend ledger %s: cannot write the recovery file %s (%s); the %zu unwritten entries follow\n",
               path_.c_str(), rp.c_str(), std::strerror(errno), entries.size());
  for (const auto& p : entries)
    std::fprintf(stderr, "gateway: spend ledger unwritten: %s\n", entry_json(p.entry).c_str());
  std::fflush(stderr);
}

void Ledger::set_retention(std::chrono::milliseconds keep) {
  std::lock_guard lk(mu_);
  retention_ms_ = keep.count();
  next_prune_ = std::chrono::steady_clock::now();  // the first prune runs at once
  not_empty_.notify_all();
}

void Ledger::prune() {
  next_prune_ = std::chrono::steady_clock::now() + kPruneInterval;
  const int64_t cutoff = std::chrono::duration_cast<std::chrono::milliseconds>(
                             std::chrono::system_clock::now().time_since_epoch()).count() - retention_ms_;
  // Chunks of kPruneChunk rows, each its own transaction, with the WAL kept bounded between them:
  // the first prune of a large ledger neither stalls appends for long nor grows the WAL.
  sqlite3_stmt* del = nullptr;
  if (sqlite3_prepare_v2(wdb_, "DELETE FROM spend WHERE id IN (SELECT id FROM spend WHERE ts_ms < ?1 LIMIT ?2)", -1,
                         &del, nullptr) != SQLITE_OK) {
    std::fprintf(stderr, "gateway: spend ledger %s: prune: %s\n", path_.c_str(), sqlite3_errmsg(wdb_));
    return;
  }
  int64_t total = 0;
  for (;;) {
    sqlite3_bind_int64(del, 1, cutoff);
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
    if (n < kPruneChunk) break;
    std::lock_guard lk(mu_);
    if (stop_ || !queue_.empty()) break;  // appends first; the rest waits for the next prune
  }
  sqlite3_finalize(del);
  pruned_.fetch_add(static_cast<uint64_t>(total), std::memory_order_relaxed);
  if (total > 0)
    std::fprintf(stderr, "gateway: spend ledger %s: pruned %lld entries older than %lld days\n", path_.c_str(),
                 static_cast<long long>(total), static_cast<long long>(retention_ms_ / 86'400'000));
}

std::string Ledger::failure() const {
  std::lock_guard lk(mu_);
  return last_error_;
}

bool Ledger::commit_with_retry(std::deque<Pending>& batch) {
  auto backoff = std::chrono::milliseconds(50);
  std::string error;
  while (!commit_batch(batch, &error)) {
    commit_failures_.fetch_add(1, std::memory_order_relaxed);
    {
      std::lock_guard lk(mu_);
      last_error_ = error;
    }
    failing_.store(true, std::memory_order_relaxed);
    std::fprintf(stderr, "gateway: spend ledger %s: commit of %zu entries failed, retrying in %lld ms: %s\n",
                 path_.c_str(), batch.size(), static_cast<long long>(backoff.count()), error.c_str());
    std::unique_lock lk(mu_);
    if (not_empty_.wait_for(lk, backoff, [&] { return stop_; })) return false;
    backoff = std::min(backoff * 2, std::chrono::milliseconds(2000));
  }
  if (failing_.exchange(false, std::memory_order_relaxed))
    std::fprintf(stderr, "gateway: spend ledger %s: writing again\n", path_.c_str());
  return true;
}

void Ledger::append(LedgerEntry e, std::function<void()> on_durable) {
  std::unique_lock lk(mu_);
  not_full_.wait(lk, [&] { return queue_.size() < max_queue_ || stop_; });
  if (stop_) {  // closed: the writer is gone; the entry is recorded, not queued
    lk.unlock();
    spill(std::deque<Pending>(1, Pending{std::move(e), nullptr}));
    return;
  }
  queue_.push_back(Pending{std::move(e), std::move(on_durable)});
  ++appended_;
  lk.unlock();
  not_empty_.notify_one();
}

bool Ledger::append_for(LedgerEntry e, std::function<void()> on_durable, std::chrono::milliseconds max_wait) {
  std::unique_lock lk(mu_);
  if (!not_full_.wait_for(lk, max_wait, [&] { return queue_.size() < max_queue_ || stop_; })) return false;
  if (stop_) {  // closed: recorded in the recovery file (or stderr), never durable here
    lk.unlock();
    spill(std::deque<Pending>(1, Pending{std::move(e), nullptr}));
    return false;
  }
  queue_.push_back(Pending{std::move(e), std::move(on_durable)});
  ++appended_;
  lk.unlock();
  not_empty_.notify_one();
  return true;
}

void Ledger::flush() {
  std::unique_lock lk(mu_);
  uint64_t target = appended_;
  durable_cv_.wait(lk, [&] { return durable_ >= target; });
}

bool Ledger::flush_for(std::chrono::milliseconds max_wait) {
  std::unique_lock lk(mu_);
  uint64_t target = appended_;
  return durable_cv_.wait_for(lk, max_wait, [&] { return durable_ >= target; });
}

size_t Ledger::queue_depth() const {
  std::lock_guard lk(mu_);
  return queue_.size();
}

bool Ledger::commit_batch(std::deque<Pending>& batch, std::string* error) {
  int rc = exec(wdb_, "BEGIN IMMEDIATE", error);
  if (rc != SQLITE_OK) return false;
  for (auto& p : batch) {
    const auto& e = p.entry;
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

void Ledger::writer_loop() {
  std::deque<Pending> batch;
  for (;;) {
    {
      std::unique_lock lk(mu_);
      auto ready = [&] { return stop_ || !queue_.empty(); };
      if (wal_dirty_ && !not_empty_.wait_for(lk, kIdleCheckpoint, ready)) {
        lk.unlock();
        checkpoint(true);  // idle: fold the WAL into the database and truncate it
        continue;
      }
      if (retention_ms_ > 0) {
        if (!not_empty_.wait_until(lk, next_prune_, ready)) {
          lk.unlock();
          prune();
          continue;
        }
      }
      not_empty_.wait(lk, ready);
      if (queue_.empty()) {  // stop_ and nothing left: everything appended is durable
        lk.unlock();
        checkpoint(true);
        return;
      }
      size_t n = std::min(queue_.size(), kMaxBatch);
      for (size_t i = 0; i < n; ++i) {
        batch.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
    }
    not_full_.notify_all();
    // A failing disk: keep the batch and retry with backoff, never drop it. Appenders block on a
    // full queue meanwhile (append_for lets them give up instead). Closing meanwhile: whatever is
    // unwritten goes to the recovery file (or stderr), and counts as settled for flush().
    if (!commit_with_retry(batch)) {
      std::unique_lock lk(mu_);
      for (auto& p : queue_) batch.push_back(std::move(p));
      queue_.clear();
      lk.unlock();
      spill(batch);
      lk.lock();
      durable_ = appended_;
      lk.unlock();
      durable_cv_.notify_all();
      return;
    }
    commits_.fetch_add(1, std::memory_order_relaxed);
    for (auto& p : batch) {
      if (!p.on_durable) continue;
      try {
        p.on_durable();
      } catch (...) {
        std::fprintf(stderr, "gateway: spend ledger: on_durable callback threw (ignored)\n");
      }
    }
    {
      std::lock_guard lk(mu_);
      durable_ += batch.size();
    }
    durable_cv_.notify_all();
    batch.clear();
    // After the callbacks: the checkpoint's fsync delays the next commit, never this one.
    if (wal_pages_ >= kCheckpointPages) checkpoint(false);
  }
}

core::Result<std::string> Ledger::report_json(std::string_view group_by, int64_t from_ms, int64_t to_ms) const {
  const char* key_expr = nullptr;
  if (group_by == "tenant") key_expr = "tenant";
  else if (group_by == "deployment") key_expr = "deployment";
  else if (group_by == "day") key_expr = "strftime('%Y-%m-%d', ts_ms / 1000, 'unixepoch')";
  else
    return core::make_error(core::ErrorKind::bad_request,
                            "group_by must be tenant, deployment or day (got '" + std::string(group_by) + "')",
                            core::ErrorSource::client, "invalid_group_by", "group_by");
  std::string sql = std::string("SELECT ") + key_expr +
                    " AS k, COUNT(*), SUM(prompt_tokens), SUM(cached_tokens), SUM(cache_write_tokens),"
                    " SUM(completion_tokens), SUM(reasoning_tokens), SUM(cost_pico)"
                    " FROM spend WHERE ts_ms >= ?1 AND ts_ms < ?2 GROUP BY k ORDER BY k";
  std::lock_guard lk(read_mu_);
  StmtGuard g;
  int rc = sqlite3_prepare_v2(rdb_, sql.c_str(), -1, &g.st, nullptr);
  if (rc != SQLITE_OK) return ledger_error(path_, "report: " + sqlite_message(rdb_, rc));
  sqlite3_bind_int64(g.st, 1, from_ms);
  sqlite3_bind_int64(g.st, 2, to_ms);
  std::string out = "{\"group_by\":";
  core::append_json_string(out, group_by);
  out += ",\"from_ms\":" + std::to_string(from_ms) + ",\"to_ms\":" + std::to_string(to_ms) + ",\"rows\":[";
  int64_t tot[7] = {0, 0, 0, 0, 0, 0, 0};
  auto fields = [](std::string& o, const int64_t* v) {
    o += "\"requests\":" + std::to_string(v[0]) + ",\"prompt_tokens\":" + std::to_string(v[1]) +
         ",\"cached_tokens\":" + std::to_string(v[2]) + ",\"cache_write_tokens\":" + std::to_string(v[3]) +
         ",\"completion_tokens\":" + std::to_string(v[4]) + ",\"reasoning_tokens\":" + std::to_string(v[5]) +
         ",\"cost_usd\":\"" + core::format_usd(core::Money{v[6]}) + "\",\"cost_pico\":" + std::to_string(v[6]);
  };
  bool first = true;
  while ((rc = sqlite3_step(g.st)) == SQLITE_ROW) {
    int64_t v[7];
    for (int i = 0; i < 7; ++i) v[i] = sqlite3_column_int64(g.st, i + 1);
    for (int i = 0; i < 7; ++i) tot[i] += v[i];
    out += first ? "{\"key\":" : ",{\"key\":";
    first = false;
    auto* k = sqlite3_column_text(g.st, 0);
    core::append_json_string(out, k ? reinterpret_cast<const char*>(k) : "");
    out += ",";
    fields(out, v);
    out += "}";
  }
  if (rc != SQLITE_DONE) return ledger_error(path_, "report: " + sqlite_message(rdb_, rc));
  out += "],\"total\":{";
  fields(out, tot);
  out += "}}";
  return out;
}

core::Money Ledger::spent(std::string_view tenant, int64_t since_ms) const {
  std::lock_guard lk(read_mu_);
  StmtGuard g;
  if (sqlite3_prepare_v2(rdb_, "SELECT COALESCE(SUM(cost_pico), 0) FROM spend WHERE tenant = ?1 AND ts_ms >= ?2", -1,
                         &g.st, nullptr) != SQLITE_OK)
    return {};
  sqlite3_bind_text(g.st, 1, tenant.data(), static_cast<int>(tenant.size()), SQLITE_STATIC);
  sqlite3_bind_int64(g.st, 2, since_ms);
  if (sqlite3_step(g.st) != SQLITE_ROW) return {};
  return core::Money{sqlite3_column_int64(g.st, 0)};
}

Ledger::Totals Ledger::totals() const {
  std::lock_guard lk(read_mu_);
  StmtGuard g;
  Totals t;
  if (sqlite3_prepare_v2(rdb_, "SELECT COUNT(*), COALESCE(SUM(cost_pico), 0) FROM spend", -1, &g.st, nullptr) !=
      SQLITE_OK)
    return t;
  if (sqlite3_step(g.st) == SQLITE_ROW) {
    t.requests = sqlite3_column_int64(g.st, 0);
    t.cost = core::Money{sqlite3_column_int64(g.st, 1)};
  }
  return t;
}

}  // namespace gateway
