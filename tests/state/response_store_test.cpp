// Stored Responses API responses: SQLite (file and memory) and Redis, tenant isolation, the
// conversation chain, bounds by bytes and age, a damaged or unwritable store.
#include "gateway/state/response_store.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>

#include "gateway/state/redis_client.h"
#include "redis_server.h"

namespace gateway {
namespace {

int64_t now_s() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

StoredResponse sample(std::string id, std::string tenant, std::string previous = "", std::string text = "hi") {
  StoredResponse r;
  r.id = std::move(id);
  r.tenant = std::move(tenant);
  r.previous_id = std::move(previous);
  r.created_at = now_s();
  r.response_json = "{\"id\":\"" + r.id + "\",\"object\":\"response\"}";
  r.input_items_json = "[{\"id\":\"msg_in_" + r.id + "\",\"type\":\"message\",\"role\":\"user\",\"content\":\"" + text + "\"}]";
  r.output_items_json = "[{\"id\":\"msg_out_" + r.id + "\",\"type\":\"message\",\"role\":\"assistant\"}]";
  return r;
}

std::string temp_path(const char* name) {
  return (std::filesystem::temp_directory_path() / (std::string(name) + "-" + std::to_string(::getpid()) + ".db")).string();
}

// The same behaviour from every backend.
void exercise(ResponseStore& s) {
  ASSERT_TRUE(s.put(sample("resp_a1", "acme")).ok());
  auto got = s.get("acme", "resp_a1");
  ASSERT_TRUE(got.ok());
  ASSERT_TRUE(got->has_value());
  EXPECT_EQ((*got)->response_json, sample("resp_a1", "acme").response_json);
  EXPECT_EQ((*got)->input_items_json, sample("resp_a1", "acme").input_items_json);
  // Another tenant (or open mode) sees nothing under the same id.
  for (const char* other : {"beta", ""}) {
    auto miss = s.get(other, "resp_a1");
    ASSERT_TRUE(miss.ok());
    EXPECT_FALSE(miss->has_value()) << other;
    auto del = s.remove(other, "resp_a1");
    ASSERT_TRUE(del.ok());
    EXPECT_FALSE(*del);
  }
  // A chain: a1 <- a2 <- a3; the conversation is every item, oldest first.
  ASSERT_TRUE(s.put(sample("resp_a2", "acme", "resp_a1", "second")).ok());
  ASSERT_TRUE(s.put(sample("resp_a3", "acme", "resp_a2", "third")).ok());
  auto conv = conversation_items(s, "acme", "resp_a3", 1 << 20);
  ASSERT_TRUE(conv.ok()) << conv.error().message;
  const std::string& c = *conv;
  EXPECT_EQ(c.front(), '[');
  EXPECT_LT(c.find("msg_in_resp_a1"), c.find("msg_out_resp_a1"));
  EXPECT_LT(c.find("msg_out_resp_a1"), c.find("msg_in_resp_a2"));
  EXPECT_LT(c.find("msg_out_resp_a2"), c.find("msg_in_resp_a3"));
  EXPECT_NE(c.find("msg_out_resp_a3"), std::string::npos);
  // Another tenant cannot continue it; a conversation over the bound is refused.
  auto foreign = conversation_items(s, "beta", "resp_a3", 1 << 20);
  ASSERT_FALSE(foreign.ok());
  EXPECT_EQ(foreign.error().kind, core::ErrorKind::bad_request);
  EXPECT_EQ(foreign.error().code, "previous_response_not_found");
  EXPECT_EQ(foreign.error().param, "previous_response_id");
  auto big = conversation_items(s, "acme", "resp_a3", 100);
  ASSERT_FALSE(big.ok());
  EXPECT_EQ(big.error().kind, core::ErrorKind::payload_too_large);
  // Deleting a link ends the conversations through it.
  auto del = s.remove("acme", "resp_a2");
  ASSERT_TRUE(del.ok());
  EXPECT_TRUE(*del);
  auto broken = conversation_items(s, "acme", "resp_a3", 1 << 20);
  ASSERT_FALSE(broken.ok());
  EXPECT_EQ(broken.error().code, "previous_response_not_found");
  EXPECT_NE(broken.error().message.find("resp_a2"), std::string::npos);
}

TEST(SqliteResponseStore, RoundTripIsolationAndChain) {
  const std::string path = temp_path("gw-responses");
  std::filesystem::remove(path);
  {
    auto s = open_sqlite_response_store(path, {});
    ASSERT_TRUE(s.ok()) << s.error().message;
    exercise(**s);
  }
  // Survives a restart.
  auto again = open_sqlite_response_store(path, {});
  ASSERT_TRUE(again.ok());
  auto got = (*again)->get("acme", "resp_a1");
  ASSERT_TRUE(got.ok());
  EXPECT_TRUE(got->has_value());
  again->reset();
  for (const char* suffix : {"", "-wal", "-shm"}) std::filesystem::remove(path + suffix);
}

TEST(SqliteResponseStore, MemoryBackend) {
  auto s = open_sqlite_response_store(":memory:", {});
  ASSERT_TRUE(s.ok());
  exercise(**s);
  EXPECT_NE((*s)->describe().find("lost at restart"), std::string::npos);
}

TEST(SqliteResponseStore, BoundedByBytesOldestFirst) {
  ResponseStoreLimits limits;
  limits.max_bytes = 64 << 10;
  auto s = open_sqlite_response_store(":memory:", limits);
  ASSERT_TRUE(s.ok());
  const std::string text(1000, 'x');
  for (int i = 0; i < 400; ++i) {
    auto r = sample("resp_" + std::to_string(i), "acme", "", text);
    r.created_at = now_s() - 400 + i;  // older first
    ASSERT_TRUE((*s)->put(r).ok());
  }
  // About 1.2 KB each: at most ~55 fit; the newest are kept, the oldest gone.
  auto newest = (*s)->get("acme", "resp_399");
  ASSERT_TRUE(newest.ok());
  EXPECT_TRUE(newest->has_value());
  auto oldest = (*s)->get("acme", "resp_0");
  ASSERT_TRUE(oldest.ok());
  EXPECT_FALSE(oldest->has_value());
  int kept = 0;
  for (int i = 0; i < 400; ++i) kept += (*s)->get("acme", "resp_" + std::to_string(i))->has_value();
  EXPECT_GT(kept, 20);
  EXPECT_LE(kept, 64 * 1024 / 1000);
  // One response larger than a quarter of the bound is not stored (it would flush the rest).
  auto huge = sample("resp_huge", "acme", "", std::string(20000, 'y'));
  auto put = (*s)->put(huge);
  ASSERT_FALSE(put.ok());
  EXPECT_EQ(put.error().code, "response_too_large_to_store");
}

TEST(SqliteResponseStore, ExpiredResponsesAreNotFound) {
  ResponseStoreLimits limits;
  limits.max_age = std::chrono::seconds(3600);
  auto s = open_sqlite_response_store(":memory:", limits);
  ASSERT_TRUE(s.ok());
  auto old = sample("resp_old", "acme");
  old.created_at = now_s() - 7200;
  ASSERT_TRUE((*s)->put(old).ok());
  auto got = (*s)->get("acme", "resp_old");
  ASSERT_TRUE(got.ok());
  EXPECT_FALSE(got->has_value());
}

TEST(SqliteResponseStore, UnusableFileIsAClearError) {
  // A directory where the file should be.
  const std::string dir = temp_path("gw-responses-dir");
  std::filesystem::create_directories(dir);
  auto s = open_sqlite_response_store(dir, {});
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message.find(dir), std::string::npos);
  EXPECT_EQ(s.error().code, "response_store_unavailable");
  std::filesystem::remove_all(dir);
}

TEST(RedisResponseStore, SharedAcrossReplicasWithTtl) {
  if (!testing::RedisServer::available()) GTEST_SKIP() << "redis-server not installed";
  testing::RedisServer server;
  ASSERT_TRUE(server.start());
  ResponseStoreLimits limits;
  limits.max_age = std::chrono::seconds(600);
  auto a = make_redis_response_store(std::make_shared<RedisClient>(server.options()), limits);
  auto b = make_redis_response_store(std::make_shared<RedisClient>(server.options()), limits);  // another replica
  exercise(*a);
  ASSERT_TRUE(a->put(sample("resp_r1", "acme")).ok());
  auto got = b->get("acme", "resp_r1");
  ASSERT_TRUE(got.ok());
  ASSERT_TRUE(got->has_value());
  EXPECT_EQ((*got)->response_json, sample("resp_r1", "acme").response_json);
  // Every key has the TTL.
  RedisClient probe(server.options());
  auto keys = probe.command({"KEYS", "gw:resp:*"});
  ASSERT_TRUE(keys.ok());
  ASSERT_FALSE(keys->elements.empty());
  for (const auto& k : keys->elements) {
    auto ttl = probe.command({"TTL", k.str});
    ASSERT_TRUE(ttl.ok());
    EXPECT_GT(ttl->integer, 0);
    EXPECT_LE(ttl->integer, 600);
  }
  // Redis gone: an error, never "not found" (a client would be told the response does not exist).
  server.stop();
  auto down = b->get("acme", "resp_r1");
  ASSERT_FALSE(down.ok());
  EXPECT_EQ(down.error().kind, core::ErrorKind::unavailable);
}

}  // namespace
}  // namespace gateway
