#include "gateway/state/limits.h"

#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <thread>

#include "gateway/state/ledger.h"

namespace gateway {
namespace {

using namespace std::chrono;

core::WallTime at(int y, unsigned mo, unsigned d, int h = 0, int mi = 0, int s = 0) {
  sys_days day = year_month_day{year(y), month(mo), std::chrono::day(d)};
  return core::WallTime(duration_cast<system_clock::duration>(day.time_since_epoch() + hours(h) + minutes(mi) + seconds(s)));
}

Tenant tenant(std::string name = "acme") {
  Tenant t;
  t.name = std::move(name);
  return t;
}

TEST(LimitsTime, CalendarHelpers) {
  EXPECT_EQ(iso8601(at(2026, 11, 24, 13, 5, 9)), "2026-11-24T13:05:09Z");
  EXPECT_EQ(iso8601(day_start(utc_day(at(2026, 11, 24, 23, 59, 59)) + 1)), "2026-11-25T00:00:00Z");
  EXPECT_EQ(iso8601(month_start(utc_month(at(2026, 12, 31, 23)) + 1)), "2027-01-01T00:00:00Z");
  EXPECT_EQ(iso8601(month_start(utc_month(at(2024, 2, 29)))), "2024-02-01T00:00:00Z");
  EXPECT_EQ(unix_second(at(1970, 1, 1, 0, 1, 5) + milliseconds(999)), 65);
  EXPECT_EQ(format_dollars(core::Money::from_usd(5)), "$5.00");
  EXPECT_EQ(format_dollars(core::Money::from_usd(5.0012)), "$5.0012");
  EXPECT_EQ(format_dollars(core::Money::from_usd(0.25)), "$0.25");
}

TEST(LocalLimits, DailyBudgetRefusalSaysWhichAndWhen) {
  Tenant t = tenant();
  t.budget.daily = core::Money::from_usd(5);
  TenantDirectory dir;
  LocalLimitStore s(dir);
  auto now = at(2026, 11, 24, 18);
  auto r = s.reserve(t, core::Money::from_usd(4), 100, now);
  ASSERT_TRUE(r.ok());
  s.reconcile(*r, core::Money::from_usd(5.0012), 90, now);
  auto refused = s.reserve(t, core::Money::from_usd(0.01), 100, now);
  ASSERT_FALSE(refused.ok());
  const auto& e = refused.error();
  EXPECT_EQ(e.kind, core::ErrorKind::rate_limited);
  EXPECT_EQ(e.http_status(), 429);
  EXPECT_FALSE(e.retryable()) << "a tenant's budget is not a reason to try another deployment";
  EXPECT_EQ(e.code, "budget_exceeded");
  EXPECT_EQ(e.message,
            "daily budget of $5.00 for tenant 'acme' is exhausted ($5.0012 spent); resets at 2026-11-25T00:00:00Z");
  EXPECT_EQ(e.retry_after, hours(6));
  // Next UTC day: allowed again.
  EXPECT_TRUE(s.reserve(t, core::Money::from_usd(0.01), 100, at(2026, 11, 25, 0, 0, 1)).ok());
}

TEST(LocalLimits, BudgetCountsInFlightReservations) {
  Tenant t = tenant();
  t.budget.monthly = core::Money::from_usd(1);
  LocalLimitStore s{TenantDirectory{}};
  auto now = at(2026, 12, 10);
  auto a = s.reserve(t, core::Money::from_usd(0.6), 0, now);
  ASSERT_TRUE(a.ok());
  auto b = s.reserve(t, core::Money::from_usd(0.6), 0, now);
  ASSERT_FALSE(b.ok());
  EXPECT_EQ(b.error().message,
            "monthly budget of $1.00 for tenant 'acme' cannot cover this request ($0.00 spent, $0.60 reserved by "
            "requests in flight, this request may cost up to $0.60); resets at 2027-01-01T00:00:00Z");
  s.reconcile(*a, core::Money::from_usd(0.1), 0, now);  // the real cost was lower
  EXPECT_TRUE(s.reserve(t, core::Money::from_usd(0.6), 0, now).ok());
}

TEST(LocalLimits, SoftBudgetNeverRefusesButReports) {
  Tenant t = tenant();
  t.budget.daily = core::Money::from_usd(1);
  t.budget.hard = false;
  TenantDirectory dir;
  LocalLimitStore s(dir);
  auto now = at(2026, 11, 24, 12);
  for (int i = 0; i < 3; ++i) {
    auto r = s.reserve(t, core::Money::from_usd(1), 0, now);
    ASSERT_TRUE(r.ok());
    s.reconcile(*r, core::Money::from_usd(0.75), 0, now);
  }
  auto b = s.budgets(now);
  ASSERT_EQ(b.size(), 1u);
  EXPECT_EQ(b[0].tenant, "acme");
  EXPECT_EQ(b[0].period, "daily");
  EXPECT_FALSE(b[0].hard);
  EXPECT_EQ(b[0].spent, core::Money::from_usd(2.25));
  EXPECT_EQ(b[0].remaining, core::Money::from_usd(-1.25));
  EXPECT_EQ(s.budgets(at(2026, 11, 25, 1))[0].spent.pico, 0);  // new day
}

TEST(LocalLimits, RpmSlidingWindow) {
  Tenant t = tenant();
  t.limits.rpm = 3;
  LocalLimitStore s{TenantDirectory{}};
  auto now = at(2026, 1, 1, 10, 0, 15);
  for (int i = 0; i < 3; ++i) {
    auto r = s.reserve(t, {}, 0, now);
    ASSERT_TRUE(r.ok());
    s.release(*r);  // a failed attempt still counts as a request
  }
  auto refused = s.reserve(t, {}, 0, now);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code, "rate_limit_rpm");
  // Second 10:00:15 leaves the window (the current second and the 60 before it) at 10:01:16.
  EXPECT_EQ(refused.error().message, "rate limit of 3 requests per minute for tenant 'acme' reached; retry in 61 s");
  EXPECT_EQ(refused.error().retry_after, seconds(61));
  EXPECT_FALSE(s.reserve(t, {}, 0, at(2026, 1, 1, 10, 1, 0)).ok()) << "a new UTC minute is no reset";
  EXPECT_FALSE(s.reserve(t, {}, 0, at(2026, 1, 1, 10, 1, 15) + milliseconds(999)).ok());
  EXPECT_TRUE(s.reserve(t, {}, 0, at(2026, 1, 1, 10, 1, 16)).ok());
}

// The attack fixed windows allowed: L requests just before a minute boundary, L more just after.
TEST(LocalLimits, BurstAcrossAMinuteBoundaryIsRefused) {
  Tenant t = tenant();
  t.limits.rpm = 10;
  t.limits.tpm = 1000;
  LocalLimitStore s{TenantDirectory{}};
  auto minute = at(2026, 1, 1, 10, 0, 0);
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(s.reserve(t, {}, 100, minute + milliseconds(59900)).ok());
  for (int i = 0; i < 10; ++i) {
    auto r = s.reserve(t, {}, 1, minute + milliseconds(60100));
    ASSERT_FALSE(r.ok()) << "request " << i << " of the second burst was admitted";
    EXPECT_EQ(r.error().code, "rate_limit_rpm");
    // The first burst (second 59) leaves the window at second 120: 59.9 s from now.
    EXPECT_EQ(r.error().retry_after, milliseconds(59900));
  }
  // Admissions resume exactly when the first burst ages out, and exactly L of them.
  EXPECT_FALSE(s.reserve(t, {}, 1, minute + milliseconds(119999)).ok());
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(s.reserve(t, {}, 100, minute + seconds(120)).ok()) << i;
  auto r = s.reserve(t, {}, 1, minute + seconds(120));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, "rate_limit_rpm");
}

