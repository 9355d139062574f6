#include "gateway/state/ledger.h"

#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <random>

#include "core/json_writer.h"
#include "gateway/state/ledger_error.h"
#include "gateway/state/ledger_postgres.h"
#include "gateway/state/ledger_sqlite.h"

namespace gateway {
namespace {

// One entry as a JSON object (the recovery file's and stderr's line format).
std::string entry_json(const LedgerEntry& e) {
  std::string s = "{\"ts_ms\":" + std::to_string(e.ts_ms);
  auto str = [&s](const char* k, const std::string& v) {
    s += ",\"";
    s += k;
    s += "\":";
    core::append_json_string(s, v);
  };
  auto num = [&s](const char* k, int64_t v) { s += ",\"" + std::string(k) + "\":" + std::to_string(v); };
  str("tenant", e.tenant);
  str("key_id", e.key_id);
  str("request_id", e.request_id);
  str("client_request_id", e.client_request_id);
  num("attempt", e.attempt);
  str("deployment", e.deployment);
  str("status", e.status);
  str("usage_source", e.usage_source);
  num("prompt_tokens", e.usage.prompt_tokens);
  num("cached_tokens", e.usage.cached_tokens);
  num("cache_write_tokens", e.usage.cache_write_tokens);
  num("completion_tokens", e.usage.completion_tokens);
  num("reasoning_tokens", e.usage.reasoning_tokens);
  num("cost_pico", e.cost.pico);
  if (e.baseline_cost) num("baseline_pico", e.baseline_cost->pico);
  s += "}";
  return s;
}

// The inverse of entry_json (JSON is YAML's flow syntax, so yaml-cpp reads it); false if the line
// is not such an object (a torn last line).
bool entry_from_json(const std::string& line, LedgerEntry& e) {
  try {
    YAML::Node n = YAML::Load(line);
    if (!n.IsMap() || !n["request_id"] || !n["cost_pico"]) return false;
    e.ts_ms = n["ts_ms"].as<int64_t>();
    e.tenant = n["tenant"].as<std::string>();
    e.key_id = n["key_id"].as<std::string>();
    e.request_id = n["request_id"].as<std::string>();
    e.client_request_id = n["client_request_id"].as<std::string>();
    e.attempt = n["attempt"].as<int>();
    e.deployment = n["deployment"].as<std::string>();
    e.status = n["status"].as<std::string>();
    e.usage_source = n["usage_source"].as<std::string>();
    e.usage.prompt_tokens = n["prompt_tokens"].as<int64_t>();
    e.usage.cached_tokens = n["cached_tokens"].as<int64_t>();
    e.usage.cache_write_tokens = n["cache_write_tokens"].as<int64_t>();
    e.usage.completion_tokens = n["completion_tokens"].as<int64_t>();
    e.usage.reasoning_tokens = n["reasoning_tokens"].as<int64_t>();
    e.usage.present = true;
    e.cost = core::Money{n["cost_pico"].as<int64_t>()};
    // Absent or null (a row exported from the database): no baseline.
    if (n["baseline_pico"] && !n["baseline_pico"].IsNull())
      e.baseline_cost = core::Money{n["baseline_pico"].as<int64_t>()};
    return true;
  } catch (const YAML::Exception&) {
    return false;
  }
}

}  // namespace

std::string new_ledger_id() {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  const uint64_t ms = static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                                std::chrono::system_clock::now().time_since_epoch()).count());
  const uint64_t r1 = rng(), r2 = rng();
  unsigned char b[16];
  for (int i = 0; i < 6; ++i) b[i] = static_cast<unsigned char>(ms >> (40 - 8 * i));
  b[6] = static_cast<unsigned char>(0x70 | ((r1 >> 8) & 0x0f));  // version 7
  b[7] = static_cast<unsigned char>(r1);
  b[8] = static_cast<unsigned char>(0x80 | ((r1 >> 16) & 0x3f));  // RFC 4122 variant
  for (int i = 9; i < 16; ++i) b[i] = static_cast<unsigned char>(r2 >> (8 * (i - 9)));
  // Formatted into a local buffer: appending to the string a character at a time cost ~600
  // instructions per request (a capacity check per character).
  static constexpr char hex[] = "0123456789abcdef";
  char out[36];
  char* o = out;
  for (int i = 0; i < 16; ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) *o++ = '-';
    *o++ = hex[b[i] >> 4];
    *o++ = hex[b[i] & 15];
  }
  return std::string(out, sizeof out);
}

