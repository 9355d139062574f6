#include "gateway/limits_redis.h"

#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <atomic>
#include <thread>

#include "redis_server.h"

namespace gateway {
namespace {

using namespace std::chrono;
using gateway::testing::RedisServer;

core::WallTime at(int y, unsigned mo, unsigned d, int h = 0, int mi = 0, int s = 0) {
  sys_days day = year_month_day{year(y), month(mo), std::chrono::day(d)};
  return core::WallTime(duration_cast<system_clock::duration>(day.time_since_epoch() + hours(h) + minutes(mi) + seconds(s)));
}

class RedisLimits : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!RedisServer::available()) GTEST_SKIP() << "redis-server not installed";
    ASSERT_TRUE(redis_.start()) << "redis-server did not come up on port " << redis_.port();
  }
  // One "replica": its own connection pool and store, sharing only Redis with the others.
  std::unique_ptr<RedisLimitStore> replica(FailMode mode = FailMode::open, const TenantDirectory& dir = {}) {
    RedisLimitOptions o;
    o.fail_mode = mode;
    o.replay_interval = milliseconds(50);
    o.key_prefix = "gwtest:";
    return std::make_unique<RedisLimitStore>(std::make_shared<RedisClient>(redis_.options()), dir, o);
  }
  RedisServer redis_;
};

// Two replicas x 4 threads each hammer one tenant; the shared limits hold exactly.
TEST_F(RedisLimits, ReplicasShareRpmExactly) {
  auto a = replica(), b = replica();
  Tenant t;
  t.name = "acme";
  t.limits.rpm = 150;
  auto now = at(2026, 11, 24, 12, 0, 30);
  std::atomic<int> ok{0}, refused{0};
  std::vector<std::thread> th;
  for (int i = 0; i < 8; ++i)
    th.emplace_back([&, i] {
      RedisLimitStore& s = i % 2 ? *a : *b;
      for (int j = 0; j < 50; ++j) {
        auto r = s.reserve(t, {}, 10, now);
        if (!r.ok()) {
          EXPECT_EQ(r.error().code, "rate_limit_rpm");
          ++refused;
          continue;
        }
        EXPECT_TRUE(r->counted);
        ++ok;
        s.reconcile(*r, {}, 10, now);
      }
    });
  for (auto& x : th) x.join();
  EXPECT_EQ(ok.load(), 150);  // margin: none
  EXPECT_EQ(refused.load(), 250);
  auto r = a->reserve(t, {}, 1, now);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message, "rate limit of 150 requests per minute for tenant 'acme' reached; retry in 30 s");
  EXPECT_TRUE(b->reserve(t, {}, 1, at(2026, 11, 24, 12, 1, 0)).ok());  // next window
}

TEST_F(RedisLimits, ReplicasShareBudgetExactly) {
  auto dir = TenantDirectory::from_yaml(
      YAML::Load("tenants: {acme: {budget: {daily_usd: 1, monthly_usd: 50}}}")["tenants"], "gw.yaml");
  ASSERT_TRUE(dir.ok()) << dir.error().message;
  auto a = replica(FailMode::open, *dir), b = replica(FailMode::open, *dir);
  const Tenant& t = *dir->find("acme");
  auto now = at(2026, 11, 24, 18);
  std::atomic<int> ok{0};
  std::vector<std::thread> th;
  for (int i = 0; i < 8; ++i)
    th.emplace_back([&, i] {
      RedisLimitStore& s = i % 2 ? *a : *b;
      for (int j = 0; j < 30; ++j) {
        // Worst case $0.02, actual $0.01: reservations in flight count against the budget.
        auto r = s.reserve(t, core::Money::from_usd(0.02), 0, now);
        if (!r.ok()) {
          EXPECT_EQ(r.error().code, "budget_exceeded");
          continue;
        }
        ++ok;
        s.reconcile(*r, core::Money::from_usd(0.01), 0, now);
      }
    });
  for (auto& x : th) x.join();
  // Sequentially this is exactly 99 ($0.99 spent + $0.02 > $1); concurrent reservations can only
  // refuse earlier (worst cases in flight), never admit more: spend never exceeds the budget.
  EXPECT_GE(ok.load(), 90);
  EXPECT_LE(ok.load(), 99);
  for (auto* s : {a.get(), b.get()}) {
    auto st = s->budgets(now);
    ASSERT_EQ(st.size(), 2u);
    EXPECT_EQ(st[0].period, "daily");
    EXPECT_EQ(st[0].spent.pico, ok.load() * core::Money::from_usd(0.01).pico);
    EXPECT_EQ(st[0].reserved.pico, 0);
    EXPECT_EQ(st[1].period, "monthly");
    EXPECT_EQ(st[1].spent, st[0].spent);
  }
  // Fill it to exactly $1.00 then see the message.
  while (true) {
    auto r = a->reserve(t, core::Money::from_usd(0.01), 0, now);
    if (!r.ok()) break;
    a->reconcile(*r, core::Money::from_usd(0.01), 0, now);
  }
  auto r = b->reserve(t, core::Money::from_usd(0.01), 0, now);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message,
            "daily budget of $1.00 for tenant 'acme' is exhausted ($1.00 spent); resets at 2026-11-25T00:00:00Z");
  EXPECT_EQ(r.error().retry_after, hours(6));
  EXPECT_TRUE(b->reserve(t, core::Money::from_usd(0.01), 0, at(2026, 11, 25, 0, 0, 1)).ok());
}

