// Fleet-wide share caps (gateway/state/share_sync.h) against a real redis-server: two routers, as
// two replicas would be, sharing one Redis; the field encoding; Redis lost and back.
#include <gtest/gtest.h>

#include "gateway/state/redis_client.h"
#include "gateway/state/share_sync.h"
#include "redis_server.h"
#include "tests/routing/test_util.h"

namespace gateway {
namespace {

using gateway::testing::RedisServer;
using routing::ShareKind;

const char* kPolicy = R"(catalog:
  - {ref: va/m, context_window: 100000, price: {input: 1, output: 1}}
  - {ref: vb/m, context_window: 100000, price: {input: 2, output: 2}}
  - {ref: vc/m, context_window: 100000, price: {input: 3, output: 3}}
routes:
  - name: r
    match: {model: m}
    max_share: {vendor: 0.5, window: 10m, min_requests: 1}
    candidates: [va/m, vb/m, vc/m]
)";

std::vector<routing::ProviderInstance> vendors() {
  std::vector<routing::ProviderInstance> p;
  for (const char* n : {"va", "vb", "vc"}) p.push_back({n, "openai_compatible", {}, true, "", {"m"}});
  return p;
}

// One replica: a router and its sync (not started: the test runs each round).
struct Replica {
  std::shared_ptr<routing::PolicyRouter> router;
  std::unique_ptr<ShareSync> sync;
  Replica(std::shared_ptr<RedisClient> redis, const std::string& prefix) {
    router = std::make_shared<routing::PolicyRouter>(routing::test::must_compile(kPolicy, vendors()),
                                                     routing::PolicyRouterOptions{});
    ShareSyncOptions o;
    o.redis_prefix = prefix;
    o.interval = std::chrono::milliseconds(60'000);  // max_age: no fall-back because of the test's pace
    sync = std::make_unique<ShareSync>(std::move(redis), router, o);
  }
  // Plans one request and reports its primary as having served it.
  std::string serve() {
    auto plan = router->plan(routing::test::request("m"));
    EXPECT_TRUE(plan.ok());
    const std::string id = plan.value().attempts.at(0).deployment.id;
    router->served(plan.value(), id, 0.001);
    return id;
  }
  routing::ShareTotals totals() const {
    return router->diversity().window("r", std::chrono::minutes(10))->totals(router->clock().steady_now());
  }
};

class ShareSyncTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!RedisServer::available()) GTEST_SKIP() << "redis-server not installed";
    ASSERT_TRUE(redis_.start());
    auto o = redis_.options();
    o.connect_timeout = o.command_timeout = o.pool_wait = std::chrono::milliseconds(200);
    client_ = std::make_shared<RedisClient>(o);
  }
  RedisServer redis_;
  std::shared_ptr<RedisClient> client_;
  const std::string prefix_ = "test:shares:" + std::to_string(::getpid());
};

TEST(ShareFields, RoundTripAndForeignFieldsSkipped) {
  routing::ShareTotals t;
  t.requests = 3;
  t.spend_usd = 0.25;
  t.add_to_key(ShareKind::vendor, "va", 2, 0.2);
  t.add_to_key(ShareKind::jurisdiction, "US", 3, 0.25);
  auto fields = share_fields(t);
  fields.emplace_back("junk", "7");
  fields.emplace_back(std::string("vendor\x1fvb\x1fn"), "not a number");
  fields.emplace_back(std::string("nation\x1fvb\x1fn"), "1");
  const routing::ShareTotals back = parse_share_fields(fields);
  EXPECT_DOUBLE_EQ(back.requests, 3);
  EXPECT_DOUBLE_EQ(back.spend_usd, 0.25);
  ASSERT_EQ(back.keys.size(), 2u);
  EXPECT_DOUBLE_EQ(back.share(ShareKind::vendor, "va", false), 2.0 / 3);
  EXPECT_DOUBLE_EQ(back.share(ShareKind::vendor, "va", true), 0.8);
  EXPECT_DOUBLE_EQ(back.share(ShareKind::jurisdiction, "US", false), 1);
}

