#include "gateway/state/limits_redis.h"

#include <openssl/rand.h>

#include "gateway/state/ledger.h"

#include <cstdio>
#include <stdexcept>

namespace gateway {
namespace {

using namespace std::chrono;

// KEYS: 1 win (rate buckets), 2 conc, 3 spent:d, 4 resv:d, 5 spent:m, 6 resv:m, 7 seeded:d (marker)
// ARGV: 1 rpm limit, 2 tpm limit, 3 conc limit, 4 daily limit, 5 monthly limit (-1 = none),
//       6 hard (1/0), 7 worst-case cost, 8 worst-case tokens, 9 now ms, 10 lease id, 11 lease expiry ms,
//       12 window ttl s, 13 day ttl s, 14 month ttl s, 15 lease ttl s, 16 budgeted (1/0), 17 now (unix s)
// A budgeted tenant whose day has no seed marker (a new day, or a Redis that lost its data) gets
// {'seed'}: the caller seeds the spend counters from the ledger (kSeed), then reserves again.
// The rate window (gateway/limits.h, "Sliding rate windows") is one hash per tenant: fields
// r<second> / t<second> (requests / tokens admitted in that second), R / T (their sums over every
// bucket not yet pruned) and P (every bucket labelled <= P has been pruned: subtracted and deleted).
// An admission at second S prunes the buckets (P, S - 61] (usually none or one: a constant cost per
// request, not a scan of the window) and keeps labels > P, so R and T are the window's sums. After a
// pause of more than the window (key not yet expired) it rescans the hash once instead. A clock far
// behind P counts in bucket P + 1 (later, never lost) and the reply says which bucket was used.
// A refusal returns the buckets of the limit that refused ({'rpm'|'tpm', second, amount, ...}, read
// only then) and the caller computes the wait exactly as the local store does. Refusals write nothing.
const RedisScript kReserve(R"lua(
if ARGV[16] == '1' and redis.call('EXISTS', KEYS[7]) == 0 then return {'seed'} end
local function num(k) local v = redis.call('GET', k); if v then return tonumber(v) end; return 0 end
local function raw(k) return redis.call('GET', k) or '0' end
local function int(x) return string.format('%d', x) end
local rpm, tpm, conc = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local daily, monthly, hard = tonumber(ARGV[4]), tonumber(ARGV[5]), ARGV[6] == '1'
local cost, tokens = tonumber(ARGV[7]), tonumber(ARGV[8])
if hard and daily >= 0 and num(KEYS[3]) + num(KEYS[4]) + cost > daily then
  return {'daily', raw(KEYS[3]), raw(KEYS[4])}
end
if hard and monthly >= 0 and num(KEYS[5]) + num(KEYS[6]) + cost > monthly then
  return {'monthly', raw(KEYS[5]), raw(KEYS[6])}
end
if conc >= 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[9])
  if redis.call('ZCARD', KEYS[2]) + 1 > conc then return {'concurrency'} end
end
local sec = tonumber(ARGV[17])
local oldest = sec - 60
local w = redis.call('HMGET', KEYS[1], 'R', 'T', 'P')
local rsum, tsum, pruned = tonumber(w[1]) or 0, tonumber(w[2]) or 0, tonumber(w[3])
local stale = {}
if pruned == nil then
  pruned = oldest - 1
  rsum, tsum = 0, 0
elseif oldest - 1 - pruned > 61 then
  rsum, tsum = 0, 0
  local all = redis.call('HGETALL', KEYS[1])
  for i = 1, #all, 2 do
    local kind, s = string.sub(all[i], 1, 1), tonumber(string.sub(all[i], 2))
    if s and (kind == 'r' or kind == 't') then
      if s < oldest then stale[#stale + 1] = all[i]
      elseif kind == 'r' then rsum = rsum + tonumber(all[i + 1])
      else tsum = tsum + tonumber(all[i + 1]) end
    end
  end
  pruned = oldest - 1
elseif pruned < oldest - 1 then
  for s = pruned + 1, oldest - 1 do stale[#stale + 1] = 'r' .. s; stale[#stale + 1] = 't' .. s end
  local old = redis.call('HMGET', KEYS[1], unpack(stale))
  for i = 1, #old, 2 do rsum = rsum - (tonumber(old[i]) or 0); tsum = tsum - (tonumber(old[i + 1]) or 0) end
  pruned = oldest - 1
end
rsum, tsum = math.max(rsum, 0), math.max(tsum, 0)
local function window(kind, verdict)
  local out, all = {verdict}, redis.call('HGETALL', KEYS[1])
  for i = 1, #all, 2 do
    local s = tonumber(string.sub(all[i], 2))
    if s and string.sub(all[i], 1, 1) == kind and s > pruned then out[#out + 1] = int(s); out[#out + 1] = all[i + 1] end
  end
  return out
end
if rpm >= 0 and rsum + 1 > rpm then return window('r', 'rpm') end
if tpm >= 0 and tsum + tokens > tpm then return window('t', 'tpm') end
if #stale > 0 then redis.call('HDEL', KEYS[1], unpack(stale)) end
local label = sec
if label <= pruned then label = pruned + 1 end
redis.call('HINCRBY', KEYS[1], 'r' .. int(label), 1)
redis.call('HINCRBY', KEYS[1], 't' .. int(label), ARGV[8])
redis.call('HSET', KEYS[1], 'R', int(rsum + 1), 'T', int(tsum + tokens), 'P', int(pruned))
redis.call('EXPIRE', KEYS[1], ARGV[12])
if conc >= 0 then
  redis.call('ZADD', KEYS[2], ARGV[11], ARGV[10]); redis.call('EXPIRE', KEYS[2], ARGV[15])
end
redis.call('INCRBY', KEYS[4], ARGV[7]); redis.call('EXPIRE', KEYS[4], ARGV[13])
redis.call('INCRBY', KEYS[6], ARGV[7]); redis.call('EXPIRE', KEYS[6], ARGV[14])
return {'ok', int(label)}
)lua");

// KEYS: 1 win (rate buckets), 2 conc, 3 resv:d (reservation's day), 4 resv:m (its month),
//       5 spent:d (today), 6 spent:m (this month), 7 done marker, 8 seeded:d (today's seed marker)
// ARGV: 1 counted (1/0), 2 token delta (actual - reserved), 3 reserved cost, 4 actual cost, 5 lease id,
//       6 day ttl s, 7 month ttl s, 8 add spend (1/0), 9 marker ttl s, 10 ledger-backed (1/0),
//       11 the reservation's token bucket field (t<second>)
// The done marker makes a replayed reconcile (reply lost, then queued and sent again) a no-op.
// The token delta goes to the reservation's own bucket (and the sum T) while the hash still has it;
// once pruned it has left the window and no longer counts for anyone.
// Ledger-backed spend is not added to counters that are not seeded yet: the seed (SET NX from the
// ledger, which already holds this spend) would otherwise find them present and keep them.
const RedisScript kSettle(R"lua(
if not redis.call('SET', KEYS[7], '1', 'NX', 'EX', ARGV[9]) then return 0 end
local function sub_floor(k, by)
  if by == '0' or redis.call('EXISTS', k) == 0 then return end
  if redis.call('DECRBY', k, by) < 0 then redis.call('SET', k, '0', 'KEEPTTL') end
end
if ARGV[1] == '1' then
  local cur = ARGV[2] ~= '0' and redis.call('HGET', KEYS[1], ARGV[11])
  if cur then
    local before = tonumber(cur)
    local after = math.max(0, before + tonumber(ARGV[2]))
    local total = math.max(0, (tonumber(redis.call('HGET', KEYS[1], 'T')) or 0) + after - before)
    redis.call('HSET', KEYS[1], ARGV[11], string.format('%d', after), 'T', string.format('%d', total))
  end
  redis.call('ZREM', KEYS[2], ARGV[5])
  sub_floor(KEYS[3], ARGV[3])
  sub_floor(KEYS[4], ARGV[3])
end
if ARGV[8] == '1' and (ARGV[10] ~= '1' or redis.call('EXISTS', KEYS[8]) == 1) then
  redis.call('INCRBY', KEYS[5], ARGV[4]); redis.call('EXPIRE', KEYS[5], ARGV[6])
  redis.call('INCRBY', KEYS[6], ARGV[4]); redis.call('EXPIRE', KEYS[6], ARGV[7])
end
return 1
)lua");

// KEYS: 1 spent:d, 2 spent:m, 3 seeded:d marker
// ARGV: 1 ledger spend today, 2 ledger spend this month (pico-USD; '' = no ledger: keep the counters),
//       3 day ttl s, 4 month ttl s
// Once per day and Redis lifetime, whichever replica comes first: counters Redis lost start from
// the ledger's committed spend; counters it still has (a new day, a month key that survived) stay.
const RedisScript kSeed(R"lua(
if redis.call('EXISTS', KEYS[3]) == 1 then return 0 end
if ARGV[1] ~= '' then
  redis.call('SET', KEYS[1], ARGV[1], 'NX', 'EX', ARGV[3])
  redis.call('SET', KEYS[2], ARGV[2], 'NX', 'EX', ARGV[4])
end
redis.call('SET', KEYS[3], '1', 'EX', ARGV[3])
return 1
)lua");

constexpr int64_t kWindowTtl = 120;
constexpr int64_t kDayTtl = 3 * 86400;
constexpr int64_t kMonthTtl = 40 * 86400;
constexpr int64_t kMarkerTtl = 600;

int64_t unix_ms(core::WallTime t) { return duration_cast<milliseconds>(t.time_since_epoch()).count(); }

int64_t parse_i64(const std::string& s) {
  try {
    return std::stoll(s);
  } catch (...) {
    return 0;
  }
}

// {'rpm'|'tpm', second, amount, second, amount, ...} from kReserve.
std::vector<WindowBucket> window_buckets(const RedisReply& reply) {
  std::vector<WindowBucket> out;
  for (size_t i = 1; i + 1 < reply.elements.size(); i += 2)
    out.push_back({parse_i64(reply.elements[i].str), parse_i64(reply.elements[i + 1].str)});
  return out;
}

}  // namespace

RedisLimitStore::RedisLimitStore(std::shared_ptr<RedisClient> redis, const TenantDirectory& tenants,
                                 RedisLimitOptions options)
    : redis_(std::move(redis)), options_(std::move(options)) {
  unsigned char b[8];
  if (RAND_bytes(b, sizeof b) != 1) throw std::runtime_error("RAND_bytes failed");
  static const char* digits = "0123456789abcdef";
  for (unsigned char c : b) replica_id_ += {digits[c >> 4], digits[c & 15]};
  update_tenants(tenants);
  replayer_ = std::thread([this] { replay_loop(); });
}

RedisLimitStore::~RedisLimitStore() {
  {
    std::lock_guard lk(pending_mu_);
    stop_ = true;
  }
  pending_cv_.notify_all();
  replayer_.join();
  if (!pending_.empty())
    std::fprintf(stderr, "gateway: redis limits: %zu reconciles could not be written before shutdown\n",
                 pending_.size());
}

void RedisLimitStore::update_tenants(const TenantDirectory& tenants) {
  std::lock_guard lk(tenants_mu_);
  budgets_.clear();
  for (const auto& t : tenants.tenants())
    if (t.budget.daily || t.budget.monthly) budgets_.emplace_back(t.name, t.budget);
}

std::string RedisLimitStore::key(const std::string& tenant, const std::string& rest) const {
  return options_.key_prefix + "{" + tenant + "}:" + rest;
}

core::Result<Reservation> RedisLimitStore::reserve(const Tenant& t, core::Money worst_case_cost,
                                                   int64_t worst_case_tokens, core::WallTime now) {
  if (auto never = tpm_never_fits(t, worst_case_tokens)) return *never;
  Reservation r;
  r.tenant = t.name;
  r.reserved_cost = worst_case_cost;
  r.reserved_tokens = worst_case_tokens;
  r.id = next_id_.fetch_add(1, std::memory_order_relaxed);
  r.second = unix_second(now);
  r.day = utc_day(now);
  r.month = utc_month(now);
  const auto& n = t.name;
  std::string d = std::to_string(r.day), mo = std::to_string(r.month);
  int64_t now_ms = unix_ms(now);
  auto lim = [](const auto& o) { return o ? std::to_string(*o) : std::string("-1"); };
  auto money = [](const std::optional<core::Money>& o) { return o ? std::to_string(o->pico) : std::string("-1"); };
  const bool budgeted = t.budget.daily.has_value() || t.budget.monthly.has_value();
  auto run = [&] {
    return redis_->eval(
        kReserve,
        {key(n, "win"), key(n, "conc"), key(n, "spent:d:" + d), key(n, "resv:d:" + d), key(n, "spent:m:" + mo),
         key(n, "resv:m:" + mo), key(n, "seeded:d:" + d)},
        {lim(t.limits.rpm), lim(t.limits.tpm), lim(t.limits.concurrency), money(t.budget.daily),
         money(t.budget.monthly), t.budget.hard ? "1" : "0", std::to_string(worst_case_cost.pico),
         std::to_string(worst_case_tokens), std::to_string(now_ms), replica_id_ + ":" + std::to_string(r.id),
         std::to_string(now_ms + options_.lease.count()), std::to_string(kWindowTtl), std::to_string(kDayTtl),
         std::to_string(kMonthTtl), std::to_string(duration_cast<seconds>(options_.lease).count() + 60),
         budgeted ? "1" : "0", std::to_string(r.second)});
  };
  auto res = run();
  if (res.ok() && !res->is_error() && res->type == RedisReply::Type::array && !res->elements.empty() &&
      res->elements[0].str == "seed") {
    seed(n, r.day, r.month, now);
    res = run();
  }
  if (!res.ok() || res->is_error() || res->type != RedisReply::Type::array || res->elements.empty()) {
    std::string why = !res.ok() ? res.error().message : res->is_error() ? "script error: " + res->str : "unexpected reply";
    if (options_.fail_mode == FailMode::closed) {
      fail_closed_.fetch_add(1, std::memory_order_relaxed);
      auto e = core::make_error(core::ErrorKind::unavailable,
                                "budgets and rate limits are unavailable (" + why + "); refusing requests (fail closed)",
                                core::ErrorSource::gateway, "limits_unavailable");
      e.retry_after = milliseconds(1000);
      return e;
    }
    fail_open_.fetch_add(1, std::memory_order_relaxed);
    if (!degraded_.exchange(true))
      std::fprintf(stderr, "gateway: redis limits: %s; admitting requests without limits (fail open)\n", why.c_str());
    r.counted = false;
    return r;
  }
  if (degraded_.exchange(false))
    std::fprintf(stderr, "gateway: redis limits: enforced again (%llu requests admitted unchecked so far)\n",
                 static_cast<unsigned long long>(fail_open_.load()));
  const std::string& verdict = res->elements[0].str;
  if (verdict == "ok") {
    r.counted_concurrency = t.limits.concurrency.has_value();
    if (res->elements.size() > 1) r.second = parse_i64(res->elements[1].str);
    return r;
  }
  auto at = [&](size_t i) { return i < res->elements.size() ? core::Money{parse_i64(res->elements[i].str)} : core::Money{}; };
  if (verdict == "daily")
    return budget_refusal(n, "daily", *t.budget.daily, at(1), at(2), worst_case_cost, day_start(r.day + 1), now);
  if (verdict == "monthly")
    return budget_refusal(n, "monthly", *t.budget.monthly, at(1), at(2), worst_case_cost, month_start(r.month + 1), now);
  if (verdict == "concurrency")
    return rate_refusal("concurrency_limit", n, *t.limits.concurrency, now + seconds(1), now);
  if (verdict == "rpm" && t.limits.rpm)
    return rate_refusal("rate_limit_rpm", n, *t.limits.rpm, window_retry_at(window_buckets(*res), 1, *t.limits.rpm), now);
  if (verdict == "tpm" && t.limits.tpm)
    return rate_refusal("rate_limit_tpm", n, *t.limits.tpm,
                        window_retry_at(window_buckets(*res), worst_case_tokens, *t.limits.tpm), now);
  // Only a script from another version of the gateway sharing this Redis could answer otherwise:
  // refuse rather than admit on a verdict nobody can read.
  auto e = core::make_error(core::ErrorKind::unavailable, "budgets and rate limits: unexpected verdict '" + verdict + "' from Redis",
                            core::ErrorSource::gateway, "limits_unavailable");
  e.retry_after = milliseconds(1000);
  return e;
}

void RedisLimitStore::seed(const std::string& tenant, int64_t day, int64_t month, core::WallTime now) {
  std::string today, this_month;
  if (ledger_) {
    today = std::to_string(ledger_->spent(tenant, unix_ms(day_start(day))).pico);
    this_month = std::to_string(ledger_->spent(tenant, unix_ms(month_start(month))).pico);
  }
  auto res = redis_->eval(kSeed,
                          {key(tenant, "spent:d:" + std::to_string(day)), key(tenant, "spent:m:" + std::to_string(month)),
                           key(tenant, "seeded:d:" + std::to_string(day))},
                          {today, this_month, std::to_string(kDayTtl), std::to_string(kMonthTtl)});
  if (res.ok() && !res->is_error() && res->integer == 1) {
    seeds_.fetch_add(1, std::memory_order_relaxed);
    std::fprintf(stderr, "gateway: redis limits: tenant '%s' spend counters seeded from the ledger (%s today, %s this month, pico-USD)\n",
                 tenant.c_str(), today.empty() ? "no ledger" : today.c_str(), this_month.empty() ? "-" : this_month.c_str());
  }
  (void)now;
}

bool RedisLimitStore::settle(std::vector<std::string> keys, std::vector<std::string> args) {
  auto res = redis_->eval(kSettle, keys, args);
  if (res.ok()) {
    if (res->is_error()) std::fprintf(stderr, "gateway: redis limits: settle script error: %s\n", res->str.c_str());
    return true;
  }
  {
    std::lock_guard lk(pending_mu_);
    if (pending_.size() >= options_.max_pending_reconciles) {
      // Bounded: past the bound the newest is lost (counted), the queue keeps its order.
      if (dropped_.fetch_add(1, std::memory_order_relaxed) == 0)
        std::fprintf(stderr, "gateway: redis limits: pending reconcile queue full (%zu); dropping spend updates\n",
                     pending_.size());
      return false;
    }
    pending_.push_back(Pending{std::move(keys), std::move(args)});
  }
  pending_cv_.notify_one();
  return false;
}

void RedisLimitStore::reconcile(const Reservation& r, core::Money actual_cost, int64_t actual_tokens,
                                core::WallTime now) {
  const auto& n = r.tenant;
  std::string today = std::to_string(utc_day(now)), month = std::to_string(utc_month(now));
  settle({key(n, "win"), key(n, "conc"), key(n, "resv:d:" + std::to_string(r.day)),
          key(n, "resv:m:" + std::to_string(r.month)), key(n, "spent:d:" + today), key(n, "spent:m:" + month),
          key(n, "done:" + replica_id_ + ":" + std::to_string(r.id)), key(n, "seeded:d:" + today)},
         {r.counted ? "1" : "0", std::to_string(actual_tokens - r.reserved_tokens), std::to_string(r.reserved_cost.pico),
          std::to_string(actual_cost.pico), replica_id_ + ":" + std::to_string(r.id), std::to_string(kDayTtl),
          std::to_string(kMonthTtl), "1", std::to_string(kMarkerTtl), ledger_ ? "1" : "0",
          "t" + std::to_string(r.second)});
}

void RedisLimitStore::release(const Reservation& r) {
  if (!r.counted) return;
  const auto& n = r.tenant;
  std::string d = std::to_string(r.day), mo = std::to_string(r.month);
  settle({key(n, "win"), key(n, "conc"), key(n, "resv:d:" + d), key(n, "resv:m:" + mo),
          key(n, "spent:d:" + d), key(n, "spent:m:" + mo), key(n, "done:" + replica_id_ + ":" + std::to_string(r.id)),
          key(n, "seeded:d:" + d)},
         {"1", std::to_string(-r.reserved_tokens), std::to_string(r.reserved_cost.pico), "0",
          replica_id_ + ":" + std::to_string(r.id), std::to_string(kDayTtl), std::to_string(kMonthTtl), "0",
          std::to_string(kMarkerTtl), "0", "t" + std::to_string(r.second)});
}

std::vector<BudgetStatus> RedisLimitStore::budgets(core::WallTime now) const {
  std::vector<std::pair<std::string, Budget>> list;
  {
    std::lock_guard lk(tenants_mu_);
    list = budgets_;
  }
  std::vector<BudgetStatus> out;
  std::string d = std::to_string(utc_day(now)), mo = std::to_string(utc_month(now));
  for (const auto& [name, b] : list) {
    auto res = redis_->command({"MGET", key(name, "spent:d:" + d), key(name, "resv:d:" + d), key(name, "spent:m:" + mo),
                                key(name, "resv:m:" + mo)});
    if (!res.ok() || res->type != RedisReply::Type::array || res->elements.size() != 4) continue;
    auto v = [&](size_t i) { return core::Money{parse_i64(res->elements[i].str)}; };
    if (b.daily) out.push_back({name, "daily", *b.daily, v(0), v(1), *b.daily - v(0), b.hard});
    if (b.monthly) out.push_back({name, "monthly", *b.monthly, v(2), v(3), *b.monthly - v(2), b.hard});
  }
  return out;
}

size_t RedisLimitStore::pending_reconciles() const {
  std::lock_guard lk(pending_mu_);
  return pending_.size();
}

bool RedisLimitStore::flush_pending(milliseconds max_wait) {
  auto deadline = steady_clock::now() + max_wait;
  std::unique_lock lk(pending_mu_);
  while (!pending_.empty()) {
    pending_cv_.notify_all();
    if (pending_cv_.wait_until(lk, deadline) == std::cv_status::timeout) return pending_.empty();
  }
  return true;
}

void RedisLimitStore::replay_loop() {
  std::unique_lock lk(pending_mu_);
  for (;;) {
    pending_cv_.wait_for(lk, options_.replay_interval, [&] { return stop_ || !pending_.empty(); });
    if (stop_) return;
    size_t written = 0;
    while (!pending_.empty() && !stop_) {
      Pending p = pending_.front();
      lk.unlock();
      auto res = redis_->eval(kSettle, p.keys, p.args);
      lk.lock();
      if (!res.ok()) break;  // still down: try again after replay_interval
      if (!pending_.empty()) pending_.pop_front();
      ++written;
    }
    if (written) {
      std::fprintf(stderr, "gateway: redis limits: %zu reconciles from the outage written\n", written);
      pending_cv_.notify_all();
      if (!pending_.empty()) continue;
    }
    if (!pending_.empty()) {
      // Wait a full interval before the next attempt, unless stopping.
      pending_cv_.wait_for(lk, options_.replay_interval, [&] { return stop_; });
      if (stop_) return;
    }
  }
}

}  // namespace gateway
