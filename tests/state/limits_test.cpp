#include "gateway/limits.h"

#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <thread>

#include "gateway/ledger.h"

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
  EXPECT_EQ(iso8601(minute_start(utc_minute(at(2026, 1, 1, 10, 30, 59)) + 1)), "2026-01-01T10:31:00Z");
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

TEST(LocalLimits, RpmFixedWindow) {
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
  EXPECT_EQ(refused.error().message, "rate limit of 3 requests per minute for tenant 'acme' reached; retry in 45 s");
  EXPECT_EQ(refused.error().retry_after, seconds(45));
  EXPECT_TRUE(s.reserve(t, {}, 0, at(2026, 1, 1, 10, 1, 0)).ok());
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
