#include "gateway/state/ledger.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sqlite3.h>

#include <atomic>
#include <filesystem>
#include <set>
#include <fstream>
#include <thread>

namespace gateway {
namespace {

namespace fs = std::filesystem;

class LedgerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("gw-ledger-test-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string db() const { return (dir_ / "spend.db").string(); }
  fs::path dir_;
};

LedgerEntry entry(std::string tenant, std::string rid, int64_t ts_ms, int64_t cost_pico, std::string dep = "qwen/flash") {
  LedgerEntry e;
  e.ts_ms = ts_ms;
  e.tenant = std::move(tenant);
  e.key_id = "k1";
  e.request_id = std::move(rid);
  e.deployment = std::move(dep);
  e.status = "ok";
  e.usage.prompt_tokens = 100;
  e.usage.cached_tokens = 40;
  e.usage.completion_tokens = 20;
  e.usage.reasoning_tokens = 5;
  e.usage.present = true;
  e.cost = core::Money{cost_pico};
  return e;
}

constexpr int64_t kDay = 86'400'000;
constexpr int64_t kT0 = 1'764'000'000'000;  // 2025-11-24T16:00:00Z

TEST_F(LedgerTest, AppendIsDurableAndCounted) {
  auto l = Ledger::open(db());
  ASSERT_TRUE(l.ok()) << l.error().message;
  std::atomic<int> durable{0};
  for (int i = 0; i < 100; ++i)
    (*l)->append(entry(i % 2 ? "acme" : "beta", "r" + std::to_string(i), kT0 + i, 1000 + i), [&] { ++durable; });
  (*l)->flush();
  EXPECT_EQ(durable.load(), 100);
  auto t = (*l)->totals();
  EXPECT_EQ(t.requests, 100);
  int64_t want = 0;
  for (int i = 0; i < 100; ++i) want += 1000 + i;
  EXPECT_EQ(t.cost.pico, want);
  int64_t acme = 0;
  for (int i = 1; i < 100; i += 2) acme += 1000 + i;
  EXPECT_EQ((*l)->spent("acme", 0).pico, acme);
  int64_t acme_late = 0;
  for (int i = 51; i < 100; i += 2) acme_late += 1000 + i;
  EXPECT_EQ((*l)->spent("acme", kT0 + 50).pico, acme_late);
  EXPECT_EQ((*l)->spent("nobody", 0).pico, 0);
}

TEST_F(LedgerTest, ReplayNeverCountsTwice) {
  auto l = Ledger::open(db());
  ASSERT_TRUE(l.ok()) << l.error().message;
  std::atomic<int> durable{0};
  (*l)->append(entry("acme", "req-1", kT0, 500), [&] { ++durable; });
  (*l)->append(entry("acme", "req-1", kT0, 500), [&] { ++durable; });  // replay: ignored, still acknowledged
  auto second = entry("acme", "req-1", kT0, 700);
  second.attempt = 1;  // a second attempt of the same request is a different row
  (*l)->append(second, [&] { ++durable; });
  (*l)->flush();
  EXPECT_EQ(durable.load(), 3);
  EXPECT_EQ((*l)->totals().requests, 2);
  EXPECT_EQ((*l)->totals().cost.pico, 1200);
}

TEST_F(LedgerTest, ReportGroupsByTenantDeploymentDay) {
  auto l = Ledger::open(db());
  ASSERT_TRUE(l.ok()) << l.error().message;
  (*l)->append(entry("acme", "a", kT0, 1'000'000'000, "qwen/flash"), {});
  (*l)->append(entry("acme", "b", kT0 + kDay, 2'000'000'000, "deepseek/flash"), {});
  (*l)->append(entry("beta", "c", kT0 + kDay, 500'000'000, "qwen/flash"), {});
  (*l)->append(entry("beta", "d", kT0 + 3 * kDay, 7, "qwen/flash"), {});  // outside the range below
  (*l)->flush();
  auto r = (*l)->report_json("tenant", kT0, kT0 + 2 * kDay);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r,
            "{\"group_by\":\"tenant\",\"from_ms\":1764000000000,\"to_ms\":1764172800000,\"rows\":["
            "{\"key\":\"acme\",\"requests\":2,\"prompt_tokens\":200,\"cached_tokens\":80,\"cache_write_tokens\":0,"
            "\"completion_tokens\":40,\"reasoning_tokens\":10,\"cost_usd\":\"0.003\",\"cost_pico\":3000000000},"
            "{\"key\":\"beta\",\"requests\":1,\"prompt_tokens\":100,\"cached_tokens\":40,\"cache_write_tokens\":0,"
            "\"completion_tokens\":20,\"reasoning_tokens\":5,\"cost_usd\":\"0.0005\",\"cost_pico\":500000000}],"
            "\"total\":{\"requests\":3,\"prompt_tokens\":300,\"cached_tokens\":120,\"cache_write_tokens\":0,"
            "\"completion_tokens\":60,\"reasoning_tokens\":15,\"cost_usd\":\"0.0035\",\"cost_pico\":3500000000}}");
  auto d = (*l)->report_json("day", 0, kT0 + 10 * kDay);
  ASSERT_TRUE(d.ok());
  EXPECT_NE(d->find("{\"key\":\"2025-11-24\",\"requests\":1,"), std::string::npos) << *d;
  EXPECT_NE(d->find("{\"key\":\"2025-11-25\",\"requests\":2,"), std::string::npos) << *d;
  EXPECT_NE(d->find("{\"key\":\"2025-11-27\",\"requests\":1,"), std::string::npos) << *d;
  auto dep = (*l)->report_json("deployment", 0, kT0 + 10 * kDay);
  ASSERT_TRUE(dep.ok());
  EXPECT_NE(dep->find("{\"key\":\"deepseek/flash\",\"requests\":1,"), std::string::npos) << *dep;
  EXPECT_NE(dep->find("{\"key\":\"qwen/flash\",\"requests\":3,"), std::string::npos) << *dep;
  auto bad = (*l)->report_json("model", 0, 1);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().kind, core::ErrorKind::bad_request);
}

TEST_F(LedgerTest, ReopenKeepsEverything) {
  {
    auto l = Ledger::open(db());
    ASSERT_TRUE(l.ok());
    for (int i = 0; i < 10; ++i) (*l)->append(entry("acme", std::to_string(i), kT0, 10), {});
  }  // destructor flushes
  auto l = Ledger::open(db());
  ASSERT_TRUE(l.ok()) << l.error().message;
  EXPECT_EQ((*l)->totals().requests, 10);
  EXPECT_EQ((*l)->totals().cost.pico, 100);
}

TEST_F(LedgerTest, CorruptFileIsAClearError) {
  {
    std::ofstream f(db(), std::ios::binary);
    f << std::string(8192, 'x');
  }
  auto l = Ledger::open(db());
  ASSERT_FALSE(l.ok());
  EXPECT_NE(l.error().message.find(db()), std::string::npos) << l.error().message;
  EXPECT_NE(l.error().message.find("corrupt or not a SQLite database"), std::string::npos) << l.error().message;
}

TEST_F(LedgerTest, UnopenablePathIsAClearError) {
  auto l = Ledger::open((dir_ / "no" / "such" / "dir" / "spend.db").string());
  ASSERT_FALSE(l.ok());
  EXPECT_NE(l.error().message.find("cannot open it for writing"), std::string::npos) << l.error().message;
}

TEST_F(LedgerTest, DirectoryInsteadOfFileIsAClearError) {
  fs::create_directories(db());
  auto l = Ledger::open(db());
  ASSERT_FALSE(l.ok());
  EXPECT_NE(l.error().message.find("spend ledger " + db()), std::string::npos) << l.error().message;
}

// What the crash test relies on: once on_durable ran, the entry survives kill -9 of the process.
TEST_F(LedgerTest, DurableEntriesSurviveKill9) {
  int pipefd[2];
  ASSERT_EQ(::pipe(pipefd), 0);
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    ::close(pipefd[0]);
    auto l = Ledger::open(db());
    if (!l.ok()) ::_exit(3);
    std::atomic<int> durable{0};
    for (int i = 0; i < 5000; ++i) {
      (*l)->append(entry("acme", "r" + std::to_string(i), kT0, 3), [&, fd = pipefd[1]] {
        // Report each acknowledged entry to the parent the moment it is acknowledged.
        char c = 'd';
        (void)!::write(fd, &c, 1);
        ++durable;
      });
    }
    for (int i = 0; i < 1000 && durable.load() < 2500; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    // Keep appending while dying: entries not acknowledged may or may not be there.
    for (int i = 5000; i < 6000; ++i) (*l)->append(entry("acme", "r" + std::to_string(i), kT0, 3), {});
    ::kill(::getpid(), SIGKILL);
    ::_exit(4);
  }
  ::close(pipefd[1]);
  int acked = 0;
  char buf[4096];
  ssize_t n;
  while ((n = ::read(pipefd[0], buf, sizeof buf)) > 0) acked += static_cast<int>(n);
  ::close(pipefd[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFSIGNALED(status)) << "child exited with " << WEXITSTATUS(status);
  auto l = Ledger::open(db());
  ASSERT_TRUE(l.ok()) << l.error().message;
  auto t = (*l)->totals();
  EXPECT_GE(t.requests, acked);
  EXPECT_LE(t.requests, 6000);
  EXPECT_EQ(t.cost.pico, t.requests * 3);
  EXPECT_GT(acked, 0);
}

TEST_F(LedgerTest, ConcurrentAppendersAndBoundedQueue) {
  auto l = Ledger::open(db(), /*max_queue=*/16);
  ASSERT_TRUE(l.ok());
  std::atomic<int> durable{0};
  std::vector<std::thread> th;
  for (int t = 0; t < 4; ++t)
    th.emplace_back([&, t] {
      for (int i = 0; i < 500; ++i)
        (*l)->append(entry("acme", std::to_string(t) + "-" + std::to_string(i), kT0, 1), [&] { ++durable; });
    });
  for (auto& x : th) x.join();
  EXPECT_TRUE((*l)->flush_for(std::chrono::seconds(10)));
  EXPECT_EQ(durable.load(), 2000);
  EXPECT_EQ((*l)->totals().requests, 2000);
  EXPECT_LE((*l)->queue_depth(), 0u);
  EXPECT_TRUE((*l)->append_for(entry("acme", "late", kT0, 1), {}, std::chrono::milliseconds(1000)));
}

}  // namespace

uint64_t size_of(const std::string& p) {
  std::error_code ec;
  auto n = fs::file_size(p, ec);
  return ec ? 0 : n;
}

// Runs SQL on its own connection; the first column of each row, '|'-joined per row, '\n' between rows.
std::string sql(const std::string& path, const std::string& q) {
  sqlite3* db = nullptr;
  EXPECT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  std::string out;
  auto cb = [](void* o, int n, char** v, char**) {
    auto* s = static_cast<std::string*>(o);
    for (int i = 0; i < n; ++i) *s += std::string(i ? "|" : "") + (v[i] ? v[i] : "NULL");
    *s += "\n";
    return 0;
  };
  char* err = nullptr;
  EXPECT_EQ(sqlite3_exec(db, q.c_str(), cb, &out, &err), SQLITE_OK) << (err ? err : "");
  sqlite3_free(err);
  sqlite3_close(db);
  return out;
}

TEST_F(LedgerTest, GatewayIdIsTheKeyAndClientIdsMayRepeat) {
  auto l = Ledger::open(db());
  ASSERT_TRUE(l.ok()) << l.error().message;
  // Two tenants send the same x-request-id: two requests, two rows.
  for (const char* tenant : {"acme", "beta"}) {
    auto e = entry(tenant, new_ledger_id(), kT0, 100);
    e.client_request_id = "same-id";
    (*l)->append(e, {});
  }
  (*l)->flush();
  EXPECT_EQ((*l)->totals().requests, 2);
  EXPECT_EQ(sql(db(), "SELECT tenant, client_request_id, usage_source FROM spend ORDER BY tenant"),
            "acme|same-id|provider\nbeta|same-id|provider\n");
}

TEST_F(LedgerTest, LedgerIdsAreUuidV7AndSortByTime) {
  std::set<std::string> seen;
  std::string prev;
  for (int i = 0; i < 3; ++i) {
    std::string id = new_ledger_id();
    ASSERT_EQ(id.size(), 36u) << id;
    EXPECT_EQ(id[14], '7') << id;                                   // version
    EXPECT_NE(std::string("89ab").find(id[19]), std::string::npos) << id;  // variant
    EXPECT_TRUE(seen.insert(id).second);
    if (!prev.empty()) {
      EXPECT_LT(prev.substr(0, 13), id.substr(0, 13)) << "later ms sorts later";
    }
    prev = id;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
}

TEST_F(LedgerTest, MigratesAVersion1Ledger) {
  // The version-1 layout: the client's request id was unique with the attempt.
  sql(db(), "CREATE TABLE spend (id INTEGER PRIMARY KEY, ts_ms INTEGER NOT NULL, tenant TEXT NOT NULL,"
            " key_id TEXT NOT NULL, request_id TEXT NOT NULL, attempt INTEGER NOT NULL, deployment TEXT NOT NULL,"
            " status TEXT NOT NULL, prompt_tokens INTEGER NOT NULL, cached_tokens INTEGER NOT NULL,"
            " cache_write_tokens INTEGER NOT NULL, completion_tokens INTEGER NOT NULL,"
            " reasoning_tokens INTEGER NOT NULL, cost_pico INTEGER NOT NULL, UNIQUE (request_id, attempt));"
            "CREATE INDEX spend_tenant_ts ON spend (tenant, ts_ms); CREATE INDEX spend_ts ON spend (ts_ms);"
            "INSERT INTO spend VALUES (1, 1764000000000, 'acme', 'k1', 'client-7', 1, 'qwen/flash', 'ok',"
            " 100, 40, 0, 20, 5, 1000), (2, 1764000000001, 'beta', 'k2', 'client-8', 1, 'qwen/flash', 'ok',"
            " 10, 0, 0, 2, 0, 30); PRAGMA user_version=1;");
  {
    auto l = Ledger::open(db());
    ASSERT_TRUE(l.ok()) << l.error().message;
    EXPECT_EQ((*l)->totals().requests, 2);
    EXPECT_EQ((*l)->spent("acme", 0).pico, 1000);
    auto e = entry("beta", new_ledger_id(), kT0, 5);
    e.client_request_id = "client-8";  // reused by a new request: a new row
    (*l)->append(e, {});
  }
  EXPECT_EQ(sql(db(), "SELECT id, request_id, client_request_id, usage_source, cost_pico FROM spend WHERE id < 3"),
            "1|v1-1|client-7|provider|1000\n2|v1-2|client-8|provider|30\n");
  EXPECT_EQ(sql(db(), "SELECT COUNT(*) FROM spend WHERE client_request_id = 'client-8'"), "2\n");
  EXPECT_EQ(sql(db(), "PRAGMA user_version"), "3\n");
  EXPECT_EQ(sql(db(), "PRAGMA integrity_check"), "ok\n");
  EXPECT_EQ(sql(db(), "SELECT COUNT(*) FROM spend WHERE baseline_pico IS NULL"), "3\n");
  auto again = Ledger::open(db());  // opening a migrated file changes nothing
  ASSERT_TRUE(again.ok()) << again.error().message;
  EXPECT_EQ((*again)->totals().requests, 3);
}

TEST_F(LedgerTest, WalStaysBoundedUnderLoadAndIsTruncatedWhenIdleAndOnClose) {
  auto l = Ledger::open(db());
  ASSERT_TRUE(l.ok()) << l.error().message;
  // 100 commits of 200 entries, no idle gap: only the size-triggered checkpoints can bound the WAL.
  uint64_t peak = 0;
  for (int c = 0; c < 100; ++c) {
    for (int i = 0; i < 200; ++i) (*l)->append(entry("acme", new_ledger_id(), kT0 + i, 1), {});
    (*l)->flush();
    peak = std::max(peak, size_of(db() + "-wal"));
  }
  EXPECT_GT((*l)->checkpoints(), 0u);
  // kCheckpointPages pages plus one commit's pages (the WAL is reused from its start after a
  // completed checkpoint, so it never grows past that).
  EXPECT_LT(peak, uint64_t{2} * Ledger::kCheckpointPages * 4096) << "WAL peak " << peak;
  EXPECT_GT(size_of(db()), uint64_t{20000} * 50) << "rows reached the database file";
  // Idle: truncated after kIdleCheckpoint (bounded wait, 10x margin).
  auto until = std::chrono::steady_clock::now() + 10 * Ledger::kIdleCheckpoint;
  while (size_of(db() + "-wal") > 0 && std::chrono::steady_clock::now() < until)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_EQ(size_of(db() + "-wal"), 0u) << "idle WAL truncated";
  (*l)->append(entry("acme", new_ledger_id(), kT0, 1), {});
  (*l)->flush();
  EXPECT_GT(size_of(db() + "-wal"), 0u);
  l->reset();  // close: TRUNCATE checkpoint first
  EXPECT_EQ(size_of(db() + "-wal"), 0u) << "closed ledger leaves no WAL content";
  EXPECT_EQ(sql(db(), "SELECT COUNT(*) FROM spend"), "20001\n");
}


LedgerEntry with_baseline(LedgerEntry e, int64_t baseline_pico) {
  e.baseline_cost = core::Money{baseline_pico};
  return e;
}

TEST_F(LedgerTest, BaselineCostIsStoredOrNullAndReportedAsSavings) {
  auto l = Ledger::open(db());
  ASSERT_TRUE(l.ok()) << l.error().message;
  (*l)->append(with_baseline(entry("acme", "a", kT0, 1'000, "qwen/flash"), 9'000), {});
  (*l)->append(with_baseline(entry("acme", "b", kT0 + kDay, 2'000, "deepseek/flash"), 1'500), {});  // cost more
  (*l)->append(entry("acme", "c", kT0 + kDay, 4'000, "qwen/flash"), {});  // no baseline: not in the saving
  (*l)->append(with_baseline(entry("beta", "d", kT0, 10, "qwen/flash"), 0), {});  // a free baseline is not "none"
  (*l)->append(with_baseline(entry("acme", "a", kT0, 1'000, "qwen/flash"), 777), {});  // replay: ignored
  (*l)->flush();
  EXPECT_EQ(sql(db(), "SELECT request_id, IFNULL(baseline_pico, 'null') FROM spend ORDER BY request_id"),
            "a|9000\nb|1500\nc|null\nd|0\n");
  auto r = (*l)->report_json("tenant", 0, kT0 + 10 * kDay, true);
  ASSERT_TRUE(r.ok());
  EXPECT_NE(r->find("\"savings\":true"), std::string::npos);
  // acme: baseline 9000 + 1500 over rows costing 1000 + 2000: saved 7500; row c is outside it.
  EXPECT_NE(r->find("{\"key\":\"acme\",\"requests\":3,"), std::string::npos) << *r;
  EXPECT_NE(r->find("\"cost_pico\":7000,\"baselined_requests\":2,\"baselined_cost_pico\":3000,"
                    "\"baseline_usd\":\"0.000000011\",\"baseline_pico\":10500,\"saved_usd\":\"0.000000008\",\"saved_pico\":7500}"),
            std::string::npos)
      << *r;
  EXPECT_NE(r->find("\"key\":\"beta\",\"requests\":1,"), std::string::npos);
  EXPECT_NE(r->find("\"baselined_requests\":1,\"baselined_cost_pico\":10,\"baseline_usd\":\"0.0\",\"baseline_pico\":0,"
                    "\"saved_usd\":\"0.0\",\"saved_pico\":-10}"),
            std::string::npos)
      << *r;
  EXPECT_NE(r->find("\"total\":{\"requests\":4,"), std::string::npos);
  EXPECT_NE(r->find("\"baseline_pico\":10500,\"saved_usd\":\"0.000000007\",\"saved_pico\":7490}}"), std::string::npos) << *r;
  // By day: the saving of day 2 is the row that cost more than its baseline.
  auto d = (*l)->report_json("day", 0, kT0 + 10 * kDay, true);
  ASSERT_TRUE(d.ok());
  EXPECT_NE(d->find("\"key\":\"2025-11-25\",\"requests\":2,"), std::string::npos) << *d;
  EXPECT_NE(d->find("\"baseline_pico\":1500,\"saved_usd\":\"-0.000000001\",\"saved_pico\":-500}"), std::string::npos) << *d;
  // Without the flag the report is what it was.
  auto plain = (*l)->report_json("tenant", 0, kT0 + 10 * kDay);
  ASSERT_TRUE(plain.ok());
  EXPECT_EQ(plain->find("baseline"), std::string::npos);
  EXPECT_EQ(plain->find("savings"), std::string::npos);
  // The CLI's table: a row without any baseline shows "-", not a saving of 0.
  (*l)->append(entry("gamma", "e", kT0, 5, "qwen/flash"), {});
  (*l)->flush();
  auto t = (*l)->report_table("tenant", 0, kT0 + 10 * kDay, true);
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(*t,
            "tenant  requests  prompt  completion     cost_usd  baselined  baseline_usd    saved_usd\n"
            "acme           3     300          60  0.000000007          2   0.000000011  0.000000008\n"
            "beta           1     100          20          0.0          1           0.0          0.0\n"
            "gamma          1     100          20          0.0          0             -            -\n"
            "total          5     500         100  0.000000007          3   0.000000011  0.000000007\n");
}

TEST_F(LedgerTest, MigratesAVersion2LedgerInPlace) {
  // The version-2 layout: no baseline_pico column.
  sql(db(), "CREATE TABLE spend (id INTEGER PRIMARY KEY, ts_ms INTEGER NOT NULL, tenant TEXT NOT NULL,"
            " key_id TEXT NOT NULL, request_id TEXT NOT NULL, client_request_id TEXT NOT NULL DEFAULT '',"
            " attempt INTEGER NOT NULL, deployment TEXT NOT NULL, status TEXT NOT NULL,"
            " usage_source TEXT NOT NULL DEFAULT 'provider', prompt_tokens INTEGER NOT NULL,"
            " cached_tokens INTEGER NOT NULL, cache_write_tokens INTEGER NOT NULL, completion_tokens INTEGER NOT NULL,"
            " reasoning_tokens INTEGER NOT NULL, cost_pico INTEGER NOT NULL, UNIQUE (request_id, attempt));"
            "INSERT INTO spend (ts_ms, tenant, key_id, request_id, attempt, deployment, status, prompt_tokens,"
            " cached_tokens, cache_write_tokens, completion_tokens, reasoning_tokens, cost_pico)"
            " VALUES (1764000000000, 'acme', 'k1', 'old-1', 1, 'qwen/flash', 'ok', 100, 0, 0, 20, 0, 1000);"
            "PRAGMA user_version=2;");
  {
    auto l = Ledger::open(db());
    ASSERT_TRUE(l.ok()) << l.error().message;
    (*l)->append(with_baseline(entry("acme", "new-1", kT0, 2'000), 5'000), {});
    auto replay = with_baseline(entry("acme", "old-1", kT0, 1'000), 5'000);  // a replay of the old row
    replay.attempt = 1;
    (*l)->append(replay, {});
    (*l)->flush();
    auto r = (*l)->report_json("tenant", 0, kT0 + kDay, true);
    ASSERT_TRUE(r.ok());
    EXPECT_NE(r->find("\"requests\":2,"), std::string::npos) << *r;
    EXPECT_NE(r->find("\"baselined_requests\":1,\"baselined_cost_pico\":2000,"), std::string::npos) << *r;
    EXPECT_NE(r->find("\"saved_pico\":3000}"), std::string::npos) << *r;
  }
  EXPECT_EQ(sql(db(), "PRAGMA user_version"), "3\n");
  EXPECT_EQ(sql(db(), "SELECT request_id, IFNULL(baseline_pico, 'null') FROM spend ORDER BY id"), "old-1|null\nnew-1|5000\n");
  EXPECT_EQ(sql(db(), "PRAGMA integrity_check"), "ok\n");
  auto again = Ledger::open(db());  // a second open finds the column and adds nothing
  ASSERT_TRUE(again.ok()) << again.error().message;
  EXPECT_EQ((*again)->totals().requests, 2);
}

TEST_F(LedgerTest, RecoveryFileIsImportedOnceAtOpen) {
  {
    auto l = Ledger::open(db());
    ASSERT_TRUE(l.ok()) << l.error().message;
  }
  {
    std::ofstream f(db() + ".recovery.jsonl");
    f << R"({"ts_ms":1764000000000,"tenant":"acme","key_id":"k1","request_id":"0190-a","client_request_id":"c\"1","attempt":1,"deployment":"qwen/flash","status":"error:cancelled","usage_source":"estimated","prompt_tokens":9,"cached_tokens":0,"cache_write_tokens":0,"completion_tokens":3,"reasoning_tokens":0,"cost_pico":150000000})"
      << "\n"
      << R"({"ts_ms":1764000000001,"tenant":"acme","key_id":"k1","request_id":"0190-b","client_request_id":"","attempt":1,"deployment":"qwen/flash","status":"ok","usage_source":"provider","prompt_tokens":100,"cached_tokens":40,"cache_write_tokens":0,"completion_tokens":20,"reasoning_tokens":5,"cost_pico":1000,"baseline_pico":4200})"
      << "\n"
      << R"({"ts_ms":1764000000002,"tenant":"acme","key_id":"k1","request_id":"0190-c","client_request_id":"","attempt":1,"deployment":"qwen/flash","status":"ok","usage_source":"provider","prompt_tokens":1,"cached_tokens":0,"cache_write_tokens":0,"completion_tokens":1,"reasoning_tokens":0,"cost_pico":7,"baseline_pico":null})"
      << "\n"
      << R"({"ts_ms":17640000)";  // a line torn by a full disk (its entry went to stderr too)
  }
  for (int round = 0; round < 2; ++round) {
    auto l = Ledger::open(db());
    ASSERT_TRUE(l.ok()) << l.error().message;
    EXPECT_EQ((*l)->recovered_on_open(), round == 0 ? 3u : 0u);
    EXPECT_EQ((*l)->totals().requests, 3);
    EXPECT_EQ((*l)->spent("acme", 0).pico, 150001007);
    EXPECT_FALSE(fs::exists(db() + ".recovery.jsonl"));
  }
  EXPECT_EQ(sql(db(), "SELECT client_request_id, usage_source, completion_tokens FROM spend WHERE request_id = '0190-a'"),
            "c\"1|estimated|3\n");
  EXPECT_EQ(sql(db(), "SELECT request_id, IFNULL(baseline_pico, 'null') FROM spend ORDER BY request_id"),
            "0190-a|null\n0190-b|4200\n0190-c|null\n");
}

// A disk that stops taking writes (RLIMIT_FSIZE stands in for a full file system: writes past it
// fail with EFBIG): failing() says so, entries are kept and retried, and at close the unwritten
// ones go to the recovery file, which the next open imports.
TEST_F(LedgerTest, FailingDiskIsReportedAndUnwrittenEntriesSurviveClose) {
  ::signal(SIGXFSZ, SIG_IGN);
  rlimit old{};
  ASSERT_EQ(getrlimit(RLIMIT_FSIZE, &old), 0);
  struct Restore {
    rlimit r;
    ~Restore() { setrlimit(RLIMIT_FSIZE, &r); }
  } restore{old};
  {
    auto l = Ledger::open(db());
    ASSERT_TRUE(l.ok()) << l.error().message;
    (*l)->append(entry("acme", new_ledger_id(), kT0, 7), {});
    (*l)->flush();
    EXPECT_FALSE((*l)->failing());
    rlimit tight = old;
    tight.rlim_cur = std::max(size_of(db() + "-wal"), size_of(db()));  // no file may grow any more
    ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &tight), 0);
    std::atomic<int> durable{0};
    for (int i = 0; i < 50; ++i) (*l)->append(entry("acme", new_ledger_id(), kT0 + i, 10), [&] { ++durable; });
    auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (!(*l)->failing() && std::chrono::steady_clock::now() < until)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    ASSERT_TRUE((*l)->failing());
    EXPECT_FALSE((*l)->failure().empty());
    EXPECT_GT((*l)->commit_failures(), 0u);
    EXPECT_EQ(durable.load(), 0);
    EXPECT_FALSE((*l)->flush_for(std::chrono::milliseconds(200))) << "not durable while the disk fails";
  }  // close: the 50 entries cannot be committed: spilled
  setrlimit(RLIMIT_FSIZE, &old);
  ASSERT_TRUE(fs::exists(db() + ".recovery.jsonl")) << "unwritten entries saved next to the ledger";
  auto l = Ledger::open(db());
  ASSERT_TRUE(l.ok()) << l.error().message;
  EXPECT_EQ((*l)->recovered_on_open(), 50u);
  EXPECT_EQ((*l)->totals().requests, 51);
  EXPECT_EQ((*l)->spent("acme", 0).pico, 7 + 50 * 10);
}

TEST_F(LedgerTest, DiskThatRecoversWritesTheKeptEntries) {
  ::signal(SIGXFSZ, SIG_IGN);
  rlimit old{};
  ASSERT_EQ(getrlimit(RLIMIT_FSIZE, &old), 0);
  struct Restore {
    rlimit r;
    ~Restore() { setrlimit(RLIMIT_FSIZE, &r); }
  } restore{old};
  auto l = Ledger::open(db());
  ASSERT_TRUE(l.ok()) << l.error().message;
  (*l)->append(entry("acme", new_ledger_id(), kT0, 7), {});
  (*l)->flush();
  rlimit tight = old;
  tight.rlim_cur = std::max(size_of(db() + "-wal"), size_of(db()));
  ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &tight), 0);
  std::atomic<int> durable{0};
  for (int i = 0; i < 20; ++i) (*l)->append(entry("acme", new_ledger_id(), kT0 + i, 10), [&] { ++durable; });
  auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!(*l)->failing() && std::chrono::steady_clock::now() < until)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  ASSERT_TRUE((*l)->failing());
  ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &old), 0);  // space again
  EXPECT_TRUE((*l)->flush_for(std::chrono::seconds(20)));  // backoff is at most 2 s
  EXPECT_FALSE((*l)->failing());
  EXPECT_EQ(durable.load(), 20);
  EXPECT_EQ((*l)->totals().requests, 21);
}


TEST_F(LedgerTest, RetentionPrunesOldEntriesInChunksAndKeepsTheRest) {
  auto l = Ledger::open(db());
  ASSERT_TRUE(l.ok()) << l.error().message;
  const int64_t now = std::chrono::duration_cast<std::chrono::milliseconds>(
                          std::chrono::system_clock::now().time_since_epoch()).count();
  const int old_rows = Ledger::kPruneChunk + 5;  // more than one chunk
  for (int i = 0; i < old_rows; ++i) (*l)->append(entry("acme", new_ledger_id(), now - 40 * kDay - i, 1), {});
  for (int i = 0; i < 7; ++i) (*l)->append(entry("acme", new_ledger_id(), now - 30 * kDay + i, 100), {});
  (*l)->flush();
  (*l)->set_retention(std::chrono::hours(24) * 35);
  auto until = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while ((*l)->pruned() < uint64_t(old_rows) && std::chrono::steady_clock::now() < until)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_EQ((*l)->pruned(), uint64_t(old_rows));
  EXPECT_EQ((*l)->totals().requests, 7);
  EXPECT_EQ((*l)->spent("acme", 0).pico, 700);
}

}  // namespace gateway