TEST_F(RedisLimits, ConcurrencyAcrossReplicasWithLeases) {
  auto a = replica(), b = replica();
  Tenant t;
  t.name = "acme";
  t.limits.concurrency = 3;
  auto now = at(2026, 11, 24, 12);
  auto r1 = a->reserve(t, {}, 0, now), r2 = b->reserve(t, {}, 0, now), r3 = a->reserve(t, {}, 0, now);
  ASSERT_TRUE(r1.ok() && r2.ok() && r3.ok());
  auto r4 = b->reserve(t, {}, 0, now);
  ASSERT_FALSE(r4.ok());
  EXPECT_EQ(r4.error().code, "concurrency_limit");
  b->release(*r2);
  ASSERT_TRUE(a->reserve(t, {}, 0, now).ok());
  // A replica that died holding slots: its leases expire after the lease time (15 min).
  EXPECT_FALSE(a->reserve(t, {}, 0, now + minutes(14)).ok());
  EXPECT_TRUE(a->reserve(t, {}, 0, now + minutes(16)).ok());
}

TEST_F(RedisLimits, ScriptsReloadAfterScriptFlush) {
  auto a = replica();
  Tenant t;
  t.name = "acme";
  t.limits.rpm = 10;
  ASSERT_TRUE(a->reserve(t, {}, 0, at(2026, 1, 1)).ok());
  RedisClient admin(redis_.options());
  ASSERT_TRUE(admin.command({"SCRIPT", "FLUSH"}).ok());
  auto r = a->reserve(t, {}, 0, at(2026, 1, 1));
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->counted);
  auto n = admin.command({"GET", "gwtest:{acme}:rpm:" + std::to_string(utc_minute(at(2026, 1, 1)))});
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(n->str, "2");
}

TEST_F(RedisLimits, FailOpenThenRecoversByItself) {
  auto dir = TenantDirectory::from_yaml(
      YAML::Load("tenants: {acme: {budget: {daily_usd: 1}, limits: {rpm: 1000}}}")["tenants"], "gw.yaml");
  ASSERT_TRUE(dir.ok());
  auto a = replica(FailMode::open, *dir);
  const Tenant& t = *dir->find("acme");
  auto now = at(2026, 11, 24, 12);
  auto before = a->reserve(t, core::Money::from_usd(0.1), 0, now);
  ASSERT_TRUE(before.ok());
  ASSERT_TRUE(before->counted);

  redis_.stop();
  for (int i = 0; i < 20; ++i) {
    auto t0 = steady_clock::now();
    auto r = a->reserve(t, core::Money::from_usd(0.1), 0, now);
    EXPECT_LT(steady_clock::now() - t0, milliseconds(700)) << "every call is bounded";
    ASSERT_TRUE(r.ok()) << r.error().message;
    EXPECT_FALSE(r->counted);
    a->reconcile(*r, core::Money::from_usd(0.01), 0, now);  // queued for when Redis is back
  }
  a->reconcile(*before, core::Money::from_usd(0.05), 0, now);
  EXPECT_EQ(a->fail_open_total(), 20u);
  EXPECT_EQ(a->pending_reconciles(), 21u);

  ASSERT_TRUE(redis_.start());  // same port, empty data set
  auto deadline = steady_clock::now() + seconds(5);
  bool counted = false;
  while (!counted && steady_clock::now() < deadline) {
    auto r = a->reserve(t, {}, 0, now);
    counted = r.ok() && r->counted;
    if (r.ok()) a->release(*r);
    if (!counted) std::this_thread::sleep_for(milliseconds(50));
  }
  EXPECT_TRUE(counted) << "did not recover within 5 s";
  EXPECT_TRUE(a->flush_pending(seconds(5)));
  // Spend during the outage reached the shared budget once Redis was back (Redis restarted empty).
  auto st = a->budgets(now);
  ASSERT_EQ(st.size(), 1u);
  EXPECT_EQ(st[0].spent, core::Money::from_usd(0.25));
}

TEST_F(RedisLimits, FailClosedRefusesThenRecovers) {
  auto a = replica(FailMode::closed);
  Tenant t;
  t.name = "acme";
  t.limits.rpm = 10;
  auto now = at(2026, 11, 24, 12);
  ASSERT_TRUE(a->reserve(t, {}, 0, now).ok());
  redis_.stop();
  auto r = a->reserve(t, {}, 0, now);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().kind, core::ErrorKind::unavailable);
  EXPECT_EQ(r.error().http_status(), 503);
  EXPECT_EQ(r.error().code, "limits_unavailable");
  EXPECT_NE(r.error().message.find("fail closed"), std::string::npos) << r.error().message;
  EXPECT_EQ(a->fail_closed_total(), 1u);
  ASSERT_TRUE(redis_.start());
  auto deadline = steady_clock::now() + seconds(5);
  bool back = false;
  while (!back && steady_clock::now() < deadline) {
    back = a->reserve(t, {}, 0, now).ok();
    if (!back) std::this_thread::sleep_for(milliseconds(50));
  }
  EXPECT_TRUE(back);
}

TEST_F(RedisLimits, ReplayedSettleCountsOnce) {
  auto dir = TenantDirectory::from_yaml(YAML::Load("tenants: {acme: {budget: {daily_usd: 1}}}")["tenants"], "gw.yaml");
  ASSERT_TRUE(dir.ok());
  auto a = replica(FailMode::open, *dir);
  const Tenant& t = *dir->find("acme");
  auto now = at(2026, 11, 24, 12);
  auto r = a->reserve(t, core::Money::from_usd(0.1), 0, now);
  ASSERT_TRUE(r.ok());
  a->reconcile(*r, core::Money::from_usd(0.03), 0, now);
  a->reconcile(*r, core::Money::from_usd(0.03), 0, now);  // as if the reply was lost and it was replayed
  a->release(*r);
  EXPECT_EQ(a->budgets(now)[0].spent, core::Money::from_usd(0.03));
  EXPECT_EQ(a->budgets(now)[0].reserved.pico, 0);
}

}  // namespace
}  // namespace gateway