TEST(LocalLimits, TpmBurstAcrossAMinuteBoundaryIsRefused) {
  Tenant t = tenant();
  t.limits.tpm = 1000;
  LocalLimitStore s{TenantDirectory{}};
  auto minute = at(2026, 1, 1, 10, 0, 0);
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(s.reserve(t, {}, 250, minute + milliseconds(59900)).ok());
  auto r = s.reserve(t, {}, 250, minute + milliseconds(60100));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, "rate_limit_tpm");
  EXPECT_EQ(r.error().retry_after, milliseconds(59900));
  EXPECT_EQ(r.error().message, "rate limit of 1000 tokens per minute for tenant 'acme' reached; retry in 60 s");
  EXPECT_TRUE(s.reserve(t, {}, 1000, minute + seconds(120)).ok());
}

// The wait is until just enough of the oldest buckets leave, not until the window empties.
TEST(LocalLimits, RetryAfterIsTheRealWait) {
  Tenant t = tenant();
  t.limits.tpm = 1000;
  LocalLimitStore s{TenantDirectory{}};
  auto t0 = at(2026, 1, 1, 10, 0, 0);
  ASSERT_TRUE(s.reserve(t, {}, 300, t0).ok());
  ASSERT_TRUE(s.reserve(t, {}, 300, t0 + seconds(10)).ok());
  ASSERT_TRUE(s.reserve(t, {}, 300, t0 + seconds(20)).ok());
  // 900 + 500 > 1000: 400 must leave. Second 0 (300) is not enough; second 10 leaves at 71.
  auto r = s.reserve(t, {}, 500, t0 + milliseconds(30250));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, "rate_limit_tpm");
  EXPECT_EQ(r.error().retry_after, milliseconds(40750));
  EXPECT_EQ(r.error().message, "rate limit of 1000 tokens per minute for tenant 'acme' reached; retry in 41 s");
  // A smaller request only waits for second 0.
  auto small = s.reserve(t, {}, 200, t0 + milliseconds(30250));
  ASSERT_FALSE(small.ok());
  EXPECT_EQ(small.error().retry_after, milliseconds(30750));
  EXPECT_FALSE(s.reserve(t, {}, 500, t0 + milliseconds(70999)).ok());
  EXPECT_TRUE(s.reserve(t, {}, 500, t0 + seconds(71)).ok());
}

