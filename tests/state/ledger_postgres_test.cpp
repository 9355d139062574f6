// The PostgreSQL ledger store against a real server (postgres_server.h): the same reports as the
// SQLite store for the same entries, replays and concurrent replicas never counting twice, hostile
// text stored rather than wedging the queue, and an outage reported as failing() with the entries
// kept until the server is back.
#include <gtest/gtest.h>
#include <libpq-fe.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <thread>
#include <vector>

#include "gateway/state/ledger.h"
#include "gateway/state/ledger_postgres.h"
#include "gateway/state/suspension_audit.h"
#include "postgres_server.h"

namespace gateway {
namespace {

using gateway::testing::PostgresServer;

constexpr int64_t kDay = 86'400'000;
constexpr int64_t kT0 = 1'764'000'000'000;  // 2025-11-24T16:00:00Z

LedgerEntry entry(std::string tenant, std::string rid, int64_t ts_ms, int64_t cost_pico, std::string dep = "qwen/flash",
                  int attempt = 1) {
  LedgerEntry e;
  e.ts_ms = ts_ms;
  e.tenant = std::move(tenant);
  e.key_id = "k1";
  e.request_id = std::move(rid);
  e.client_request_id = "client-" + e.request_id;
  e.deployment = std::move(dep);
  e.status = "ok";
  e.attempt = attempt;
  e.usage.prompt_tokens = 100;
  e.usage.cached_tokens = 40;
  e.usage.cache_write_tokens = 3;
  e.usage.completion_tokens = 20;
  e.usage.reasoning_tokens = 5;
  e.usage.present = true;
  e.cost = core::Money{cost_pico};
  return e;
}

class PostgresLedgerTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!PostgresServer::available()) return;
    server_ = new PostgresServer();
    started_ = server_->start();
  }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
  }
  // A fresh database per test.
  void SetUp() override {
    if (!PostgresServer::available()) GTEST_SKIP() << "initdb not found (Debian package postgresql)";
    ASSERT_TRUE(started_) << "PostgreSQL did not start; see " << server_->dir() << "/server.log";
    db_ = "ledger_" + std::to_string(::getpid()) + "_" + std::to_string(++seq_);
    PGconn* c = PQconnectdb(server_->url().c_str());
    ASSERT_EQ(PQstatus(c), CONNECTION_OK) << PQerrorMessage(c);
    PGresult* r = PQexec(c, ("CREATE DATABASE " + db_).c_str());
    EXPECT_EQ(PQresultStatus(r), PGRES_COMMAND_OK) << PQerrorMessage(c);
    PQclear(r);
    PQfinish(c);
  }
  std::string url() const { return server_->url(db_); }

  static PostgresServer* server_;
  static bool started_;
  static int seq_;
  std::string db_;
};
PostgresServer* PostgresLedgerTest::server_ = nullptr;
bool PostgresLedgerTest::started_ = false;
int PostgresLedgerTest::seq_ = 0;

