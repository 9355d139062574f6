#pragma once
// Invoice-grade spend ledger: every attempt that consumed tokens, in an embedded SQLite database.
//
// Durability: WAL mode with synchronous=NORMAL. A committed transaction is in the WAL file (the
// OS page cache) before on_durable runs, so it survives `kill -9` of the process; it is not
// fsync'd per commit, so a power loss may lose the last commits (open with fsync_commits = true for
// synchronous=FULL if that matters more than latency).
//
// Writes never happen on the caller's thread: append() enqueues (bounded queue), one writer thread
// commits whatever is queued in one transaction (group commit: as soon as the previous commit
// finished, up to kMaxBatch entries), then runs each entry's on_durable callback on the writer
// thread. An entry is keyed by (request_id, attempt), request_id being the gateway's own id for the
// request (new_ledger_id()): appending the same entry again (a replay) is a no-op. The client's
// x-request-id is kept in client_request_id, which is not unique: clients reuse ids, on purpose or not.
//
// The WAL stays bounded: after a group commit that leaves it past kCheckpointPages the writer
// checkpoints it (nothing else writes, so the checkpoint completes and the next commit starts the WAL
// from its beginning); after kIdleCheckpoint without appends, and when the ledger closes, the writer
// checkpoints with TRUNCATE, so an idle or stopped gateway leaves an empty WAL file.
//
// A disk that fails (full, I/O errors): the writer keeps the entries and retries with backoff,
// failing() says so (the gateway then refuses new work, see state.on_ledger_failure). Entries still
// unwritten when the ledger closes are appended to the recovery file next to it
// (recovery_path(): one JSON object per line, fsync'd), or, if that cannot be written either,
// printed to stderr as the same JSON lines prefixed "gateway: spend ledger unwritten: ". open()
// imports a recovery file (idempotently: the key is unique) and removes it.
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

struct sqlite3;
struct sqlite3_stmt;

namespace gateway {

struct LedgerEntry {
  int64_t ts_ms = 0;  // completion time, Unix ms (UTC)
  std::string tenant, key_id;
  std::string request_id;         // the gateway's id of the request (new_ledger_id())
  std::string client_request_id;  // the client's x-request-id (or the echoed one); not unique
  std::string deployment, status;
  int attempt = 0;  // attempt number within the request; (request_id, attempt) is unique
  // "provider": the usage the upstream reported; "estimated": the gateway's figure for an attempt
  // that consumed tokens without reporting them (client gone, stream cut, usage rejected).
  std::string usage_source = "provider";
  core::Usage usage;
  core::Money cost;
};

// A new request id for the ledger: a UUIDv7 (48-bit Unix ms time, then random bits), so ids sort
// by time and never collide across replicas in practice.
std::string new_ledger_id();

class Ledger {
 public:
  static constexpr size_t kMaxBatch = 4096;
  static constexpr int kCheckpointPages = 1000;  // WAL frames (4 KiB pages) that trigger a checkpoint
  static constexpr std::chrono::milliseconds kIdleCheckpoint{1000};

  // Opens or creates the database: schema, quick integrity check, WAL. A corrupt, foreign or
  // unwritable file is an error whose message names the path and what is wrong.
  static core::Result<std::unique_ptr<Ledger>> open(const std::string& path, size_t max_queue = 65536,
                                                    bool fsync_commits = false);
  ~Ledger();  // close()
  // Commits what is queued (or, on a failing disk, spills it to the recovery file / stderr), checkpoints
  // with TRUNCATE and stops the writer. Later appends are not taken. Idempotent.
  void close();
  Ledger(const Ledger&) = delete;
  Ledger& operator=(const Ledger&) = delete;

  // Enqueues; on_durable (may be empty) runs on the writer thread once the entry is committed.
  // Blocks while the queue is full: it never drops. The queue drains at commit speed unless the
  // disk fails, in which case the writer retries with backoff and logs; see append_for.
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
  core::Result<std::string> report_json(std::string_view group_by, int64_t from_ms, int64_t to_ms) const;

  // Committed spend of `tenant` with ts_ms >= since_ms (seeds budgets at start-up).
  core::Money spent(std::string_view tenant, int64_t since_ms) const;

  struct Totals {
    int64_t requests = 0;  // rows (attempts)
    core::Money cost;
  };
  Totals totals() const;

  // Health and figures for /metrics.
  size_t queue_depth() const;
  uint64_t commits() const { return commits_.load(std::memory_order_relaxed); }
  uint64_t commit_failures() const { return commit_failures_.load(std::memory_order_relaxed); }
  uint64_t checkpoints() const { return checkpoints_.load(std::memory_order_relaxed); }
  // True from a failed commit until the next one succeeds; failure() is its error message.
  bool failing() const { return failing_.load(std::memory_order_relaxed); }
  std::string failure() const;
  uint64_t recovered_on_open() const { return recovered_on_open_; }
  // Optional retention: entries older than `keep` are deleted by the writer, at once and then every
  // kPruneInterval (in chunks, appends first). 0 = keep everything (the default).
  void set_retention(std::chrono::milliseconds keep);
  uint64_t pruned() const { return pruned_.load(std::memory_order_relaxed); }
  static constexpr std::chrono::hours kPruneInterval{24};
  static constexpr int kPruneChunk = 10000;
  std::string recovery_path() const { return path_ + ".recovery.jsonl"; }
  const std::string& path() const { return path_; }

 private:
  struct Pending {
    LedgerEntry entry;
    std::function<void()> on_durable;
  };
  Ledger() = default;
  void writer_loop();
  static int wal_hook(void* self, sqlite3* db, const char* name, int pages);
  bool commit_batch(std::deque<Pending>& batch, std::string* error);
  // On the writer thread: PASSIVE after a commit past kCheckpointPages, TRUNCATE when idle/closing.
  void checkpoint(bool truncate);
  // Commits `batch`, retrying with backoff while the disk fails; false when the ledger is closing
  // first (the batch is then still unwritten).
  bool commit_with_retry(std::deque<Pending>& batch);
  // Closing with entries the disk did not take: recovery file, else stderr. Never silent.
  void spill(const std::deque<Pending>& entries);
  core::Status import_recovery();
  void prune();  // writer thread

  std::string path_;
  sqlite3* wdb_ = nullptr;  // writer connection (writer thread only after open)
  sqlite3* rdb_ = nullptr;  // reader connection for reports (guarded by read_mu_)
  int wal_pages_ = 0;       // frames in the WAL after the last commit (writer thread)
  // The WAL file holds frames (a completed PASSIVE checkpoint resets wal_pages_ but leaves the file
  // at its size): the idle TRUNCATE is owed. Writer thread.
  bool wal_dirty_ = false;
  sqlite3_stmt* insert_ = nullptr;
  mutable std::mutex read_mu_;

  mutable std::mutex mu_;
  std::condition_variable not_empty_, not_full_, durable_cv_;
  std::deque<Pending> queue_;
  size_t max_queue_ = 65536;
  uint64_t appended_ = 0;  // sequence numbers: entries appended so far
  uint64_t durable_ = 0;   // entries committed so far (in append order)
  bool stop_ = false;
  std::atomic<uint64_t> commits_{0}, commit_failures_{0}, checkpoints_{0};
  std::atomic<bool> failing_{false};
  std::string last_error_;  // guarded by mu_
  uint64_t recovered_on_open_ = 0;
  int64_t retention_ms_ = 0;  // guarded by mu_ (read by the writer)
  std::chrono::steady_clock::time_point next_prune_{};
  std::atomic<uint64_t> pruned_{0};
  std::thread writer_;
};

}  // namespace gateway
