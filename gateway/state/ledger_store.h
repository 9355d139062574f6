#pragma once
// Where the spend ledger's rows live: the Ledger (ledger.h) owns the queue, the writer thread, the
// durability callbacks, retries and fail-closed reporting; a LedgerStore only talks to a database.
// Two implementations with the same table, key and guarantees: SQLite (one file per replica,
// ledger_sqlite.h) and PostgreSQL (one database for a fleet, ledger_postgres.h).
//
// Threads: commit, after_commit, idle_after, idle, prune and close_idle run on the Ledger's writer
// thread only; report, spent and totals may run on any thread at once (the store serialises its
// reader itself).
#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/money.h"
#include "core/result.h"
#include "core/usage.h"

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
  // What the same usage would have cost at the route's baseline (routing/savings.h); nullopt when
  // no baseline applies, stored as NULL, so "no baseline" never reads as "saved nothing".
  std::optional<core::Money> baseline_cost;
};

// One group of a spend report: requests, prompt, cached, cache-write, completion and reasoning
// tokens, cost in pico-USD (in that order), then the savings columns: baseline cost (pico-USD),
// the cost of the rows that have a baseline, and how many rows have one. A saving is only
// reckoned over rows with a baseline: kBaseline - kBaselinedCost.
struct SpendRow {
  static constexpr int kColumns = 10;
  static constexpr int kBaseline = 7, kBaselinedCost = 8, kBaselinedRows = 9;
  std::string key;
  int64_t v[kColumns] = {};
};

enum class SpendGroup { tenant, deployment, day };

class LedgerStore {
 public:
  virtual ~LedgerStore() = default;

  // For messages: the file, or the server and database (never a password).
  virtual std::string describe() const = 0;

  // Writes `batch` in one transaction; a (request_id, attempt) already stored is skipped, so a
  // batch retried after an unconfirmed commit counts nothing twice. True once committed.
  virtual bool commit(const std::vector<const LedgerEntry*>& batch, std::string* error) = 0;
  // After a successful commit and its callbacks (SQLite: checkpoint a large WAL).
  virtual void after_commit() {}
  // How long the writer may sit idle before idle() is owed; nullopt = nothing owed.
  virtual std::optional<std::chrono::milliseconds> idle_after() const { return std::nullopt; }
  // Idle work (SQLite: truncate the WAL; PostgreSQL: check the server still answers). False with
  // `error` when the store cannot write, which the Ledger reports as failing().
  virtual bool idle(std::string* error) {
    (void)error;
    return true;
  }
  static constexpr int kPruneChunk = 10000;  // rows per prune transaction
  // Deletes rows older than cutoff_ms in chunks of kPruneChunk, stopping early when yield() says appends wait.
  // Returns the rows deleted.
  virtual int64_t prune(int64_t cutoff_ms, const std::function<bool()>& yield) = 0;
  // The ledger is closing with everything committed (SQLite: TRUNCATE checkpoint).
  virtual void close_idle() {}
  virtual uint64_t checkpoints() const { return 0; }

  virtual core::Result<std::vector<SpendRow>> report(SpendGroup group, int64_t from_ms, int64_t to_ms) const = 0;
  // Committed spend of `tenant` with ts_ms >= since_ms; an error when the store cannot be read.
  virtual core::Result<core::Money> spent(std::string_view tenant, int64_t since_ms) const = 0;
  // Rows and their cost.
  virtual core::Result<std::pair<int64_t, core::Money>> totals() const = 0;
};

}  // namespace gateway