TEST_F(PostgresLedgerTest, ReportsEqualTheSqliteLedgersForTheSameEntries) {
  auto pg = Ledger::open_postgres(url());
  ASSERT_TRUE(pg.ok()) << pg.error().message;
  const auto dir = std::filesystem::temp_directory_path() / ("gw-pg-vs-sqlite-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  auto lite = Ledger::open((dir / "spend.db").string());
  ASSERT_TRUE(lite.ok()) << lite.error().message;
  int n = 0;
  for (const char* tenant : {"acme", "zeta", "Acme", "b\xc3\xa9ta"})  // byte order: "Acme" < "acme" < "béta"
    for (int day = 0; day < 3; ++day)
      for (const char* dep : {"qwen/flash", "deepseek/chat"}) {
        ++n;  // before the call: its arguments are evaluated in no set order
        LedgerEntry e = entry(tenant, "r" + std::to_string(n), kT0 + day * kDay + n, 1000 * n, dep);
        if (n % 3) e.baseline_cost = core::Money{(n % 3 == 1 ? 5000 : 100) * n};  // every third row: none
        (*pg)->append(e, nullptr);
        (*lite)->append(e, nullptr);
      }
  ASSERT_TRUE((*pg)->flush_for(std::chrono::seconds(30))) << (*pg)->failure();
  ASSERT_TRUE((*lite)->flush_for(std::chrono::seconds(30)));
  for (const char* by : {"tenant", "deployment", "day"}) {
    for (auto [from, to] : {std::pair<int64_t, int64_t>{0, int64_t(1) << 62}, {kT0 + kDay, kT0 + 2 * kDay}}) {
      for (bool savings : {false, true}) {
        auto a = (*pg)->report_json(by, from, to, savings);
        auto b = (*lite)->report_json(by, from, to, savings);
        ASSERT_TRUE(a.ok() && b.ok());
        EXPECT_EQ(*a, *b) << by;
        if (savings) {
          EXPECT_NE(a->find("\"baselined_requests\":"), std::string::npos);
        }
      }
    }
  }
  EXPECT_EQ((*pg)->spent("acme", kT0 + kDay).pico, (*lite)->spent("acme", kT0 + kDay).pico);
  EXPECT_GT((*pg)->spent("acme", 0).pico, 0);
  EXPECT_EQ((*pg)->totals().requests, n);
  EXPECT_EQ((*pg)->totals().cost.pico, (*lite)->totals().cost.pico);
  auto bad = (*pg)->report_json("week", 0, 1);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().kind, core::ErrorKind::bad_request);
  std::filesystem::remove_all(dir);
}

// A database a version-2 gateway created (no baseline_pico) gets the column in place; old rows read
// as "no baseline" (NULL), new rows store theirs, and a row without one stores NULL, not 0.
TEST_F(PostgresLedgerTest, BaselineColumnIsAddedToAVersion2DatabaseAndNullMeansNone) {
  PGconn* c = PQconnectdb(url().c_str());
  ASSERT_EQ(PQstatus(c), CONNECTION_OK) << PQerrorMessage(c);
  auto exec = [c](const std::string& sql) {
    PGresult* r = PQexec(c, sql.c_str());
    const bool ok = PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK;
    std::string out;
    for (int i = 0; ok && i < PQntuples(r); ++i) {
      for (int k = 0; k < PQnfields(r); ++k)
        out += (k ? "|" : "") + std::string(PQgetisnull(r, i, k) ? "null" : PQgetvalue(r, i, k));
      out += "\n";
    }
    if (!ok) out = "error: " + std::string(PQerrorMessage(c));
    PQclear(r);
    return out;
  };
  exec("CREATE TABLE spend_schema (version INTEGER NOT NULL); INSERT INTO spend_schema VALUES (2);"
       "CREATE TABLE spend (id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, ts_ms BIGINT NOT NULL,"
       " tenant TEXT NOT NULL, key_id TEXT NOT NULL, request_id TEXT NOT NULL, client_request_id TEXT NOT NULL DEFAULT '',"
       " attempt INTEGER NOT NULL, deployment TEXT NOT NULL, status TEXT NOT NULL,"
       " usage_source TEXT NOT NULL DEFAULT 'provider', prompt_tokens BIGINT NOT NULL, cached_tokens BIGINT NOT NULL,"
       " cache_write_tokens BIGINT NOT NULL, completion_tokens BIGINT NOT NULL, reasoning_tokens BIGINT NOT NULL,"
       " cost_pico BIGINT NOT NULL, UNIQUE (request_id, attempt));"
       "INSERT INTO spend (ts_ms, tenant, key_id, request_id, attempt, deployment, status, prompt_tokens, cached_tokens,"
       " cache_write_tokens, completion_tokens, reasoning_tokens, cost_pico)"
       " VALUES (1764000000000, 'acme', 'k1', 'old-1', 1, 'qwen/flash', 'ok', 1, 0, 0, 1, 0, 1000)");
  {
    auto pg = Ledger::open_postgres(url());
    ASSERT_TRUE(pg.ok()) << pg.error().message;
    LedgerEntry with = entry("acme", "new-1", kT0, 2000);
    with.baseline_cost = core::Money{9000};
    (*pg)->append(with, nullptr);
    (*pg)->append(entry("acme", "new-2", kT0, 300), nullptr);
    ASSERT_TRUE((*pg)->flush_for(std::chrono::seconds(30))) << (*pg)->failure();
    auto r = (*pg)->report_json("tenant", 0, int64_t(1) << 62, true);
    ASSERT_TRUE(r.ok());
    EXPECT_NE(r->find("\"requests\":3,"), std::string::npos) << *r;
    EXPECT_NE(r->find("\"baselined_requests\":1,\"baselined_cost_pico\":2000,"), std::string::npos) << *r;
    EXPECT_NE(r->find("\"baseline_pico\":9000,"), std::string::npos) << *r;
    EXPECT_NE(r->find("\"saved_pico\":7000}"), std::string::npos) << *r;
  }
  EXPECT_EQ(exec("SELECT request_id, baseline_pico FROM spend ORDER BY id"), "old-1|null\nnew-1|9000\nnew-2|null\n");
  EXPECT_EQ(exec("SELECT MAX(version) FROM spend_schema"), "3\n");
  auto again = Ledger::open_postgres(url());  // the column exists: nothing to add, nothing lost
  ASSERT_TRUE(again.ok()) << again.error().message;
  EXPECT_EQ((*again)->totals().requests, 3);
  PQfinish(c);
}