core::Result<std::unique_ptr<Ledger>> Ledger::open(const std::string& path, size_t max_queue, bool fsync_commits) {
  auto store = SqliteLedgerStore::open(path, fsync_commits);
  if (!store) return std::move(store).error();
  return open_store(std::move(store).value(), max_queue, path + ".recovery.jsonl");
}

core::Result<std::unique_ptr<Ledger>> Ledger::open_postgres(const std::string& conninfo, size_t max_queue,
                                                            std::string recovery_path) {
  auto store = PostgresLedgerStore::open(conninfo);
  if (!store) return std::move(store).error();
  return open_store(std::move(store).value(), max_queue, std::move(recovery_path));
}

core::Result<std::unique_ptr<Ledger>> Ledger::open_store(std::unique_ptr<LedgerStore> store, size_t max_queue,
                                                         std::string recovery_path) {
  std::unique_ptr<Ledger> l(new Ledger());
  l->store_ = std::move(store);
  l->recovery_path_ = std::move(recovery_path);
  l->max_queue_ = max_queue == 0 ? 1 : max_queue;
  if (auto st = l->import_recovery(); !st) return st.error();
  l->writer_ = std::thread([p = l.get()] { p->writer_loop(); });
  return l;
}

Ledger::~Ledger() { close(); }

void Ledger::close() {
  if (writer_.joinable()) {
    {
      std::lock_guard lk(mu_);
      stop_ = true;
    }
    not_empty_.notify_all();
    not_full_.notify_all();
    writer_.join();  // the writer's last act is the store's close_idle (or the spill)
  }
}

core::Status Ledger::import_recovery() {
  if (recovery_path_.empty()) return core::ok_status();
  const std::string& rp = recovery_path_;
  std::ifstream in(rp);
  if (!in) return core::ok_status();  // none: the usual case
  std::deque<Pending> batch;
  std::string line;
  size_t lineno = 0;
  while (std::getline(in, line)) {
    ++lineno;
    if (line.empty()) continue;
    Pending p;
    if (!entry_from_json(line, p.entry)) {
      // A line torn by a full disk: its entry was also printed to stderr when it was spilled.
      std::fprintf(stderr, "gateway: spend ledger %s: recovery file line %zu is not an entry, skipped: %s\n",
                   path().c_str(), lineno, line.c_str());
      continue;
    }
    batch.push_back(std::move(p));
  }
  std::string err;
  if (!batch.empty() && !commit_batch(batch, &err))
    return ledger_error(path(), "cannot import the recovery file " + rp + ": " + err);
  if (::unlink(rp.c_str()) != 0)
    return ledger_error(path(), "imported the recovery file " + rp + " but cannot remove it: " + std::strerror(errno));
  recovered_on_open_ = batch.size();
  std::fprintf(stderr, "gateway: spend ledger %s: imported %zu entries from %s\n", path().c_str(), batch.size(),
               rp.c_str());
  return core::ok_status();
}

void Ledger::spill(const std::deque<Pending>& entries) {
  if (entries.empty()) return;
  std::string text;
  for (const auto& p : entries) text += entry_json(p.entry) + "\n";
  const std::string& rp = recovery_path_;
  bool ok = false;
  int saved_errno = 0;
  if (!rp.empty()) {
    if (FILE* f = std::fopen(rp.c_str(), "a")) {
      ok = std::fwrite(text.data(), 1, text.size(), f) == text.size() && std::fflush(f) == 0 && ::fsync(fileno(f)) == 0;
      ok = (std::fclose(f) == 0) && ok;
    }
    saved_errno = errno;
  }
  if (ok) {
    std::fprintf(stderr, "gateway: spend ledger %s: %zu unwritten entries saved to %s; the next start imports them\n",
                 path().c_str(), entries.size(), rp.c_str());
    return;
  }
  if (rp.empty())
    std::fprintf(stderr, "gateway: spend ledger %s: closing with %zu unwritten entries (no recovery file); they follow\n",
                 path().c_str(), entries.size());
  else
    std::fprintf(stderr,
                 "gateway: spend ledger %s: cannot write the recovery file %s (%s); the %zu unwritten entries follow\n",
                 path().c_str(), rp.c_str(), std::strerror(saved_errno), entries.size());
  for (const auto& p : entries)
    std::fprintf(stderr, "gateway: spend ledger unwritten: %s\n", entry_json(p.entry).c_str());
  std::fflush(stderr);
}

