#pragma once
// Invoice-grade spend ledger: every attempt that consumed tokens, in a database (LedgerStore):
// SQLite, one file per gateway (ledger_sqlite.h), or PostgreSQL, one database for a fleet of
// replicas (ledger_postgres.h). Same table, key and guarantees in both.
//
// Durability: an entry's on_durable callback runs only after the transaction holding it committed
// (SQLite: in the WAL file, which survives `kill -9` of the process; PostgreSQL: the server
// acknowledged COMMIT).
//
// Writes never happen on the caller's thread: append() enqueues (bounded queue), one writer thread
// commits whatever is queued in one transaction (group commit: as soon as the previous commit
// finished, up to kMaxBatch entries), then runs each entry's on_durable callback on the writer
// thread. An entry is keyed by (request_id, attempt), request_id being the gateway's own id for the
// request (new_ledger_id()): appending the same entry again (a replay, or a batch retried after a
// commit whose answer was lost) is a no-op. The client's x-request-id is kept in client_request_id,
// which is not unique: clients reuse ids, on purpose or not.
//
// A store that fails (disk full, I/O errors, database server unreachable): the writer keeps the
// entries and retries with backoff, failing() says so (the gateway then refuses new work, see
// state.on_ledger_failure). A PostgreSQL store is also probed when idle, so an outage is reported
// before a request needs the server. Entries still unwritten when the ledger closes are appended to
// the recovery file (recovery_path(): one JSON object per line, fsync'd; SQLite: next to the
// database; PostgreSQL: none unless given), or, if there is none or it cannot be written, printed
// to stderr as the same JSON lines prefixed "gateway: spend ledger unwritten: ". open() imports a
// recovery file (idempotently: the key is unique) and removes it.
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>

#include "core/money.h"
#include "core/result.h"
#include "core/usage.h"
#include "gateway/state/ledger_sqlite.h"
#include "gateway/state/ledger_store.h"

namespace gateway {

// A new request id for the ledger: a UUIDv7 (48-bit Unix ms time, then random bits), so ids sort
// by time and never collide across replicas in practice.
std::string new_ledger_id();

class Ledger {
 public:
  static constexpr size_t kMaxBatch = 4096;
  static constexpr int kCheckpointPages = SqliteLedgerStore::kCheckpointPages;
  static constexpr std::chrono::milliseconds kIdleCheckpoint = SqliteLedgerStore::kIdleCheckpoint;
  static constexpr int kPruneChunk = LedgerStore::kPruneChunk;

  // SQLite: opens or creates the database file: schema, quick integrity check, WAL. A corrupt,
  // foreign or unwritable file is an error whose message names the path and what is wrong.
  static core::Result<std::unique_ptr<Ledger>> open(const std::string& path, size_t max_queue = 65536,
                                                    bool fsync_commits = false);
  // PostgreSQL: connects (libpq connection string or postgres:// URL) and creates the schema if
  // absent. An unreachable server or a refused login is an error naming the server. recovery_path
  // may be empty (unwritten entries at close then go to stderr).
  static core::Result<std::unique_ptr<Ledger>> open_postgres(const std::string& conninfo, size_t max_queue = 65536,
                                                             std::string recovery_path = {});
  // Any store (tests).
  static core::Result<std::unique_ptr<Ledger>> open_store(std::unique_ptr<LedgerStore> store, size_t max_queue,
                                                          std::string recovery_path);
  ~Ledger();  // close()
  // Commits what is queued (or, on a failing store, spills it to the recovery file / stderr),
  // lets the store finish (SQLite: TRUNCATE checkpoint) and stops the writer. Later appends are not
  // taken. Idempotent.
  void close();
  Ledger(const Ledger&) = delete;
  Ledger& operator=(const Ledger&) = delete;

  // Enqueues; on_durable (may be empty) runs on the writer thread once the entry is committed.
  // Blocks while the queue is full: it never drops. The queue drains at commit speed unless the
  // store fails, in which case the writer retries with backoff and logs; see append_for.
  void append(LedgerEntry e, std::function<void()> on_durable);
  // As append, but waits at most `max_wait` for queue space; false (entry NOT taken) on timeout.
  bool append_for(LedgerEntry e, std::function<void()> on_durable, std::chrono::milliseconds max_wait);

  // Blocks until everything appended before the call is durable (drain). With a deadline: false
  // if it passed first.
  void flush();
  bool flush_for(std::chrono::milliseconds max_wait);