TEST_F(PostgresLedgerTest, ReplaysAndTwoReplicasNeverCountTwice) {
  auto a = Ledger::open_postgres(url());
  auto b = Ledger::open_postgres(url());  // a second replica on the same database
  ASSERT_TRUE(a.ok() && b.ok());
  // The same 500 entries from both replicas at once, each three times, plus attempt 2 of each.
  auto writer = [](Ledger& l) {
    for (int round = 0; round < 3; ++round)
      for (int i = 0; i < 500; ++i) l.append(entry("acme", "dup-" + std::to_string(i), kT0 + i, 7), nullptr);
    for (int i = 0; i < 500; ++i) l.append(entry("acme", "dup-" + std::to_string(i), kT0 + i, 7, "qwen/flash", 2), nullptr);
    EXPECT_TRUE(l.flush_for(std::chrono::seconds(30))) << l.failure();
  };
  std::thread ta([&] { writer(**a); }), tb([&] { writer(**b); });
  ta.join();
  tb.join();
  EXPECT_EQ((*a)->totals().requests, 1000);
  EXPECT_EQ((*b)->totals().cost.pico, 7000);
  EXPECT_FALSE((*a)->failing());
}

// Replicas that start at once against a fresh database all create (or find) the ledger's and the
// suspension audit's tables: CREATE TABLE IF NOT EXISTS is not atomic in PostgreSQL, so without the
// schema lock some of them failed with a unique violation in the catalog and did not start.
TEST_F(PostgresLedgerTest, ReplicasStartingAtOnceAllCreateTheSchema) {
  constexpr int kReplicas = 8;
  std::atomic<bool> go{false};
  std::atomic<int> ready{0};
  std::vector<std::string> errors(kReplicas);
  std::vector<std::thread> replicas;
  for (int i = 0; i < kReplicas; ++i)
    replicas.emplace_back([&, i] {
      ++ready;
      while (!go.load()) std::this_thread::yield();
      auto audit = open_postgres_suspension_audit(url());
      if (!audit.ok()) errors[i] += "audit: " + audit.error().message + "; ";
      auto ledger = Ledger::open_postgres(url());
      if (!ledger.ok()) errors[i] += "ledger: " + ledger.error().message;
    });
  while (ready.load() < kReplicas) std::this_thread::yield();
  go = true;
  for (auto& t : replicas) t.join();
  for (int i = 0; i < kReplicas; ++i) EXPECT_EQ(errors[i], "") << "replica " << i;
}

TEST_F(PostgresLedgerTest, HostileTextIsStoredNotWedgingTheQueue) {
  auto l = Ledger::open_postgres(url());
  ASSERT_TRUE(l.ok());
  LedgerEntry e = entry(std::string("t\xff\xfe", 3), "hostile-1", kT0, 5);
  e.client_request_id = std::string("a\0b", 3);
  e.deployment = "dep\xc3";  // a truncated 2-byte sequence
  std::atomic<bool> durable{false};
  (*l)->append(e, [&] { durable = true; });
  ASSERT_TRUE((*l)->flush_for(std::chrono::seconds(10)));
  EXPECT_TRUE(durable);
  EXPECT_FALSE((*l)->failing()) << (*l)->failure();
  auto r = (*l)->report_json("tenant", 0, int64_t(1) << 62);
  ASSERT_TRUE(r.ok());
  EXPECT_NE(r->find("\"key\":\"t??\""), std::string::npos) << *r;
  auto d = (*l)->report_json("deployment", 0, int64_t(1) << 62);
  EXPECT_NE(d->find("\"key\":\"dep?\""), std::string::npos) << *d;
  // The next entry is not stuck behind it.
  (*l)->append(entry("acme", "after-hostile", kT0, 5), nullptr);
  ASSERT_TRUE((*l)->flush_for(std::chrono::seconds(10)));
  EXPECT_EQ((*l)->totals().requests, 2);
}

