#include "gateway/state/limits.h"

#include <algorithm>
#include <chrono>
#include <cstdio>

#include "gateway/state/ledger.h"

namespace gateway {

using namespace std::chrono;

int64_t unix_second(core::WallTime t) { return floor<seconds>(t.time_since_epoch()).count(); }
int64_t utc_day(core::WallTime t) { return floor<days>(t.time_since_epoch()).count(); }
int64_t utc_month(core::WallTime t) {
  year_month_day ymd{floor<days>(t)};
  return static_cast<int>(ymd.year()) * 12 + static_cast<int64_t>(static_cast<unsigned>(ymd.month())) - 1;
}
core::WallTime day_start(int64_t day) { return core::WallTime(duration_cast<system_clock::duration>(days(day))); }
core::WallTime month_start(int64_t month) {
  int64_t y = month >= 0 ? month / 12 : (month - 11) / 12;
  unsigned m = static_cast<unsigned>(month - y * 12) + 1;
  sys_days d = year_month_day{year(static_cast<int>(y)), std::chrono::month(m), std::chrono::day(1)};
  return core::WallTime(duration_cast<system_clock::duration>(d.time_since_epoch()));
}

std::string iso8601(core::WallTime t) {
  auto secs = floor<seconds>(t);
  auto dp = floor<days>(secs);
  year_month_day ymd{dp};
  hh_mm_ss hms{secs - dp};
  char buf[32];
  std::snprintf(buf, sizeof buf, "%04d-%02u-%02uT%02d:%02d:%02dZ", static_cast<int>(ymd.year()),
                static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()), static_cast<int>(hms.hours().count()),
                static_cast<int>(hms.minutes().count()), static_cast<int>(hms.seconds().count()));
  return buf;
}

std::string format_dollars(core::Money m) {
  std::string s = core::format_usd(m);
  auto dot = s.find('.');
  if (dot != std::string::npos && s.size() - dot == 2) s += '0';
  if (!s.empty() && s[0] == '-') return "-$" + s.substr(1);
  return "$" + s;
}

namespace {

std::chrono::milliseconds until(core::WallTime at, core::WallTime now) {
  auto d = ceil<milliseconds>(at - now);
  return d.count() > 0 ? d : milliseconds(1);
}

std::string in_words(milliseconds d) {
  auto s = ceil<seconds>(d).count();
  if (s < 120) return std::to_string(s) + " s";
  if (s < 7200) return std::to_string((s + 59) / 60) + " min";
  return std::to_string((s + 3599) / 3600) + " h";
}

}  // namespace

core::Error budget_refusal(std::string_view tenant, std::string_view period, core::Money limit, core::Money spent,
                           core::Money reserved, core::Money worst_case, core::WallTime resets_at, core::WallTime now) {
  std::string msg = std::string(period) + " budget of " + format_dollars(limit) + " for tenant '" + std::string(tenant) + "' ";
  if (spent >= limit) {
    msg += "is exhausted (" + format_dollars(spent) + " spent)";
  } else {
    msg += "cannot cover this request (" + format_dollars(spent) + " spent";
    if (reserved.pico > 0) msg += ", " + format_dollars(reserved) + " reserved by requests in flight";
    msg += ", this request may cost up to " + format_dollars(worst_case) + ")";
  }
  msg += "; resets at " + iso8601(resets_at);
  auto e = core::make_error(core::ErrorKind::rate_limited, std::move(msg), core::ErrorSource::client, "budget_exceeded");
  e.retry_after = until(resets_at, now);
  return e;
}

std::optional<core::Error> tpm_never_fits(const Tenant& t, int64_t worst_case_tokens) {
  if (!t.limits.tpm || worst_case_tokens <= *t.limits.tpm) return std::nullopt;
  core::Error e = core::make_error(core::ErrorKind::rate_limited,
                                   "this request can never fit the rate limit of " + std::to_string(*t.limits.tpm) +
                                       " tokens per minute for tenant '" + t.name + "': its worst case is " +
                                       std::to_string(worst_case_tokens) +
                                       " tokens (estimated prompt + max_tokens); lower max_tokens or shorten the prompt",
                                   core::ErrorSource::client, "request_exceeds_tpm", "max_tokens");
  e.permanent = true;  // retrying the same request cannot help: no Retry-After, x-should-retry: false
  return e;
}