TEST(LocalLimits, ReconcileAdjustsTheReservationsOwnBucket) {
  Tenant t = tenant();
  t.limits.tpm = 1000;
  LocalLimitStore s{TenantDirectory{}};
  auto t0 = at(2026, 1, 1, 10, 0, 0);
  auto a = s.reserve(t, {}, 800, t0);
  ASSERT_TRUE(a.ok());
  ASSERT_TRUE(s.reserve(t, {}, 100, t0 + seconds(30)).ok());
  s.reconcile(*a, {}, 100, t0 + seconds(40));  // second 0 now holds 100, not 800
  // 100 + 100 + 750; had the delta gone to the current second, second 0 would still hold 800.
  EXPECT_TRUE(s.reserve(t, {}, 750, t0 + seconds(40)).ok());
  auto r = s.reserve(t, {}, 100, t0 + seconds(40));
  ASSERT_FALSE(r.ok());
  // 50 too many: second 0's 100 leaving (at 61) is enough.
  EXPECT_EQ(r.error().retry_after, seconds(21));
  // At 61 s second 0 has left: 100 (s30) + 750 (s40) remain, so 150 fits and 151 does not.
  EXPECT_FALSE(s.reserve(t, {}, 151, t0 + seconds(61)).ok());
  EXPECT_TRUE(s.reserve(t, {}, 150, t0 + seconds(61)).ok());
}