TEST_F(PostgresLedgerTest, OutageIsFailingAndKeepsEntriesUntilTheServerIsBack) {
  auto l = Ledger::open_postgres(url());
  ASSERT_TRUE(l.ok());
  (*l)->append(entry("acme", "before", kT0, 5), nullptr);
  ASSERT_TRUE((*l)->flush_for(std::chrono::seconds(30)));
  server_->stop();
  // The idle probe notices without any append (bounded: 20 probe intervals).
  auto until = std::chrono::steady_clock::now() + 20 * PostgresLedgerStore::kProbeInterval;
  while (!(*l)->failing() && std::chrono::steady_clock::now() < until) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  ASSERT_TRUE((*l)->failing());
  EXPECT_FALSE((*l)->failure().empty());
  EXPECT_FALSE((*l)->report_json("tenant", 0, 1).ok()) << "a report cannot be read either";
  std::atomic<int> durable{0};
  for (int i = 0; i < 3; ++i) ASSERT_TRUE((*l)->append_for(entry("acme", "during-" + std::to_string(i), kT0, 5), [&] { ++durable; }, std::chrono::seconds(1)));
  EXPECT_FALSE((*l)->flush_for(std::chrono::milliseconds(300)));
  EXPECT_EQ(durable.load(), 0);
  EXPECT_EQ((*l)->queue_depth(), 3u);
  ASSERT_TRUE(server_->start());
  ASSERT_TRUE((*l)->flush_for(std::chrono::seconds(20)));
  EXPECT_EQ(durable.load(), 3);
  EXPECT_FALSE((*l)->failing());
  EXPECT_EQ((*l)->totals().requests, 4);
  EXPECT_GE((*l)->commit_failures(), 1u);
}

// libpq calls a connection the server dropped OK until it is used: the first statement after a
// restart fails, and is retried once on a new connection instead of counting as a failure.
TEST_F(PostgresLedgerTest, QuickRestartCostsNoFailedCommitOrReport) {
  auto l = Ledger::open_postgres(url());
  ASSERT_TRUE(l.ok());
  ASSERT_TRUE((*l)->report_json("tenant", 0, 1).ok());  // the reader connection exists
  (*l)->append(entry("acme", "before-restart", kT0, 5), nullptr);
  ASSERT_TRUE((*l)->flush_for(std::chrono::seconds(30)));
  server_->stop();
  ASSERT_TRUE(server_->start());
  auto r = (*l)->report_json("tenant", 0, int64_t(1) << 62);
  ASSERT_TRUE(r.ok()) << r.error().message;
  (*l)->append(entry("acme", "after-restart", kT0, 5), nullptr);
  ASSERT_TRUE((*l)->flush_for(std::chrono::seconds(30)));
  EXPECT_EQ((*l)->commit_failures(), 0u) << (*l)->failure();
  EXPECT_EQ((*l)->totals().requests, 2);
}

TEST_F(PostgresLedgerTest, UnreachableServerIsAClearErrorWithoutThePassword) {
  auto l = Ledger::open_postgres("postgres://gw:hunter2-secret@127.0.0.1:1/nowhere");
  ASSERT_FALSE(l.ok());
  EXPECT_NE(l.error().message.find("postgres 127.0.0.1:1/nowhere: cannot connect"), std::string::npos) << l.error().message;
  EXPECT_EQ(l.error().message.find("hunter2"), std::string::npos) << l.error().message;
  EXPECT_EQ(l.error().code, "ledger_unavailable");
}

}  // namespace
}  // namespace gateway