TEST_F(ShareSyncTest, EachReplicaCapsOnTheFleetsTotals) {
  Replica a(client_, prefix_), b(client_, prefix_);
  // A alone serves 10: va, vb, vc (a tie at the cap), then va and vb in turn: va ends at 5 of 10.
  for (int i = 0; i < 10; ++i) a.serve();
  a.sync->sync_once();
  b.sync->sync_once();
  EXPECT_EQ(a.sync->syncs(), 1u);
  routing::ShareTotals seen = b.totals();
  EXPECT_TRUE(seen.fleet);
  EXPECT_DOUBLE_EQ(seen.requests, 10);
  EXPECT_DOUBLE_EQ(seen.share(ShareKind::vendor, "va", false), 0.5);
  // So B's first request does not go to va (at its cap), though B itself never served one.
  EXPECT_EQ(b.serve(), "vb@default/m");
  EXPECT_DOUBLE_EQ(b.totals().requests, 11);  // its own unsynced one on top
  b.sync->sync_once();
  a.sync->sync_once();
  EXPECT_DOUBLE_EQ(a.totals().requests, 11);
  EXPECT_NEAR(a.totals().spend_usd, 0.011, 1e-12);
  EXPECT_DOUBLE_EQ(a.totals().share(ShareKind::vendor, "vb", false), 5.0 / 11);
}

TEST_F(ShareSyncTest, RedisLostFallsBackToLocalThenTheCountsReachTheNewRedis) {
  Replica a(client_, prefix_), b(client_, prefix_);
  for (int i = 0; i < 4; ++i) b.serve();
  b.sync->sync_once();
  a.sync->sync_once();
  EXPECT_TRUE(a.totals().fleet);

  redis_.stop();
  for (int i = 0; i < 3; ++i) a.serve();
  a.sync->sync_once();
  EXPECT_TRUE(a.sync->failing());
  EXPECT_EQ(a.sync->failures(), 1u);
  routing::ShareTotals local = a.totals();
  EXPECT_FALSE(local.fleet);
  EXPECT_DOUBLE_EQ(local.requests, 3);  // its own window only

  ASSERT_TRUE(redis_.start());  // empty: the fleet's window is gone
  routing::ShareTotals fresh;
  for (int i = 0; i < 50 && !(fresh = a.totals()).fleet; ++i) {
    a.sync->sync_once();  // the client may still be in its reconnect backoff
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_FALSE(a.sync->failing());
  EXPECT_TRUE(fresh.fleet);
  EXPECT_DOUBLE_EQ(fresh.requests, 3);  // what A served while Redis was down reached the new one
  for (int i = 0; i < 50 && b.sync->syncs() < 2; ++i) {
    b.sync->sync_once();
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_DOUBLE_EQ(b.totals().requests, 3);
}

// A key of the wrong type where a bucket should be (another program's data): Redis answers the
// script with an error; the round fails like an outage, the counts are kept, caps go local.
TEST_F(ShareSyncTest, AnErrorReplyIsAFailedRoundNotAWrongTotal) {
  Replica a(client_, prefix_);
  a.serve();
  const int64_t bucket = std::chrono::duration_cast<std::chrono::milliseconds>(
                             std::chrono::system_clock::now().time_since_epoch())
                             .count() /
                         10'000;  // a 10-minute window has 10 s buckets
  for (int64_t e = bucket - 1; e <= bucket + 1; ++e)
    ASSERT_TRUE(client_->command({"SET", prefix_ + ":r:600s:" + std::to_string(e), "not a hash"}).ok());
  a.sync->sync_once();
  EXPECT_TRUE(a.sync->failing());
  EXPECT_EQ(a.sync->syncs(), 0u);
  EXPECT_FALSE(a.totals().fleet);
  EXPECT_DOUBLE_EQ(a.totals().requests, 1);
  for (int64_t e = bucket - 1; e <= bucket + 1; ++e)
    ASSERT_TRUE(client_->command({"DEL", prefix_ + ":r:600s:" + std::to_string(e)}).ok());
  a.sync->sync_once();
  EXPECT_FALSE(a.sync->failing());
  EXPECT_TRUE(a.totals().fleet);
  EXPECT_DOUBLE_EQ(a.totals().requests, 1);  // sent once the key was fixed, not lost
}

}  // namespace
}  // namespace gateway
