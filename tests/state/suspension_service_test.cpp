// The runtime kill switch without HTTP: the audit table (SQLite) replayed, suspend and lift
// recorded before they apply, and a suspension that cannot be recorded never in effect.
#include <gtest/gtest.h>

#include <sqlite3.h>

#include <algorithm>
#include <filesystem>
#include <set>
#include <random>

#include "gateway/state/redis_client.h"
#include "gateway/state/suspension_service.h"
#include "redis_server.h"

namespace gateway {
namespace {

namespace fs = std::filesystem;

class SuspensionServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("gw-suspension-" + std::to_string(std::random_device{}()));
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string db() const { return (dir_ / "ledger.db").string(); }

  std::unique_ptr<SuspensionService> open(std::shared_ptr<const routing::SuspensionList>* seen) {
    auto audit = open_sqlite_suspension_audit(db());
    EXPECT_TRUE(audit.ok()) << (audit.ok() ? "" : audit.error().message);
    auto s = std::make_unique<SuspensionService>(std::move(audit).value(), nullptr, SuspensionServiceOptions{},
                                                 [seen](std::shared_ptr<const routing::SuspensionList> l) { *seen = l; });
    EXPECT_TRUE(s->start().ok());
    return s;
  }
  fs::path dir_;
};

const routing::SuspensionSelector kQwen{routing::SuspensionKind::vendor, "qwen"};
const routing::SuspensionSelector kCn{routing::SuspensionKind::jurisdiction, "CN"};

TEST_F(SuspensionServiceTest, RecordedThenAppliedAndReplayedAfterARestart) {
  std::shared_ptr<const routing::SuspensionList> seen;
  std::string kept_id;
  {
    auto svc = open(&seen);
    ASSERT_TRUE(seen && seen->empty());
    auto a = svc->suspend(kQwen, "OFAC designation", "ops");
    auto b = svc->suspend(kCn, "board decision", "cfo");
    ASSERT_TRUE(a.ok() && b.ok());
    EXPECT_EQ(seen->size(), 2u);
    EXPECT_EQ(svc->ids_of(kQwen), std::vector<std::string>{a->id});
    ASSERT_TRUE(svc->lift(b->id, "admin").ok());
    EXPECT_EQ(seen->size(), 1u);
    EXPECT_EQ(svc->lift(b->id, "admin").error().kind, core::ErrorKind::not_found);
    kept_id = a->id;
  }
  auto svc = open(&seen);
  ASSERT_EQ(seen->size(), 1u);
  EXPECT_EQ((*seen)[0].id, kept_id);
  EXPECT_EQ((*seen)[0].reason, "OFAC designation");
  EXPECT_EQ((*seen)[0].by, "ops");
  EXPECT_EQ((*seen)[0].selector, kQwen);
}

TEST_F(SuspensionServiceTest, NotRecordedMeansNotInEffect) {
  std::shared_ptr<const routing::SuspensionList> seen;
  auto svc = open(&seen);
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(this->db().c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db, "CREATE TRIGGER no_audit BEFORE INSERT ON suspension_audit BEGIN SELECT RAISE(ABORT, 'refused'); END;",
                         nullptr, nullptr, nullptr),
            SQLITE_OK);
  sqlite3_close(db);
  auto r = svc->suspend(kQwen, "x", "ops");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("refused"), std::string::npos) << r.error().message;
  EXPECT_TRUE(seen->empty());
  EXPECT_TRUE(svc->runtime().empty());
}

// <prefix>:lifted is pruned: a tombstone lifted longer ago than lifted_retention is deleted, one
// without a lift time (written before tombstones carried it) is stamped, a recent one is kept, and
// a lift made here carries its time.
TEST_F(SuspensionServiceTest, OldTombstonesArePruned) {
  if (!testing::RedisServer::available()) GTEST_SKIP() << "redis-server not installed";
  testing::RedisServer server;
  ASSERT_TRUE(server.start());
  auto redis = std::make_shared<RedisClient>(server.options());
  const std::string lifted = "gateway:suspensions:lifted";
  const int64_t now = std::chrono::duration_cast<std::chrono::milliseconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count();
  const int64_t day = 24 * 3600 * 1000;
  const std::string fields = std::string("vendor\x1fqwen\x1fx\x1fops\x1f" "2026-01-01T00:00:00Z");
  ASSERT_TRUE(redis->command({"HSET", lifted, "s-old", fields + "\x1f" + std::to_string(now - 31 * day), "s-recent",
                              fields + "\x1f" + std::to_string(now - 29 * day), "s-legacy", fields})
                  .ok());
  auto audit = open_sqlite_suspension_audit(db());
  ASSERT_TRUE(audit.ok());
  std::shared_ptr<const routing::SuspensionList> seen;
  SuspensionService svc(std::move(audit).value(), redis, SuspensionServiceOptions{},
                        [&seen](std::shared_ptr<const routing::SuspensionList> l) { seen = l; });
  ASSERT_TRUE(svc.start().ok());  // its first poll reads everything
  auto s = svc.suspend(kCn, "board decision", "cfo");
  ASSERT_TRUE(s.ok());
  ASSERT_TRUE(svc.lift(s->id, "admin").ok());
  svc.stop();
  auto keys = redis->command({"HKEYS", lifted});
  ASSERT_TRUE(keys.ok());
  std::set<std::string> left;
  for (const auto& e : keys->elements) left.insert(e.str);
  EXPECT_EQ(left, (std::set<std::string>{"s-recent", "s-legacy", s->id}));
  auto legacy = redis->command({"HGET", lifted, "s-legacy"});
  ASSERT_TRUE(legacy.ok());
  EXPECT_EQ(std::count(legacy->str.begin(), legacy->str.end(), '\x1f'), 5) << "stamped with a lift time";
  auto mine = redis->command({"HGET", lifted, s->id});
  ASSERT_TRUE(mine.ok());
  EXPECT_EQ(std::count(mine->str.begin(), mine->str.end(), '\x1f'), 5);
}

TEST(ReplaySuspensions, ALiftCancelsOnlyItsOwnId) {
  auto row = [](const char* action, const char* id) {
    SuspensionAuditRow r;
    r.action = action;
    r.suspension.id = id;
    r.suspension.selector = kQwen;
    return r;
  };
  const auto active = replay_suspensions({row("suspend", "a"), row("suspend", "b"), row("lift", "a"), row("suspend", "b")});
  ASSERT_EQ(active.size(), 1u);
  EXPECT_EQ(active[0].id, "b");
}

}  // namespace
}  // namespace gateway
