#pragma once
// Budgets and rate limits per tenant: reserve the worst case before dispatch, reconcile with the
// real cost after, release on failure.
//
// Semantics shared by every LimitStore:
// - rpm and tpm are sliding windows of one-second buckets (see "Sliding rate windows" below): no
//   60 s span, wherever it starts, admits more than the limit; a refusal's retry_after is the real
//   wait until enough of the oldest buckets have left the window. Identical in process and in Redis
//   (as long as the clock never steps back by more than the window: see RateWindow::add).
// - tpm counts the reservation's worst-case tokens until reconcile replaces them with the actual
//   count, in the bucket the reservation was counted in, if that bucket is still inside the window
//   (a bucket that has left it no longer matters to any decision). A single request whose own
//   worst case exceeds the whole tpm limit can never fit: it is refused at once (code
//   request_exceeds_tpm, no retry_after), in every store, whatever the window holds.
// - concurrency counts reservations not yet reconciled or released.
// - budgets: a hard budget refuses when spent + reserved (in flight) + this request's worst-case
//   cost exceeds the limit; a soft budget never refuses, it only shows in budgets(). Spend is charged
//   to the UTC day/month in which reconcile runs (the ledger's timestamp is the completion time too).
// - Refusals are core::Error{rate_limited, source client (not retryable elsewhere), code
//   budget_exceeded | rate_limit_rpm | rate_limit_tpm | concurrency_limit, retry_after set}, whose
//   message says which limit, for whom, and when it resets.
#include <array>
#include <atomic>
#include <climits>
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
#include "gateway/state/tenants.h"

namespace gateway {

class Ledger;

struct Reservation {
  std::string tenant;
  core::Money reserved_cost;
  int64_t reserved_tokens = 0;
  int64_t id = 0;
  bool counted_concurrency = false;
  // Where the reservation was charged (rate bucket: unix second; UTC day / month indexes), so that
  // reconcile adjusts those and not whatever is current when the request ends.
  int64_t second = 0, day = 0, month = 0;
  // False when the store could not count it (Redis unreachable, fail-open): reconcile then only
  // records the actual spend and release does nothing.
  bool counted = true;
};

// ---- Sliding rate windows ----
//
// A limit L per minute counts admissions in one-second buckets (bucket s holds what was admitted at
// unix seconds [s, s+1)). At time t, in second S = floor(t), the window is every bucket s >= S - 60:
// the current second and the 60 before it (61 buckets), plus any bucket labelled later than S (a
// clock that stepped back, or another replica's clock a little ahead: counted rather than ignored).
// Across replicas the bound below assumes one clock: skew of k seconds can make it k seconds short.
// A request of cost c is admitted when sum(window) + c <= L.
//
// Why 61 buckets and not 60: take any span of 60 s, (u - 60, u]. Let a be the admission inside it
// that was decided last, at time t_a in second S_a. Every other admission b inside it has
// t_b > u - 60 >= t_a - 60, so floor(t_b) >= floor(t_a - 60) = S_a - 60: b's bucket was in a's window
// when a was decided (b was decided earlier, so it was already counted). a was admitted only if
// sum(a's window) + c_a <= L, and that sum includes every such b: the span holds at most L. With 60
// buckets, b at S_a - 60 + 0.9 and a at S_a + 0.5 are 59.6 s apart and b would not be seen.
// The price of the rule: an admission leaves the window 60 to 61 s after it was made, never sooner.
//
// Reconcile replaces a reservation's worst case with its actual count in the same bucket; the bound
// then holds for what was actually consumed as long as actual <= worst case (the usual case; an
// under-estimated prompt adds its excess to its own bucket).
constexpr int64_t kWindowSeconds = 60;
constexpr int64_t kWindowBuckets = kWindowSeconds + 1;

struct WindowBucket {
  int64_t second = 0, amount = 0;
};

// The earliest time at which `cost` more fits under `limit`, given the buckets now in the window
// (any order): when enough of the oldest have left it (bucket s leaves at second s + 61). Requires
// cost <= limit (else it never fits: see tpm_never_fits).
core::WallTime window_retry_at(std::vector<WindowBucket> in_window, int64_t cost, int64_t limit);

// One tenant's counts for one limit, in process: a ring of 61 buckets (memory bounded whatever the
// traffic). Slot s % 61 holds second s; a slot whose label is older than the window is empty.
class RateWindow {
 public:
  // Sum of the buckets inside the window at second `now_s` (labels >= now_s - 60).
  int64_t sum(int64_t now_s) const;
  std::vector<WindowBucket> buckets(int64_t now_s) const;
  // Counts `amount` at second `now_s`; returns the label of the bucket it went into: now_s, or the
  // later label still in that slot after the clock stepped back by more than the window (kept, so
  // the count stays in the window at least as long as it would have).
  int64_t add(int64_t now_s, int64_t amount);
  // Adds `delta` (may be negative; floored at 0) to the bucket labelled `second` if the ring still
  // holds it. A bucket that has left the window is ignored by every sum (and emptied when its slot
  // is reused), so adjusting it is harmless and needs no clock: release() has none.
  void adjust(int64_t second, int64_t delta);

 private:
  bool live(size_t slot, int64_t now_s) const { return label_[slot] >= now_s - kWindowSeconds; }
  std::array<int64_t, kWindowBuckets> label_ = empty_labels();
  std::array<int64_t, kWindowBuckets> amount_{};
  static constexpr std::array<int64_t, kWindowBuckets> empty_labels() {
    std::array<int64_t, kWindowBuckets> a{};
    a.fill(INT64_MIN);
    return a;
  }
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
    RateWindow requests, tokens;  // rpm, tpm
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

int64_t unix_second(core::WallTime t);  // seconds since the epoch (floor)
int64_t utc_day(core::WallTime t);     // days since the epoch
int64_t utc_month(core::WallTime t);   // year * 12 + (month - 1)
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