void Ledger::set_retention(std::chrono::milliseconds keep) {
  std::lock_guard lk(mu_);
  retention_ms_ = keep.count();
  next_prune_ = std::chrono::steady_clock::now();  // the first prune runs at once
  not_empty_.notify_all();
}

void Ledger::prune() {
  int64_t retention_ms = 0;
  {
    std::lock_guard lk(mu_);
    retention_ms = retention_ms_;
  }
  next_prune_ = std::chrono::steady_clock::now() + kPruneInterval;
  const int64_t cutoff = std::chrono::duration_cast<std::chrono::milliseconds>(
                             std::chrono::system_clock::now().time_since_epoch()).count() - retention_ms;
  const int64_t total = store_->prune(cutoff, [this] {
    std::lock_guard lk(mu_);
    return stop_ || !queue_.empty();
  });
  pruned_.fetch_add(static_cast<uint64_t>(total), std::memory_order_relaxed);
  if (total > 0)
    std::fprintf(stderr, "gateway: spend ledger %s: pruned %lld entries older than %lld days\n", path().c_str(),
                 static_cast<long long>(total), static_cast<long long>(retention_ms / 86'400'000));
}

std::string Ledger::failure() const {
  std::lock_guard lk(mu_);
  return last_error_;
}

void Ledger::set_failing(const std::string& error) {
  {
    std::lock_guard lk(mu_);
    last_error_ = error;
  }
  failing_.store(true, std::memory_order_relaxed);
}

void Ledger::clear_failing() {
  if (failing_.exchange(false, std::memory_order_relaxed))
    std::fprintf(stderr, "gateway: spend ledger %s: writing again\n", path().c_str());
}

bool Ledger::commit_with_retry(std::deque<Pending>& batch) {
  auto backoff = std::chrono::milliseconds(50);
  std::string error;
  while (!commit_batch(batch, &error)) {
    commit_failures_.fetch_add(1, std::memory_order_relaxed);
    set_failing(error);
    std::fprintf(stderr, "gateway: spend ledger %s: commit of %zu entries failed, retrying in %lld ms: %s\n",
                 path().c_str(), batch.size(), static_cast<long long>(backoff.count()), error.c_str());
    std::unique_lock lk(mu_);
    if (not_empty_.wait_for(lk, backoff, [&] { return stop_; })) return false;
    backoff = std::min(backoff * 2, std::chrono::milliseconds(2000));
  }
  clear_failing();
  return true;
}

void Ledger::append(LedgerEntry e, std::function<void()> on_durable) {
  std::unique_lock lk(mu_);
  not_full_.wait(lk, [&] { return queue_.size() < max_queue_ || stop_; });
  if (stop_) {  // closed: the writer is gone; the entry is recorded, not queued
    lk.unlock();
    spill(std::deque<Pending>(1, Pending{std::move(e), nullptr}));
    return;
  }
  queue_.push_back(Pending{std::move(e), std::move(on_durable)});
  ++appended_;
  lk.unlock();
  not_empty_.notify_one();
}

bool Ledger::append_for(LedgerEntry e, std::function<void()> on_durable, std::chrono::milliseconds max_wait) {
  std::unique_lock lk(mu_);
  if (!not_full_.wait_for(lk, max_wait, [&] { return queue_.size() < max_queue_ || stop_; })) return false;
  if (stop_) {  // closed: recorded in the recovery file (or stderr), never durable here
    lk.unlock();
    spill(std::deque<Pending>(1, Pending{std::move(e), nullptr}));
    return false;
  }
  queue_.push_back(Pending{std::move(e), std::move(on_durable)});
  ++appended_;
  lk.unlock();
  not_empty_.notify_one();
  return true;
}

void Ledger::flush() {
  std::unique_lock lk(mu_);
  uint64_t target = appended_;
  durable_cv_.wait(lk, [&] { return durable_ >= target; });
}

bool Ledger::flush_for(std::chrono::milliseconds max_wait) {
  std::unique_lock lk(mu_);
  uint64_t target = appended_;
  return durable_cv_.wait_for(lk, max_wait, [&] { return durable_ >= target; });
}

size_t Ledger::queue_depth() const {
  std::lock_guard lk(mu_);
  return static_cast<size_t>(appended_ - durable_);  // the batch being committed (or retried) included
}

