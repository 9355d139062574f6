#include "gateway/state/limits_redis.h"

#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <atomic>
#include <map>
#include <random>
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
  // Sliding window: second 12:00:30 leaves it at 12:01:31, not at the next UTC minute.
  EXPECT_EQ(r.error().message, "rate limit of 150 requests per minute for tenant 'acme' reached; retry in 61 s");
  EXPECT_FALSE(b->reserve(t, {}, 1, at(2026, 11, 24, 12, 1, 0)).ok());
  EXPECT_TRUE(b->reserve(t, {}, 1, at(2026, 11, 24, 12, 1, 31)).ok());
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
  auto n = admin.command({"HGET", "gwtest:{acme}:win", "r" + std::to_string(unix_second(at(2026, 1, 1)))});
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

// The attack fixed windows allowed, across two replicas: L just before a minute boundary, L just after.
TEST_F(RedisLimits, BurstAcrossAMinuteBoundaryIsRefused) {
  auto a = replica(), b = replica();
  Tenant t;
  t.name = "acme";
  t.limits.rpm = 10;
  auto minute = at(2026, 11, 24, 12, 0, 0);
  for (int i = 0; i < 10; ++i) ASSERT_TRUE((i % 2 ? *a : *b).reserve(t, {}, 0, minute + milliseconds(59900)).ok());
  for (int i = 0; i < 10; ++i) {
    auto r = (i % 2 ? *b : *a).reserve(t, {}, 0, minute + milliseconds(60100));
    ASSERT_FALSE(r.ok()) << "request " << i << " of the second burst was admitted";
    EXPECT_EQ(r.error().code, "rate_limit_rpm");
    EXPECT_EQ(r.error().retry_after, milliseconds(59900));
  }
  EXPECT_FALSE(a->reserve(t, {}, 0, minute + milliseconds(119999)).ok());
  for (int i = 0; i < 10; ++i) ASSERT_TRUE((i % 2 ? *a : *b).reserve(t, {}, 0, minute + seconds(120)).ok()) << i;
  EXPECT_FALSE(b->reserve(t, {}, 0, minute + seconds(120)).ok());
}

// The same random sequence of (time, tokens) events through the local store and through Redis:
// the same verdicts, codes, waits and messages, event by event.
TEST_F(RedisLimits, SameVerdictsAsTheLocalStore) {
  auto redis = replica();
  LocalLimitStore local{TenantDirectory{}};
  Tenant t;
  t.name = "acme";
  t.limits.rpm = 25;
  t.limits.tpm = 5000;
  std::mt19937_64 rng(20261202);  // fixed: a failure reproduces
  auto now = at(2026, 11, 24, 12, 0, 0);
  struct Held {
    Reservation local, redis;
  };
  std::vector<Held> held;
  int admitted = 0, refused_rpm = 0, refused_tpm = 0, never = 0;
  for (int i = 0; i < 3000; ++i) {
    // Mostly dense traffic, now and then a pause long enough for the window to drain.
    uint64_t dice = rng() % 100;
    now += milliseconds(dice < 97 ? rng() % 1500 : 20000 + rng() % 60000);
    if (!held.empty() && rng() % 3 == 0) {
      size_t k = rng() % held.size();
      Held h = held[k];
      held.erase(held.begin() + static_cast<ptrdiff_t>(k));
      if (rng() % 4 == 0) {
        local.release(h.local);
        redis->release(h.redis);
      } else {
        int64_t actual = static_cast<int64_t>(rng() % static_cast<uint64_t>(h.local.reserved_tokens + 200));
        local.reconcile(h.local, {}, actual, now);
        redis->reconcile(h.redis, {}, actual, now);
      }
      continue;
    }
    // Small requests reach the rpm limit first, large ones the tpm limit; a few can never fit.
    int64_t tokens = static_cast<int64_t>(rng() % (rng() % 10 < 7 ? 100 : 1800)) + (rng() % 50 == 0 ? 5000 : 0);
    auto l = local.reserve(t, {}, tokens, now);
    auto r = redis->reserve(t, {}, tokens, now);
    ASSERT_EQ(l.ok(), r.ok()) << "event " << i << ": local " << (l.ok() ? "ok" : l.error().message) << ", redis "
                              << (r.ok() ? "ok" : r.error().message);
    if (l.ok()) {
      ASSERT_TRUE(r->counted);
      EXPECT_EQ(l->second, r->second);
      held.push_back({*l, *r});
      ++admitted;
      continue;
    }
    EXPECT_EQ(l.error().code, r.error().code) << "event " << i;
    EXPECT_EQ(l.error().retry_after, r.error().retry_after) << "event " << i;
    EXPECT_EQ(l.error().message, r.error().message) << "event " << i;
    if (l.error().code == "rate_limit_rpm") ++refused_rpm;
    if (l.error().code == "rate_limit_tpm") ++refused_tpm;
    if (l.error().code == "request_exceeds_tpm") ++never;
  }
  std::printf("# property: admitted %d, refused rpm %d, tpm %d, never fits %d\n", admitted, refused_rpm, refused_tpm, never);
  // The sequence exercised every verdict (else it would prove little).
  EXPECT_GT(admitted, 300);
  EXPECT_GT(refused_rpm, 20);
  EXPECT_GT(refused_tpm, 20);
  EXPECT_GT(never, 5);
  // Redis memory stays bounded: the hash holds only the window's fields.
  RedisClient admin(redis_.options());
  auto len = admin.command({"HLEN", "gwtest:{acme}:win"});
  ASSERT_TRUE(len.ok());
  EXPECT_LE(len->integer, 2 * kWindowBuckets + 3);  // + the sums R, T and the pruned-through second P
  auto ttl = admin.command({"TTL", "gwtest:{acme}:win"});
  ASSERT_TRUE(ttl.ok());
  EXPECT_GT(ttl->integer, 0);
  EXPECT_LE(ttl->integer, 120);
}

TEST_F(RedisLimits, ReconcileAdjustsTheReservationsOwnBucket) {
  auto a = replica();
  Tenant t;
  t.name = "acme";
  t.limits.tpm = 1000;
  auto t0 = at(2026, 11, 24, 12, 0, 0);
  auto r = a->reserve(t, {}, 800, t0);
  ASSERT_TRUE(r.ok());
  ASSERT_TRUE(a->reserve(t, {}, 100, t0 + seconds(30)).ok());
  a->reconcile(*r, {}, 100, t0 + seconds(40));
  RedisClient admin(redis_.options());
  auto v = admin.command({"HGET", "gwtest:{acme}:win", "t" + std::to_string(unix_second(t0))});
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(v->str, "100");
  EXPECT_TRUE(a->reserve(t, {}, 750, t0 + seconds(40)).ok());
  auto refused = a->reserve(t, {}, 100, t0 + seconds(40));
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code, "rate_limit_tpm");
  EXPECT_EQ(refused.error().retry_after, seconds(21));
  EXPECT_FALSE(a->reserve(t, {}, 151, t0 + seconds(61)).ok());
  EXPECT_TRUE(a->reserve(t, {}, 150, t0 + seconds(61)).ok());
}

}  // namespace
}  // namespace gateway
