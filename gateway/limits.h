#pragma once
// Budgets and rate limits per tenant: reserve the worst case before dispatch, reconcile with the
// real cost after, release on failure.
//
// Semantics shared by every LimitStore:
// - rpm and tpm count in fixed 60 s windows aligned to the UTC minute (exact and cheap, identical in
//   process and in Redis; a burst straddling a boundary can see up to 2x the limit within 60 s).
// - tpm counts the reservation's worst-case tokens until reconcile replaces them with the actual
//   count (in the same window only). A single request whose own worst case exceeds the whole tpm
//   limit can never fit: it is refused at once (code request_exceeds_tpm, no retry_after), in every
//   store, whatever the window holds.
// - concurrency counts reservations not yet reconciled or released.
// - budgets: a hard budget refuses when spent + reserved (in flight) + this request's worst-case
//   cost exceeds the limit; a soft budget never refuses, it only shows in budgets(). Spend is charged
//   to the UTC day/month in which reconcile runs (the ledger's timestamp is the completion time too).
// - Refusals are core::Error{rate_limited, source client (not retryable elsewhere), code
//   budget_exceeded | rate_limit_rpm | rate_limit_tpm | concurrency_limit, retry_after set}, whose
//   message says which limit, for whom, and when it resets.
#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <vector>

#include "core/clock.h"
#include "core/money.h"
#include "core/result.h"
#include "gateway/tenants.h"

namespace gateway {

class Ledger;

struct Reservation {
  std::string tenant;
  core::Money reserved_cost;
  int64_t reserved_tokens = 0;
  int64_t id = 0;
  bool counted_concurrency = false;
  // Windows the reservation was charged to (UTC minute / day / month indexes), so that reconcile
  // adjusts those and not whatever window is current when the request ends.
  int64_t minute = 0, day = 0, month = 0;
  // False when the store could not count it (Redis unreachable, fail-open): reconcile then only
  // records the actual spend and release does nothing.
  bool counted = true;
};

struct BudgetStatus {
  std::string tenant;
  std::string period;  // "daily" | "monthly"
  core::Money limit, spent, reserved, remaining;  // remaining = limit - spent (may go negative)
  bool hard = true;
};

class LimitStore {
 public:
  virtual ~LimitStore() = default;
  virtual core::Result<Reservation> reserve(const Tenant& t, core::Money worst_case_cost, int64_t worst_case_tokens,
                                            core::WallTime now) = 0;
  virtual void reconcile(const Reservation& r, core::Money actual_cost, int64_t actual_tokens, core::WallTime now) = 0;
  virtual void release(const Reservation& r) = 0;  // failed attempt that consumed nothing
  virtual std::vector<BudgetStatus> budgets(core::WallTime now) const = 0;
};

// In-process store: one mutex per tenant. Seed it from the ledger at start so that a restart keeps
// today's and this month's spend.
class LocalLimitStore final : public LimitStore {
 public:
  explicit LocalLimitStore(const TenantDirectory& tenants);

  // Sets the spend already committed in the current day and month (at `now`).
  void seed(std::string_view tenant, core::Money spent_today, core::Money spent_this_month, core::WallTime now);
  // seed() for every tenant with a budget, from Ledger::spent since the start of the UTC day/month.
  void seed_from_ledger(const Ledger& ledger, core::WallTime now);
  // After a config reload: budgets of new/changed tenants; counters are kept.
  void update_tenants(const TenantDirectory& tenants);

  core::Result<Reservation> reserve(const Tenant& t, core::Money worst_case_cost, int64_t worst_case_tokens,
                                    core::WallTime now) override;
  void reconcile(const Reservation& r, core::Money actual_cost, int64_t actual_tokens, core::WallTime now) override;
  void release(const Reservation& r) override;
  std::vector<BudgetStatus> budgets(core::WallTime now) const override;

 private:
  struct State {
    mutable std::mutex mu;
    Budget budget;
    int64_t minute = -1, rpm = 0, tpm = 0;
    int64_t in_flight = 0;
    int64_t day = -1, month = -1;
    core::Money day_spent, day_reserved, month_spent, month_reserved;
    void roll(core::WallTime now);
  };
  State& state(const std::string& tenant);

  mutable std::shared_mutex map_mu_;
  std::map<std::string, std::unique_ptr<State>, std::less<>> states_;
  std::atomic<int64_t> next_id_{1};
};

// ---- Shared by the stores (and their tests) ----

int64_t utc_minute(core::WallTime t);  // minutes since the epoch
int64_t utc_day(core::WallTime t);     // days since the epoch
int64_t utc_month(core::WallTime t);   // year * 12 + (month - 1)
core::WallTime minute_start(int64_t minute);
core::WallTime day_start(int64_t day);
core::WallTime month_start(int64_t month);
std::string iso8601(core::WallTime t);  // "2026-11-25T00:00:00Z"
std::string format_dollars(core::Money m);  // "$5.00", "$5.0012"

// The refusal errors, worded once for every store.
core::Error budget_refusal(std::string_view tenant, std::string_view period, core::Money limit, core::Money spent,
                           core::Money reserved, core::Money worst_case, core::WallTime resets_at, core::WallTime now);
// The refusal of a request whose worst-case tokens exceed the tenant's whole tpm limit (nullopt:
// it can fit). Not retryable: waiting does not make it smaller.
std::optional<core::Error> tpm_never_fits(const Tenant& t, int64_t worst_case_tokens);
core::Error rate_refusal(std::string_view code, std::string_view tenant, int64_t limit, core::WallTime retry_at,
                         core::WallTime now);

}  // namespace gateway