bool Ledger::commit_batch(std::deque<Pending>& batch, std::string* error) {
  std::vector<const LedgerEntry*> entries;
  entries.reserve(batch.size());
  for (const auto& p : batch) entries.push_back(&p.entry);
  return store_->commit(entries, error);
}

// Idle work failing (PostgreSQL: the server stopped answering) is reported like a failed commit,
// so new requests are refused before one of them would need the server.
void Ledger::idle_tick() {
  std::string error;
  if (store_->idle(&error)) {
    clear_failing();
    return;
  }
  if (!failing_.load(std::memory_order_relaxed))
    std::fprintf(stderr, "gateway: spend ledger %s: cannot write: %s\n", path().c_str(), error.c_str());
  set_failing(error);
}

void Ledger::wait_for_work(std::unique_lock<std::mutex>& lk) {
  auto ready = [&] { return stop_ || !queue_.empty(); };
  for (;;) {
    using time_point = std::chrono::steady_clock::time_point;
    time_point deadline = time_point::max();
    const auto idle = store_->idle_after();
    if (idle) deadline = std::chrono::steady_clock::now() + *idle;
    if (retention_ms_ > 0) deadline = std::min(deadline, next_prune_);
    if (deadline == time_point::max()) {
      not_empty_.wait(lk, ready);
      return;
    }
    if (not_empty_.wait_until(lk, deadline, ready)) return;
    const bool prune_due = retention_ms_ > 0 && std::chrono::steady_clock::now() >= next_prune_;
    lk.unlock();
    if (prune_due) prune();
    else idle_tick();
    lk.lock();
  }
}

