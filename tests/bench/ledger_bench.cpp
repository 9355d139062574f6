// Ledger commit latency: time from append() to on_durable, which the gateway waits for before it
// sends a response's final bytes. Two shapes:
//   closed loop: C concurrent "requests", each appends and waits for durability before the next
//                (what the gateway does; group commit batches the concurrent ones);
//   burst:       N appends as fast as one thread can issue them (queueing delay dominates).
// Then a volume run: `volume` entries (default 1,000,000) from 16 closed-loop appenders, with the
// WAL file's size sampled every 5 ms (its peak is the bound CONFIGURATION.md states), the database
// size per row at the end, and append->durable p50/p99; then the ledger is closed and the WAL's
// size after the closing TRUNCATE checkpoint is printed (0 expected).
// Usage: ledger_bench [path=/tmp/ledger_bench.db] [total=20000] [volume=1000000]
// A postgres:// URL instead of a path measures the PostgreSQL store (the volume run, which samples
// the SQLite WAL, is skipped; every entry has a fresh id, so runs add rows to the database).
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <filesystem>
#include <mutex>
#include <thread>
#include <vector>

#include "gateway/state/ledger.h"

using Clock = std::chrono::steady_clock;

namespace {

gateway::LedgerEntry entry(const std::string& rid) {
  gateway::LedgerEntry e;
  e.ts_ms = 1'764'000'000'000;
  e.tenant = "acme";
  e.key_id = "k1";
  e.request_id = gateway::new_ledger_id();
  e.client_request_id = rid;
  e.deployment = "qwen/qwen-flash@cn-beijing";
  e.status = "ok";
  e.usage = {1200, 800, 0, 350, 120, true};
  e.cost = core::Money{123'456'789};
  return e;
}

// Appends one entry and waits until it is durable; returns that latency in microseconds.
double append_durable_us(gateway::Ledger& l, gateway::LedgerEntry e) {
  std::mutex m;
  std::condition_variable cv;
  bool done = false;
  auto start = Clock::now();
  l.append(std::move(e), [&] {
    std::lock_guard lk(m);
    done = true;
    cv.notify_one();
  });
  std::unique_lock lk(m);
  cv.wait(lk, [&] { return done; });
  return std::chrono::duration<double, std::micro>(Clock::now() - start).count();
}

void report(const char* name, std::vector<double>& us, double wall_s) {
  std::sort(us.begin(), us.end());
  auto q = [&](double p) { return us[std::min(us.size() - 1, static_cast<size_t>(p * us.size()))]; };
  std::printf("%-28s n=%zu  p50=%.1f us  p90=%.1f us  p99=%.1f us  max=%.1f us  throughput=%.0f entries/s\n", name,
              us.size(), q(0.5), q(0.9), q(0.99), us.back(), us.size() / wall_s);
}

bool is_postgres(const std::string& path) { return path.rfind("postgres://", 0) == 0 || path.rfind("postgresql://", 0) == 0; }

void fresh(const std::string& path) {
  if (is_postgres(path)) return;
  for (const char* suffix : {"", "-wal", "-shm"}) std::filesystem::remove(path + suffix);
}

core::Result<std::unique_ptr<gateway::Ledger>> open_ledger(const std::string& path) {
  return is_postgres(path) ? gateway::Ledger::open_postgres(path) : gateway::Ledger::open(path);
}

void closed_loop(const std::string& path, int total, int concurrency) {
  fresh(path);
  auto l = open_ledger(path);
  if (!l.ok()) {
    std::fprintf(stderr, "%s\n", l.error().message.c_str());
    std::exit(1);
  }
  std::vector<std::vector<double>> lat(concurrency);
  auto t0 = Clock::now();
  std::vector<std::thread> th;
  for (int c = 0; c < concurrency; ++c)
    th.emplace_back([&, c] {
      for (int i = c; i < total; i += concurrency) lat[c].push_back(append_durable_us(**l, entry("c" + std::to_string(i))));
    });
  for (auto& t : th) t.join();
  double wall = std::chrono::duration<double>(Clock::now() - t0).count();
  std::vector<double> all;
  for (auto& v : lat) all.insert(all.end(), v.begin(), v.end());
  char name[64];
  std::snprintf(name, sizeof name, "closed loop, %d in flight", concurrency);
  report(name, all, wall);
  std::printf("%-28s commits=%llu (avg batch %.1f)\n", "", static_cast<unsigned long long>((*l)->commits()),
              static_cast<double>(total) / static_cast<double>((*l)->commits()));
}

void burst(const std::string& path, int total) {
  fresh(path);
  auto l = open_ledger(path);
  if (!l.ok()) std::exit(1);
  std::vector<Clock::time_point> start(total);
  std::vector<double> us(total);
  auto t0 = Clock::now();
  for (int i = 0; i < total; ++i) {
    start[i] = Clock::now();
    (*l)->append(entry("b" + std::to_string(i)),
                 [&, i] { us[i] = std::chrono::duration<double, std::micro>(Clock::now() - start[i]).count(); });
  }
  (*l)->flush();
  double wall = std::chrono::duration<double>(Clock::now() - t0).count();
  report("burst, one appender", us, wall);
  std::printf("%-28s commits=%llu (avg batch %.1f)\n", "", static_cast<unsigned long long>((*l)->commits()),
              static_cast<double>(total) / static_cast<double>((*l)->commits()));
}

uint64_t file_size(const std::string& p) {
  struct stat st {};
  return ::stat(p.c_str(), &st) == 0 ? static_cast<uint64_t>(st.st_size) : 0;
}

void volume(const std::string& path, int total) {
  constexpr int kConcurrency = 16;
  fresh(path);
  auto opened = gateway::Ledger::open(path);
  if (!opened.ok()) {
    std::fprintf(stderr, "%s\n", opened.error().message.c_str());
    std::exit(1);
  }
  std::unique_ptr<gateway::Ledger> l = std::move(opened).value();
  std::atomic<bool> done_all{false};
  std::atomic<uint64_t> wal_peak{0};
  std::thread sampler([&] {
    while (!done_all.load()) {
      uint64_t w = file_size(path + "-wal");
      if (w > wal_peak.load()) wal_peak.store(w);
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  });
  std::vector<std::vector<double>> lat(kConcurrency);
  auto t0 = Clock::now();
  std::vector<std::thread> th;
  for (int c = 0; c < kConcurrency; ++c)
    th.emplace_back([&, c] {
      lat[c].reserve(total / kConcurrency + 1);
      for (int i = c; i < total; i += kConcurrency) lat[c].push_back(append_durable_us(*l, entry("v" + std::to_string(i))));
    });
  for (auto& t : th) t.join();
  double wall = std::chrono::duration<double>(Clock::now() - t0).count();
  done_all = true;
  sampler.join();
  std::vector<double> all;
  for (auto& v : lat) all.insert(all.end(), v.begin(), v.end());
  report("volume, 16 in flight", all, wall);
  const uint64_t rows = static_cast<uint64_t>(l->totals().requests);
  std::printf("%-28s commits=%llu checkpoints=%llu WAL peak=%.2f MiB\n", "",
              static_cast<unsigned long long>(l->commits()), static_cast<unsigned long long>(l->checkpoints()),
              static_cast<double>(wal_peak.load()) / (1 << 20));
  l.reset();  // closes: TRUNCATE checkpoint
  const uint64_t db = file_size(path);
  std::printf("%-28s rows=%llu database=%.1f MiB (%.1f bytes/row)  WAL after close=%llu bytes\n", "",
              static_cast<unsigned long long>(rows), static_cast<double>(db) / (1 << 20),
              rows ? static_cast<double>(db) / static_cast<double>(rows) : 0.0,
              static_cast<unsigned long long>(file_size(path + "-wal")));
}

}  // namespace

int main(int argc, char** argv) {
  std::string path = argc > 1 ? argv[1] : "/tmp/ledger_bench-" + std::to_string(::getpid()) + ".db";
  int total = argc > 2 ? std::atoi(argv[2]) : 20000;
  int volume_entries = argc > 3 ? std::atoi(argv[3]) : 1'000'000;
  std::printf("ledger_bench: %s, %d entries per run, %s\n", is_postgres(path) ? "PostgreSQL" : path.c_str(), total,
              is_postgres(path) ? "the server's synchronous_commit" : "WAL + synchronous=NORMAL");
  closed_loop(path, total, 1);
  closed_loop(path, total, 16);
  closed_loop(path, total, 64);
  burst(path, total);
  if (volume_entries > 0 && !is_postgres(path)) volume(path, volume_entries);
  fresh(path);
  return 0;
}
