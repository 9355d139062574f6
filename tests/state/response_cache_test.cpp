#include "gateway/state/response_cache.h"

#include <gtest/gtest.h>

#include "redis_server.h"

namespace gateway {
namespace {

using namespace std::chrono;

CachedResponse sample(std::string body = R"({"id":"c1","choices":[{"message":{"content":"hi"}}]})") {
  CachedResponse v;
  v.body = std::move(body);
  v.chunks = {R"({"choices":[{"delta":{"content":"h"}}]})", R"({"choices":[{"delta":{"content":"i"}}]})",
              std::string("bin\0ary", 7)};
  v.usage.prompt_tokens = 12;
  v.usage.cached_tokens = 4;
  v.usage.completion_tokens = 2;
  v.usage.reasoning_tokens = 1;
  v.usage.present = true;
  v.deployment = "local/demo";
  return v;
}

void expect_same(const CachedResponse& a, const CachedResponse& b) {
  EXPECT_EQ(a.body, b.body);
  EXPECT_EQ(a.chunks, b.chunks);
  EXPECT_EQ(a.deployment, b.deployment);
  EXPECT_EQ(a.usage.prompt_tokens, b.usage.prompt_tokens);
  EXPECT_EQ(a.usage.cached_tokens, b.usage.cached_tokens);
  EXPECT_EQ(a.usage.completion_tokens, b.usage.completion_tokens);
  EXPECT_EQ(a.usage.reasoning_tokens, b.usage.reasoning_tokens);
  EXPECT_EQ(a.usage.present, b.usage.present);
}

TEST(CacheKey, PerTenantAndUnambiguous) {
  std::string k = cache_key("acme", R"({"model":"x"})");
  EXPECT_EQ(k.size(), 64u);
  EXPECT_EQ(k, cache_key("acme", R"({"model":"x"})"));
  EXPECT_NE(k, cache_key("beta", R"({"model":"x"})"));
  EXPECT_NE(cache_key("ab", "c"), cache_key("a", "bc"));
}

TEST(Cacheable, TemperatureZeroOrOptIn) {
  core::ChatRequest r;
  EXPECT_FALSE(cacheable(r, false)) << "no temperature given: provider default, not deterministic";
  r.temperature = 0.0;
  EXPECT_TRUE(cacheable(r, false));
  r.stream = true;
  EXPECT_TRUE(cacheable(r, false));
  r.temperature = 0.7;
  EXPECT_FALSE(cacheable(r, false));
  EXPECT_TRUE(cacheable(r, true));
}

TEST(CachedEncoding, RoundTripsAndRejectsDamage) {
  auto v = sample();
  std::string bytes = encode_cached(v);
  auto back = decode_cached(bytes);
  ASSERT_TRUE(back.has_value());
  expect_same(v, *back);
  for (size_t cut = 0; cut < bytes.size(); ++cut) EXPECT_FALSE(decode_cached(bytes.substr(0, cut))) << cut;
  EXPECT_FALSE(decode_cached(bytes + "x"));
  std::string huge = bytes;
  huge[4 + 7] = '\x7f';  // body length's top byte
  EXPECT_FALSE(decode_cached(huge));
}

TEST(MemoryCache, HitIsByteIdenticalAndExpires) {
  core::ManualClock clock;
  MemoryResponseCache c(1 << 20, clock);
  c.put("k", sample(), seconds(60));
  auto hit = c.get("k");
  ASSERT_TRUE(hit.has_value());
  expect_same(sample(), *hit);
  clock.advance(seconds(59));
  EXPECT_TRUE(c.get("k").has_value());
  clock.advance(seconds(1));
  EXPECT_FALSE(c.get("k").has_value());
  EXPECT_EQ(c.entries(), 0u);
  EXPECT_EQ(c.bytes(), 0u);
  auto s = c.stats();
  EXPECT_EQ(s.hits, 2u);
  EXPECT_EQ(s.misses, 1u);
}

TEST(MemoryCache, LruByBytes) {
  core::ManualClock clock;
  const size_t body = 1000;
  MemoryResponseCache c(4 * (body + 400), clock);  // room for about 4 entries of ~1.3 kB
  auto v = [&](char ch) {
    CachedResponse r;
    r.body = std::string(body, ch);
    return r;
  };
  c.put("a", v('a'), seconds(60));
  c.put("b", v('b'), seconds(60));
  c.put("c", v('c'), seconds(60));
  c.put("d", v('d'), seconds(60));
  ASSERT_TRUE(c.get("a").has_value());  // a is now the most recent; b the least
  c.put("e", v('e'), seconds(60));
  EXPECT_FALSE(c.get("b").has_value());
  EXPECT_TRUE(c.get("a").has_value());
  EXPECT_TRUE(c.get("e").has_value());
  EXPECT_LE(c.bytes(), 4 * (body + 400));
  EXPECT_GE(c.stats().evictions, 1u);
  // Replacing a key does not double-count its bytes.
  size_t before = c.bytes();
  c.put("e", v('E'), seconds(60));
  EXPECT_EQ(c.bytes(), before);
  EXPECT_EQ(c.get("e")->body[0], 'E');
  // One response larger than a quarter of the cache is not stored.
  CachedResponse big;
  big.body = std::string(2 * body, 'x');
  c.put("big", big, seconds(60));
  EXPECT_FALSE(c.get("big").has_value());
  EXPECT_EQ(c.stats().rejected, 1u);
}

TEST(RedisCache, SharedRoundTripWithTtlAndBound) {
  if (!testing::RedisServer::available()) GTEST_SKIP() << "redis-server not installed";
  testing::RedisServer server;
  ASSERT_TRUE(server.start());
  auto client = std::make_shared<RedisClient>(server.options());
  RedisResponseCache a(client, 4096, "gwtest:cache:");
  RedisResponseCache b(std::make_shared<RedisClient>(server.options()), 4096, "gwtest:cache:");  // another replica
  std::string key = cache_key("acme", "{}");
  a.put(key, sample(), seconds(30));
  auto hit = b.get(key);
  ASSERT_TRUE(hit.has_value());
  expect_same(sample(), *hit);
  auto ttl = client->command({"TTL", "gwtest:cache:" + key});
  ASSERT_TRUE(ttl.ok());
  EXPECT_GT(ttl->integer, 0);
  EXPECT_LE(ttl->integer, 30);
  EXPECT_FALSE(b.get(cache_key("beta", "{}")).has_value());
  a.put("big", sample(std::string(5000, 'x')), seconds(30));
  EXPECT_EQ(a.stats().rejected, 1u);
  EXPECT_FALSE(b.get("big").has_value());
  // A damaged value is a miss, not a crash.
  ASSERT_TRUE(client->command({"SET", "gwtest:cache:bad", "GWC1garbage"}).ok());
  EXPECT_FALSE(b.get("bad").has_value());
  // Redis gone: a bounded miss.
  server.stop();
  auto t0 = steady_clock::now();
  EXPECT_FALSE(b.get(key).has_value());
  b.put(key, sample(), seconds(30));
  EXPECT_LT(steady_clock::now() - t0, milliseconds(1500));
  EXPECT_GE(b.stats().errors, 2u);
}

}  // namespace
}  // namespace gateway