TEST(LocalLimits, ReconcileAfterTheBucketLeftTheWindowChangesNothing) {
  Tenant t = tenant();
  t.limits.tpm = 1000;
  LocalLimitStore s{TenantDirectory{}};
  auto t0 = at(2026, 1, 1, 10, 0, 0);
  auto a = s.reserve(t, {}, 100, t0);
  ASSERT_TRUE(a.ok());
  // A long stream: it ends after its bucket has aged out, having used more than reserved.
  s.reconcile(*a, {}, 900, t0 + seconds(70));
  EXPECT_TRUE(s.reserve(t, {}, 1000, t0 + seconds(70)).ok());
  // Release of a reservation in the window frees its tokens there (its request still counts).
  Tenant u = tenant("beta");
  u.limits.tpm = 1000;
  u.limits.rpm = 2;
  auto b = s.reserve(u, {}, 1000, t0);
  ASSERT_TRUE(b.ok());
  EXPECT_FALSE(s.reserve(u, {}, 1, t0 + seconds(1)).ok());
  s.release(*b);
  EXPECT_TRUE(s.reserve(u, {}, 1000, t0 + seconds(1)).ok());
  auto rpm = s.reserve(u, {}, 0, t0 + seconds(1));
  ASSERT_FALSE(rpm.ok());
  EXPECT_EQ(rpm.error().code, "rate_limit_rpm");
}

TEST(LocalLimits, ClockSteppedBackStillCountsLaterBuckets) {
  Tenant t = tenant();
  t.limits.rpm = 2;
  LocalLimitStore s{TenantDirectory{}};
  auto t0 = at(2026, 1, 1, 10, 0, 0);
  ASSERT_TRUE(s.reserve(t, {}, 0, t0 + seconds(100)).ok());
  ASSERT_TRUE(s.reserve(t, {}, 0, t0 + seconds(40)).ok());  // clock 60 s back: second 100 still counts
  auto r = s.reserve(t, {}, 0, t0 + seconds(40));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().retry_after, seconds(61));  // second 40 leaves at 101
  // Back by more than the window onto a slot in use: the count joins the later label (it stays
  // counted longer, never shorter).
  Tenant g = tenant("gamma");
  g.limits.rpm = 2;
  ASSERT_TRUE(s.reserve(g, {}, 0, t0 + seconds(161)).ok());
  ASSERT_TRUE(s.reserve(g, {}, 0, t0 + seconds(100)).ok());  // 100 % 61 == 161 % 61
  auto back = s.reserve(g, {}, 0, t0 + seconds(100));
  ASSERT_FALSE(back.ok());
  EXPECT_EQ(back.error().retry_after, seconds(122)) << "both leave with second 161, at 222";
}

TEST(RateWindowTest, MemoryIsBoundedAndSumsTheLast61Seconds) {
  RateWindow w;
  for (int64_t sec = 0; sec < 10000; ++sec) w.add(sec, 1);
  EXPECT_EQ(w.sum(9999), 61);
  EXPECT_EQ(w.buckets(9999).size(), 61u);
  EXPECT_EQ(w.sum(10000), 60);
  EXPECT_EQ(w.sum(10060), 0);
  static_assert(sizeof(RateWindow) <= 2 * kWindowBuckets * sizeof(int64_t));
}

TEST(LocalLimits, TpmReconciledToActual) {
  Tenant t = tenant();
  t.limits.tpm = 1000;
  LocalLimitStore s{TenantDirectory{}};
  auto now = at(2026, 1, 1, 10);
  auto a = s.reserve(t, {}, 800, now);
  ASSERT_TRUE(a.ok());
  auto b = s.reserve(t, {}, 300, now);
  ASSERT_FALSE(b.ok());
  EXPECT_EQ(b.error().code, "rate_limit_tpm");
  s.reconcile(*a, {}, 100, now);  // used far fewer than the worst case
  EXPECT_TRUE(s.reserve(t, {}, 300, now).ok());
  // A request bigger than the whole limit can never fit: refused even in an empty window, with no
  // retry time (waiting does not help), and it takes nothing from the window.
  auto never = s.reserve(t, {}, 5000, at(2026, 1, 1, 10, 5));
  ASSERT_FALSE(never.ok());
  EXPECT_EQ(never.error().code, "request_exceeds_tpm");
  EXPECT_EQ(never.error().kind, core::ErrorKind::rate_limited);
  EXPECT_EQ(never.error().retry_after.count(), 0);
  EXPECT_NE(never.error().message.find("can never fit the rate limit of 1000 tokens per minute"), std::string::npos)
      << never.error().message;
  EXPECT_TRUE(s.reserve(t, {}, 1000, at(2026, 1, 1, 10, 5)).ok());  // exactly the limit fits
}

