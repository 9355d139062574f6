#pragma once
// LimitStore in Redis for `state: redis`: every replica checks and updates the same counters
// atomically with Lua scripts, so N replicas enforce a limit as one (exactly: one script run is
// the unit of atomicity, there is no read-then-write across replicas).
//
// Keys (the {tenant} hash tag keeps one tenant's keys in one Redis Cluster slot, as scripts need):
//   <prefix>{t}:win                                                hash of the sliding rate window:
//                                                                  r<unix second> requests, t<unix
//                                                                  second> tokens, their sums R, T and
//                                                                  the pruned-through second P; at
//                                                                  most 125 fields, expires after 120 s
//   <prefix>{t}:conc                                               sorted set of leases (score =
//                                                                  expiry ms): a crashed replica's
//                                                                  slots free themselves
//   <prefix>{t}:spent:d:<day>  <prefix>{t}:resv:d:<day>            pico-USD, expire after 3 days
//   <prefix>{t}:spent:m:<month> <prefix>{t}:resv:m:<month>         pico-USD, expire after 40 days
// One reservation is one script run (one round trip), reconcile or release another.
// Amounts travel as decimal int64 strings and are added with INCRBY (exact); the budget comparison
// inside Lua uses doubles, exact below $9,007 per period and within a few pico-USD above.
//
// Redis unreachable: FailMode::open admits (the reservation is marked counted=false, counted in
// fail_open_total(), logged once per outage); FailMode::closed refuses with ErrorKind::unavailable.
// Reconciles that could not be written are kept (bounded) and replayed by a background thread when
// Redis is back, so spend during an outage still reaches the shared budget.
//
// Redis that lost its data (restart without persistence, eviction, failover to an empty replica):
// each budgeted tenant's day carries a marker key <prefix>{t}:seeded:d:<day>; when it is missing the
// first replica to notice sets the day and month spend counters to what the ledger has committed
// (one Lua script: the marker is set in the same step, so this happens once per day and Redis
// lifetime, whichever replica is first), then reserves. Exact when the replicas share one ledger;
// requests in flight at that moment may be counted twice or not at all (they are few). With a
// ledger per replica it restores the seeding replica's share only: run Redis with AOF.
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "gateway/state/limits.h"
#include "gateway/state/redis_client.h"

namespace gateway {

class Ledger;

enum class FailMode { open, closed };

struct RedisLimitOptions {
  FailMode fail_mode = FailMode::open;
  std::string key_prefix = "gw:";
  std::chrono::milliseconds lease{15 * 60 * 1000};  // longest a request may hold a concurrency slot
  size_t max_pending_reconciles = 100000;
  std::chrono::milliseconds replay_interval{250};
};

class RedisLimitStore final : public LimitStore {
 public:
  RedisLimitStore(std::shared_ptr<RedisClient> redis, const TenantDirectory& tenants, RedisLimitOptions options = {});
  ~RedisLimitStore() override;

  core::Result<Reservation> reserve(const Tenant& t, core::Money worst_case_cost, int64_t worst_case_tokens,
                                    core::WallTime now) override;
  void reconcile(const Reservation& r, core::Money actual_cost, int64_t actual_tokens, core::WallTime now) override;
  void release(const Reservation& r) override;
  std::vector<BudgetStatus> budgets(core::WallTime now) const override;
  void update_tenants(const TenantDirectory& tenants);
  // The ledger the spend counters are re-seeded from (may stay null: counters then start empty).
  void set_ledger(const Ledger* ledger) { ledger_ = ledger; }
  uint64_t seeds() const { return seeds_.load(std::memory_order_relaxed); }

  uint64_t fail_open_total() const { return fail_open_.load(std::memory_order_relaxed); }
  uint64_t fail_closed_total() const { return fail_closed_.load(std::memory_order_relaxed); }
  size_t pending_reconciles() const;
  uint64_t dropped_reconciles() const { return dropped_.load(std::memory_order_relaxed); }
  // Blocks until the pending reconciles are written (or `max_wait` passes); true if none remain.
  bool flush_pending(std::chrono::milliseconds max_wait);

 private:
  struct Pending {
    std::vector<std::string> keys, args;
  };
  std::string key(const std::string& tenant, const std::string& rest) const;
  bool settle(std::vector<std::string> keys, std::vector<std::string> args);
  void seed(const std::string& tenant, int64_t day, int64_t month, core::WallTime now);
  void replay_loop();

  std::shared_ptr<RedisClient> redis_;
  RedisLimitOptions options_;
  std::string replica_id_;  // makes lease ids unique across replicas
  std::atomic<int64_t> next_id_{1};
  std::atomic<uint64_t> fail_open_{0}, fail_closed_{0}, dropped_{0}, seeds_{0};
  const Ledger* ledger_ = nullptr;
  std::atomic<bool> degraded_{false};  // for logging once per outage

  mutable std::mutex tenants_mu_;
  std::vector<std::pair<std::string, Budget>> budgets_;  // for budgets()

  mutable std::mutex pending_mu_;
  std::condition_variable pending_cv_;
  std::deque<Pending> pending_;
  bool stop_ = false;
  std::thread replayer_;
};

}  // namespace gateway