core::Error rate_refusal(std::string_view code, std::string_view tenant, int64_t limit, core::WallTime retry_at,
                         core::WallTime now) {
  std::string msg;
  std::string who = " for tenant '" + std::string(tenant) + "' reached";
  auto wait = until(retry_at, now);
  if (code == "rate_limit_rpm")
    msg = "rate limit of " + std::to_string(limit) + " requests per minute" + who + "; retry in " + in_words(wait);
  else if (code == "rate_limit_tpm")
    msg = "rate limit of " + std::to_string(limit) + " tokens per minute" + who + "; retry in " + in_words(wait);
  else
    msg = "concurrency limit of " + std::to_string(limit) + " requests in flight" + who + "; retry when one finishes";
  auto e = core::make_error(core::ErrorKind::rate_limited, std::move(msg), core::ErrorSource::client, std::string(code));
  e.retry_after = wait;
  return e;
}

// ---- Sliding rate windows ----

core::WallTime window_retry_at(std::vector<WindowBucket> in_window, int64_t cost, int64_t limit) {
  std::sort(in_window.begin(), in_window.end(), [](const auto& a, const auto& b) { return a.second < b.second; });
  int64_t total = 0;
  for (const auto& b : in_window) total += b.amount;
  int64_t excess = total + cost - limit;  // what has to leave the window first
  int64_t leaves = 0;
  for (const auto& b : in_window) {
    if (excess <= 0) break;
    excess -= b.amount;
    leaves = b.second + kWindowBuckets;
  }
  return core::WallTime(duration_cast<system_clock::duration>(seconds(leaves)));
}

int64_t RateWindow::sum(int64_t now_s) const {
  int64_t n = 0;
  for (size_t i = 0; i < label_.size(); ++i)
    if (live(i, now_s)) n += amount_[i];
  return n;
}

std::vector<WindowBucket> RateWindow::buckets(int64_t now_s) const {
  std::vector<WindowBucket> out;
  for (size_t i = 0; i < label_.size(); ++i)
    if (live(i, now_s) && amount_[i] > 0) out.push_back({label_[i], amount_[i]});
  return out;
}

int64_t RateWindow::add(int64_t now_s, int64_t amount) {
  auto slot = static_cast<size_t>(((now_s % kWindowBuckets) + kWindowBuckets) % kWindowBuckets);
  // Within the window, distinct seconds have distinct slots; a live label other than now_s is
  // therefore later than now_s (the clock stepped back by more than the window).
  if (!live(slot, now_s)) {
    label_[slot] = now_s;
    amount_[slot] = 0;
  }
  amount_[slot] += amount;
  return label_[slot];
}

void RateWindow::adjust(int64_t second, int64_t delta) {
  auto slot = static_cast<size_t>(((second % kWindowBuckets) + kWindowBuckets) % kWindowBuckets);
  if (label_[slot] != second) return;
  amount_[slot] = std::max<int64_t>(0, amount_[slot] + delta);
}

// ---- LocalLimitStore ----

void LocalLimitStore::State::roll(core::WallTime now) {
  int64_t d = utc_day(now);
  if (d != day) {
    day = d;
    day_spent = {};
    day_reserved = {};
  }
  int64_t mo = utc_month(now);
  if (mo != month) {
    month = mo;
    month_spent = {};
    month_reserved = {};
  }
}

LocalLimitStore::LocalLimitStore(const TenantDirectory& tenants) { update_tenants(tenants); }

void LocalLimitStore::update_tenants(const TenantDirectory& tenants) {
  for (const auto& t : tenants.tenants()) {
    State& s = state(t.name);
    std::lock_guard lk(s.mu);
    s.budget = t.budget;
  }
}

LocalLimitStore::State& LocalLimitStore::state(const std::string& tenant) {
  {
    std::shared_lock lk(map_mu_);
    auto it = states_.find(tenant);
    if (it != states_.end()) return *it->second;
  }
  std::unique_lock lk(map_mu_);
  auto& p = states_[tenant];
  if (!p) p = std::make_unique<State>();
  return *p;
}

void LocalLimitStore::seed(std::string_view tenant, core::Money spent_today, core::Money spent_this_month,
                           core::WallTime now) {
  State& s = state(std::string(tenant));
  std::lock_guard lk(s.mu);
  s.roll(now);
  s.day_spent = spent_today;
  s.month_spent = spent_this_month;
}

void LocalLimitStore::seed_from_ledger(const Ledger& ledger, core::WallTime now) {
  std::vector<std::string> names;
  {
    std::shared_lock lk(map_mu_);
    for (const auto& [name, s] : states_) names.push_back(name);
  }
  auto ms = [](core::WallTime t) { return duration_cast<milliseconds>(t.time_since_epoch()).count(); };
  for (const auto& name : names)
    seed(name, ledger.spent(name, ms(day_start(utc_day(now)))), ledger.spent(name, ms(month_start(utc_month(now)))), now);
}

