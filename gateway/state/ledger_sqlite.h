#pragma once
// The spend ledger in an embedded SQLite database, one file per gateway.
//
// Durability: WAL mode with synchronous=NORMAL. A committed transaction is in the WAL file (the
// OS page cache) before commit() returns, so it survives `kill -9` of the process; it is not
// fsync'd per commit, so a power loss may lose the last commits (fsync_commits = true selects
// synchronous=FULL if that matters more than latency).
//
// The WAL stays bounded: after a commit that leaves it past kCheckpointPages the store checkpoints
// it (nothing else writes, so the checkpoint completes and the next commit starts the WAL from its
// beginning); after kIdleCheckpoint without appends, and when the ledger closes, it checkpoints
// with TRUNCATE, so an idle or stopped gateway leaves an empty WAL file.
#include <atomic>
#include <memory>
#include <mutex>
#include <string>

#include "gateway/state/ledger_store.h"

struct sqlite3;
struct sqlite3_stmt;

namespace gateway {

class SqliteLedgerStore final : public LedgerStore {
 public:
  static constexpr int kCheckpointPages = 1000;  // WAL frames (4 KiB pages) that trigger a checkpoint
  static constexpr std::chrono::milliseconds kIdleCheckpoint{1000};

  // Opens or creates the database: schema (or the version 1 -> 2 migration), quick integrity
  // check, WAL. A corrupt, foreign or unwritable file is an error whose message names the path and
  // what is wrong.
  static core::Result<std::unique_ptr<SqliteLedgerStore>> open(const std::string& path, bool fsync_commits);
  ~SqliteLedgerStore() override;

  std::string describe() const override { return path_; }
  bool commit(const std::vector<const LedgerEntry*>& batch, std::string* error) override;
  void after_commit() override;
  std::optional<std::chrono::milliseconds> idle_after() const override;
  bool idle(std::string* error) override;
  int64_t prune(int64_t cutoff_ms, const std::function<bool()>& yield) override;
  void close_idle() override { checkpoint(true); }
  uint64_t checkpoints() const override { return checkpoints_; }

  core::Result<std::vector<SpendRow>> report(SpendGroup group, int64_t from_ms, int64_t to_ms) const override;
  core::Result<core::Money> spent(std::string_view tenant, int64_t since_ms) const override;
  core::Result<std::pair<int64_t, core::Money>> totals() const override;

 private:
  SqliteLedgerStore() = default;
  static int wal_hook(void* self, sqlite3* db, const char* name, int pages);
  // PASSIVE after a commit past kCheckpointPages, TRUNCATE when idle/closing.
  void checkpoint(bool truncate);

  std::string path_;
  sqlite3* wdb_ = nullptr;  // writer connection (writer thread only after open)
  sqlite3* rdb_ = nullptr;  // reader connection for reports (guarded by read_mu_)
  sqlite3_stmt* insert_ = nullptr;
  int wal_pages_ = 0;  // frames in the WAL after the last commit (writer thread)
  // The WAL file holds frames (a completed PASSIVE checkpoint resets wal_pages_ but leaves the file
  // at its size): the idle TRUNCATE is owed. Writer thread.
  bool wal_dirty_ = false;
  std::atomic<uint64_t> checkpoints_{0};
  mutable std::mutex read_mu_;
};

}  // namespace gateway