  // {"group_by":"tenant","from_ms":..,"to_ms":..,"rows":[{"key":"acme","requests":3,
  //  "prompt_tokens":..,"cached_tokens":..,"cache_write_tokens":..,"completion_tokens":..,
  //  "reasoning_tokens":..,"cost_usd":"0.0012","cost_pico":1200000000}, ...],"total":{...}}
  // over committed entries with from_ms <= ts_ms < to_ms. group_by: tenant | deployment | day (UTC).
  // savings: each group (and the total) also has "baselined_requests", "baselined_cost_pico",
  // "baseline_usd", "baseline_pico", "saved_usd", "saved_pico": the baseline cost of the rows that
  // have one, and the saving over those rows alone (baseline - their cost; negative = cost more).
  // An unknown group_by is a bad_request error; a store that cannot be read, ledger_unavailable.
  core::Result<std::string> report_json(std::string_view group_by, int64_t from_ms, int64_t to_ms,
                                        bool savings = false) const;
  // The same groups as a text table for the CLI: key, requests, prompt and completion tokens,
  // cost; with savings also the baselined rows, their baseline and the saving ("-": no baseline).
  core::Result<std::string> report_table(std::string_view group_by, int64_t from_ms, int64_t to_ms,
                                         bool savings = false) const;
  core::Result<std::vector<SpendRow>> report_rows(std::string_view group_by, int64_t from_ms, int64_t to_ms) const;

  // Committed spend of `tenant` with ts_ms >= since_ms (seeds budgets); 0 if the store cannot be read.
  core::Money spent(std::string_view tenant, int64_t since_ms) const;

  struct Totals {
    int64_t requests = 0;  // rows (attempts)
    core::Money cost;
  };
  Totals totals() const;

  // Health and figures for /metrics. queue_depth: entries taken and not yet durable (queued, or in
  // the batch being committed or retried).
  size_t queue_depth() const;
  uint64_t commits() const { return commits_.load(std::memory_order_relaxed); }
  uint64_t commit_failures() const { return commit_failures_.load(std::memory_order_relaxed); }
  uint64_t checkpoints() const { return store_->checkpoints(); }
  // True from a failed commit (or a failed idle probe) until the next success; failure() is its
  // error message.
  bool failing() const { return failing_.load(std::memory_order_relaxed); }
  std::string failure() const;
  uint64_t recovered_on_open() const { return recovered_on_open_; }
  // Optional retention: entries older than `keep` are deleted by the writer, at once and then every
  // kPruneInterval (in chunks, appends first). 0 = keep everything (the default).
  void set_retention(std::chrono::milliseconds keep);
  uint64_t pruned() const { return pruned_.load(std::memory_order_relaxed); }
  static constexpr std::chrono::hours kPruneInterval{24};
  const std::string& recovery_path() const { return recovery_path_; }
  // The file, or the PostgreSQL server and database (never a password).
  std::string path() const { return store_->describe(); }

 private:
  struct Pending {
    LedgerEntry entry;
    std::function<void()> on_durable;
  };
  Ledger() = default;
  void writer_loop();
  // Waits until entries are queued or the ledger closes, doing the store's idle work and the
  // prunes that fall due meanwhile. Called and returns with `lk` held.
  void wait_for_work(std::unique_lock<std::mutex>& lk);
  void idle_tick();
  bool commit_batch(std::deque<Pending>& batch, std::string* error);
  // Commits `batch`, retrying with backoff while the store fails; false when the ledger is closing
  // first (the batch is then still unwritten).
  bool commit_with_retry(std::deque<Pending>& batch);
  void set_failing(const std::string& error);
  void clear_failing();
  // Closing with entries the store did not take: recovery file, else stderr. Never silent.
  void spill(const std::deque<Pending>& entries);
  core::Status import_recovery();
  void prune();  // writer thread

  std::unique_ptr<LedgerStore> store_;
  std::string recovery_path_;

  mutable std::mutex mu_;
  std::condition_variable not_empty_, not_full_, durable_cv_;
  std::deque<Pending> queue_;
  size_t max_queue_ = 65536;
  uint64_t appended_ = 0;  // sequence numbers: entries appended so far
  uint64_t durable_ = 0;   // entries committed so far (in append order)
  bool stop_ = false;
  std::atomic<uint64_t> commits_{0}, commit_failures_{0};
  std::atomic<bool> failing_{false};
  std::string last_error_;  // guarded by mu_
  uint64_t recovered_on_open_ = 0;
  int64_t retention_ms_ = 0;  // guarded by mu_ (read by the writer)
  std::chrono::steady_clock::time_point next_prune_{};
  std::atomic<uint64_t> pruned_{0};
  std::thread writer_;
};

}  // namespace gateway