core::Result<Reservation> LocalLimitStore::reserve(const Tenant& t, core::Money worst_case_cost,
                                                   int64_t worst_case_tokens, core::WallTime now) {
  if (auto never = tpm_never_fits(t, worst_case_tokens)) return *never;
  State& s = state(t.name);
  std::lock_guard lk(s.mu);
  s.budget = t.budget;  // the request's view of the tenant (config reloads) wins
  s.roll(now);
  if (t.budget.hard) {
    if (t.budget.daily && s.day_spent + s.day_reserved + worst_case_cost > *t.budget.daily)
      return budget_refusal(t.name, "daily", *t.budget.daily, s.day_spent, s.day_reserved, worst_case_cost,
                            day_start(s.day + 1), now);
    if (t.budget.monthly && s.month_spent + s.month_reserved + worst_case_cost > *t.budget.monthly)
      return budget_refusal(t.name, "monthly", *t.budget.monthly, s.month_spent, s.month_reserved, worst_case_cost,
                            month_start(s.month + 1), now);
  }
  if (t.limits.concurrency && s.in_flight + 1 > *t.limits.concurrency)
    return rate_refusal("concurrency_limit", t.name, *t.limits.concurrency, now + seconds(1), now);
  const int64_t sec = unix_second(now);
  if (t.limits.rpm && s.requests.sum(sec) + 1 > *t.limits.rpm)
    return rate_refusal("rate_limit_rpm", t.name, *t.limits.rpm,
                        window_retry_at(s.requests.buckets(sec), 1, *t.limits.rpm), now);
  if (t.limits.tpm && s.tokens.sum(sec) + worst_case_tokens > *t.limits.tpm)
    return rate_refusal("rate_limit_tpm", t.name, *t.limits.tpm,
                        window_retry_at(s.tokens.buckets(sec), worst_case_tokens, *t.limits.tpm), now);

  Reservation r;
  r.tenant = t.name;
  r.reserved_cost = worst_case_cost;
  r.reserved_tokens = worst_case_tokens;
  r.id = next_id_.fetch_add(1, std::memory_order_relaxed);
  r.day = s.day;
  r.month = s.month;
  // Both windows get the same label: add() only differs from `sec` after a large backward step,
  // and then for both alike.
  r.second = s.requests.add(sec, 1);
  s.tokens.add(sec, worst_case_tokens);
  if (t.limits.concurrency) {
    s.in_flight += 1;
    r.counted_concurrency = true;
  }
  s.day_reserved += worst_case_cost;
  s.month_reserved += worst_case_cost;
  return r;
}

void LocalLimitStore::reconcile(const Reservation& r, core::Money actual_cost, int64_t actual_tokens,
                                core::WallTime now) {
  State& s = state(r.tenant);
  std::lock_guard lk(s.mu);
  s.roll(now);
  if (r.counted) {
    s.tokens.adjust(r.second, actual_tokens - r.reserved_tokens);
    if (r.day == s.day) s.day_reserved = std::max(core::Money{}, s.day_reserved - r.reserved_cost);
    if (r.month == s.month) s.month_reserved = std::max(core::Money{}, s.month_reserved - r.reserved_cost);
    if (r.counted_concurrency) s.in_flight = std::max<int64_t>(0, s.in_flight - 1);
  }
  s.day_spent += actual_cost;
  s.month_spent += actual_cost;
}

void LocalLimitStore::release(const Reservation& r) {
  if (!r.counted) return;
  State& s = state(r.tenant);
  std::lock_guard lk(s.mu);
  // The request itself still counts against rpm; its tokens and money do not.
  s.tokens.adjust(r.second, -r.reserved_tokens);
  if (r.day == s.day) s.day_reserved = std::max(core::Money{}, s.day_reserved - r.reserved_cost);
  if (r.month == s.month) s.month_reserved = std::max(core::Money{}, s.month_reserved - r.reserved_cost);
  if (r.counted_concurrency) s.in_flight = std::max<int64_t>(0, s.in_flight - 1);
}

std::vector<BudgetStatus> LocalLimitStore::budgets(core::WallTime now) const {
  std::vector<BudgetStatus> out;
  std::shared_lock mlk(map_mu_);
  int64_t day = utc_day(now), month = utc_month(now);
  for (const auto& [name, sp] : states_) {
    const State& s = *sp;
    std::lock_guard lk(s.mu);
    if (s.budget.daily) {
      core::Money spent = s.day == day ? s.day_spent : core::Money{};
      core::Money reserved = s.day == day ? s.day_reserved : core::Money{};
      out.push_back({name, "daily", *s.budget.daily, spent, reserved, *s.budget.daily - spent, s.budget.hard});
    }
    if (s.budget.monthly) {
      core::Money spent = s.month == month ? s.month_spent : core::Money{};
      core::Money reserved = s.month == month ? s.month_reserved : core::Money{};
      out.push_back({name, "monthly", *s.budget.monthly, spent, reserved, *s.budget.monthly - spent, s.budget.hard});
    }
  }
  return out;
}

}  // namespace gateway