void Ledger::writer_loop() {
  std::deque<Pending> batch;
  for (;;) {
    {
      std::unique_lock lk(mu_);
      wait_for_work(lk);
      if (queue_.empty()) {  // stop_ and nothing left: everything appended is durable
        lk.unlock();
        store_->close_idle();
        return;
      }
      size_t n = std::min(queue_.size(), kMaxBatch);
      for (size_t i = 0; i < n; ++i) {
        batch.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
    }
    not_full_.notify_all();
    // A failing store: keep the batch and retry with backoff, never drop it. Appenders block on a
    // full queue meanwhile (append_for lets them give up instead). Closing meanwhile: whatever is
    // unwritten goes to the recovery file (or stderr), and counts as settled for flush().
    if (!commit_with_retry(batch)) {
      std::unique_lock lk(mu_);
      for (auto& p : queue_) batch.push_back(std::move(p));
      queue_.clear();
      lk.unlock();
      spill(batch);
      lk.lock();
      durable_ = appended_;
      lk.unlock();
      durable_cv_.notify_all();
      return;
    }
    commits_.fetch_add(1, std::memory_order_relaxed);
    for (auto& p : batch) {
      if (!p.on_durable) continue;
      try {
        p.on_durable();
      } catch (...) {
        std::fprintf(stderr, "gateway: spend ledger: on_durable callback threw (ignored)\n");
      }
    }
    {
      std::lock_guard lk(mu_);
      durable_ += batch.size();
    }
    durable_cv_.notify_all();
    batch.clear();
    store_->after_commit();
  }
}

namespace {

// A group's figures; with savings, also its baseline and saving (over the rows that have a baseline).
void append_spend_fields(std::string& o, const int64_t* v, bool savings) {
  o += "\"requests\":" + std::to_string(v[0]) + ",\"prompt_tokens\":" + std::to_string(v[1]) +
       ",\"cached_tokens\":" + std::to_string(v[2]) + ",\"cache_write_tokens\":" + std::to_string(v[3]) +
       ",\"completion_tokens\":" + std::to_string(v[4]) + ",\"reasoning_tokens\":" + std::to_string(v[5]) +
       ",\"cost_usd\":\"" + core::format_usd(core::Money{v[6]}) + "\",\"cost_pico\":" + std::to_string(v[6]);
  if (!savings) return;
  const core::Money baseline{v[SpendRow::kBaseline]}, covered{v[SpendRow::kBaselinedCost]};
  o += ",\"baselined_requests\":" + std::to_string(v[SpendRow::kBaselinedRows]) +
       ",\"baselined_cost_pico\":" + std::to_string(covered.pico) + ",\"baseline_usd\":\"" +
       core::format_usd(baseline) + "\",\"baseline_pico\":" + std::to_string(baseline.pico) + ",\"saved_usd\":\"" +
       core::format_usd(baseline - covered) + "\",\"saved_pico\":" + std::to_string((baseline - covered).pico);
}

}  // namespace

core::Result<std::vector<SpendRow>> Ledger::report_rows(std::string_view group_by, int64_t from_ms, int64_t to_ms) const {
  SpendGroup group;
  if (group_by == "tenant") group = SpendGroup::tenant;
  else if (group_by == "deployment") group = SpendGroup::deployment;
  else if (group_by == "day") group = SpendGroup::day;
  else
    return core::make_error(core::ErrorKind::bad_request,
                            "group_by must be tenant, deployment or day (got '" + std::string(group_by) + "')",
                            core::ErrorSource::client, "invalid_group_by", "group_by");
  return store_->report(group, from_ms, to_ms);
}

core::Result<std::string> Ledger::report_json(std::string_view group_by, int64_t from_ms, int64_t to_ms,
                                              bool savings) const {
  auto rows = report_rows(group_by, from_ms, to_ms);
  if (!rows) return std::move(rows).error();
  std::string out = "{\"group_by\":";
  core::append_json_string(out, group_by);
  out += ",\"from_ms\":" + std::to_string(from_ms) + ",\"to_ms\":" + std::to_string(to_ms);
  if (savings) out += ",\"savings\":true";
  out += ",\"rows\":[";
  int64_t tot[SpendRow::kColumns] = {};
  bool first = true;
  for (const SpendRow& r : *rows) {
    for (int i = 0; i < SpendRow::kColumns; ++i) tot[i] += r.v[i];
    out += first ? "{\"key\":" : ",{\"key\":";
    first = false;
    core::append_json_string(out, r.key);
    out += ",";
    append_spend_fields(out, r.v, savings);
    out += "}";
  }
  out += "],\"total\":{";
  append_spend_fields(out, tot, savings);
  out += "}}";
  return out;
}

core::Result<std::string> Ledger::report_table(std::string_view group_by, int64_t from_ms, int64_t to_ms,
                                               bool savings) const {
  auto rows = report_rows(group_by, from_ms, to_ms);
  if (!rows) return std::move(rows).error();
  std::vector<std::vector<std::string>> cells;
  std::vector<std::string> head{std::string(group_by), "requests", "prompt", "completion", "cost_usd"};
  if (savings) head.insert(head.end(), {"baselined", "baseline_usd", "saved_usd"});
  cells.push_back(head);
  SpendRow total;
  total.key = "total";
  auto line = [&](const SpendRow& r) {
    std::vector<std::string> c{r.key.empty() ? "(open)" : r.key, std::to_string(r.v[0]), std::to_string(r.v[1]),
                               std::to_string(r.v[4]), core::format_usd(core::Money{r.v[6]})};
    if (savings) {
      const core::Money baseline{r.v[SpendRow::kBaseline]}, covered{r.v[SpendRow::kBaselinedCost]};
      const bool any = r.v[SpendRow::kBaselinedRows] > 0;
      c.insert(c.end(), {std::to_string(r.v[SpendRow::kBaselinedRows]), any ? core::format_usd(baseline) : "-",
                         any ? core::format_usd(baseline - covered) : "-"});
    }
    cells.push_back(std::move(c));
  };
  for (const SpendRow& r : *rows) {
    for (int i = 0; i < SpendRow::kColumns; ++i) total.v[i] += r.v[i];
    line(r);
  }
  line(total);
  std::vector<size_t> width(head.size(), 0);
  for (const auto& row : cells)
    for (size_t i = 0; i < row.size(); ++i) width[i] = std::max(width[i], row[i].size());
  std::string out;
  for (const auto& row : cells) {
    for (size_t i = 0; i < row.size(); ++i) {
      // The key left-aligned, figures right-aligned, two spaces between columns.
      const std::string pad(width[i] - row[i].size(), ' ');
      out += i == 0 ? row[i] + pad : "  " + pad + row[i];
    }
    out += "\n";
  }
  return out;
}

core::Money Ledger::spent(std::string_view tenant, int64_t since_ms) const {
  auto r = store_->spent(tenant, since_ms);
  if (!r) {
    std::fprintf(stderr, "gateway: %s\n", r.error().message.c_str());
    return {};
  }
  return *r;
}

Ledger::Totals Ledger::totals() const {
  Totals t;
  auto r = store_->totals();
  if (r) {
    t.requests = r->first;
    t.cost = r->second;
  }
  return t;
}

}  // namespace gateway