TEST(LocalLimits, ConcurrencyReleasedOnFailure) {
  Tenant t = tenant();
  t.limits.concurrency = 2;
  LocalLimitStore s{TenantDirectory{}};
  auto now = at(2026, 1, 1);
  auto a = s.reserve(t, {}, 0, now);
  auto b = s.reserve(t, {}, 0, now);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_TRUE(a->counted_concurrency);
  auto c = s.reserve(t, {}, 0, now);
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.error().code, "concurrency_limit");
  s.release(*a);
  auto d = s.reserve(t, {}, 0, now);
  ASSERT_TRUE(d.ok());
  s.reconcile(*b, {}, 0, now);
  s.reconcile(*d, {}, 0, now);
  EXPECT_TRUE(s.reserve(t, {}, 0, now).ok());
}

TEST(LocalLimits, ExactUnderConcurrentThreads) {
  Tenant t = tenant();
  t.limits.rpm = 1000;
  t.budget.daily = core::Money::from_usd(3);  // 300 requests at $0.01
  LocalLimitStore s{TenantDirectory{}};
  auto now = at(2026, 1, 1, 12);
  std::atomic<int> ok{0};
  std::vector<std::thread> th;
  for (int i = 0; i < 8; ++i)
    th.emplace_back([&] {
      for (int j = 0; j < 200; ++j) {
        auto r = s.reserve(t, core::Money::from_usd(0.01), 10, now);
        if (!r.ok()) continue;
        ++ok;
        s.reconcile(*r, core::Money::from_usd(0.01), 10, now);
      }
    });
  for (auto& x : th) x.join();
  EXPECT_EQ(ok.load(), 300);
  EXPECT_EQ(s.budgets(now)[0].spent, core::Money::from_usd(3));
}

TEST(LocalLimits, SeededFromLedgerAfterRestart) {
  auto dir = std::filesystem::temp_directory_path() / ("gw-limits-seed-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  auto now = at(2026, 11, 24, 15);
  auto ms = [](core::WallTime t) { return duration_cast<milliseconds>(t.time_since_epoch()).count(); };
  {
    auto l = Ledger::open((dir / "l.db").string());
    ASSERT_TRUE(l.ok()) << l.error().message;
    LedgerEntry e;
    e.tenant = "acme";
    e.status = "ok";
    e.request_id = "yesterday";
    e.ts_ms = ms(at(2026, 11, 23, 23));
    e.cost = core::Money::from_usd(2);
    (*l)->append(e, {});
    e.request_id = "today";
    e.ts_ms = ms(at(2026, 11, 24, 1));
    e.cost = core::Money::from_usd(4.5);
    (*l)->append(e, {});
    e.request_id = "last-month";
    e.ts_ms = ms(at(2026, 10, 31, 1));
    e.cost = core::Money::from_usd(50);
    (*l)->append(e, {});
    (*l)->flush();

    auto tenants = TenantDirectory::from_yaml(
        YAML::Load("tenants: {acme: {budget: {daily_usd: 5, monthly_usd: 10}}}")["tenants"], "gw.yaml");
    ASSERT_TRUE(tenants.ok()) << tenants.error().message;
    LocalLimitStore s(*tenants);
    s.seed_from_ledger(**l, now);
    auto b = s.budgets(now);
    ASSERT_EQ(b.size(), 2u);
    EXPECT_EQ(b[0].spent, core::Money::from_usd(4.5));   // today only
    EXPECT_EQ(b[1].spent, core::Money::from_usd(6.5));   // this month: yesterday + today
    const Tenant* t = tenants->find("acme");
    EXPECT_TRUE(s.reserve(*t, core::Money::from_usd(0.5), 0, now).ok());
    auto refused = s.reserve(*t, core::Money::from_usd(0.01), 0, now);
    ASSERT_FALSE(refused.ok());
    EXPECT_NE(refused.error().message.find("daily budget of $5.00"), std::string::npos);
  }
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace gateway
