#include "routing/diversify.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "core/json_writer.h"
#include "routing/policy.h"
#include "routing/policy_router.h"

namespace routing {
namespace {

constexpr ShareKind kKinds[] = {ShareKind::vendor, ShareKind::parent, ShareKind::jurisdiction};

std::string fmt2(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f", v);
  return buf;
}

std::string fmt_g(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", v);
  return buf;
}

int64_t steady_ns(core::SteadyTime t) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}

}  // namespace

const char* to_string(ShareKind k) {
  switch (k) {
    case ShareKind::vendor: return "vendor";
    case ShareKind::parent: return "parent";
    case ShareKind::jurisdiction: return "jurisdiction";
  }
  return "vendor";
}

std::string share_key(ShareKind k, const DeploymentFacts& f) {
  const std::string vendor =
      f.provider_type == "openai_compatible" || f.provider_type == "local" || f.provider_type.empty()
          ? f.deployment.provider
          : f.provider_type;
  switch (k) {
    case ShareKind::vendor: return vendor;
    case ShareKind::parent: return f.risk.company.empty() ? vendor : f.risk.company;
    case ShareKind::jurisdiction: return f.risk.jurisdiction.empty() ? "unknown" : f.risk.jurisdiction;
  }
  return vendor;
}

double SeededRandom::uniform() {
  std::lock_guard<std::mutex> lock(mu_);
  return std::uniform_real_distribution<double>(0.0, 1.0)(engine_);
}

namespace {

class ThreadRandom final : public RandomSource {
 public:
  double uniform() override {
    thread_local std::mt19937_64 engine{std::random_device{}()};
    return std::uniform_real_distribution<double>(0.0, 1.0)(engine);
  }
};

}  // namespace

RandomSource& thread_random() {
  static ThreadRandom source;
  return source;
}

double ShareTotals::share(ShareKind kind, const std::string& key, bool by_spend) const {
  const double total = by_spend ? spend_usd : requests;
  if (total <= 0) return 0;
  for (const auto& k : keys)
    if (k.kind == kind && k.key == key) return (by_spend ? k.spend_usd : k.requests) / total;
  return 0;
}

void ShareTotals::add_to_key(ShareKind kind, const std::string& key, double n, double spend) {
  for (auto& k : keys)
    if (k.kind == kind && k.key == key) {
      k.requests += n;
      k.spend_usd += spend;
      return;
    }
  keys.push_back({kind, key, n, spend});
}

void accumulate(ShareTotals& into, const ShareTotals& from) {
  for (const auto& k : from.keys) into.add_to_key(k.kind, k.key, k.requests, k.spend_usd);
  into.requests += from.requests;
  into.spend_usd += from.spend_usd;
}

ShareTotals merge_shares(const ShareTotals& fleet, const ShareTotals& unsynced) {
  ShareTotals out = fleet;
  accumulate(out, unsynced);
  out.fleet = true;
  return out;
}

ShareWindow::ShareWindow(std::chrono::seconds window, std::chrono::milliseconds fleet_max_age)
    : window_(window),
      bucket_ns_(std::max<int64_t>(1, std::chrono::duration_cast<std::chrono::nanoseconds>(window).count() /
                                          static_cast<int64_t>(kBuckets))),
      fleet_max_age_(fleet_max_age) {}

size_t ShareWindow::key_index_locked(ShareKind kind, const std::string& key) {
  for (size_t i = 0; i < keys_.size(); ++i)
    if (keys_[i].first == kind && keys_[i].second == key) return i;
  keys_.emplace_back(kind, key);
  for (auto& b : buckets_) {
    b.key_requests.resize(keys_.size(), 0);
    b.key_spend.resize(keys_.size(), 0);
  }
  sum_.key_requests.resize(keys_.size(), 0);
  sum_.key_spend.resize(keys_.size(), 0);
  return keys_.size() - 1;
}

// Drops every bucket older than the window ending at `epoch` from the running sums.
void ShareWindow::advance_locked(int64_t epoch) {
  if (epoch <= current_) return;
  const int64_t first_live = epoch - static_cast<int64_t>(kBuckets) + 1;
  for (auto& b : buckets_) {
    if (b.epoch < 0 || b.epoch >= first_live) continue;
    sum_.requests -= b.requests;
    sum_.spend -= b.spend;
    for (size_t i = 0; i < keys_.size(); ++i) {
      sum_.key_requests[i] -= b.key_requests[i];
      sum_.key_spend[i] -= b.key_spend[i];
    }
    b.epoch = -1;
    b.requests = b.spend = 0;
    std::fill(b.key_requests.begin(), b.key_requests.end(), 0);
    std::fill(b.key_spend.begin(), b.key_spend.end(), 0);
  }
  current_ = epoch;
}

void ShareWindow::add(const DeploymentFacts& served, double cost_usd, core::SteadyTime now) {
  const int64_t epoch = steady_ns(now) / bucket_ns_;
  const double spend = std::isfinite(cost_usd) && cost_usd > 0 ? cost_usd : 0;
  std::lock_guard<std::mutex> lock(mu_);
  advance_locked(epoch);
  // A late report for an epoch already outside the window counts nowhere.
  if (epoch + static_cast<int64_t>(kBuckets) <= current_) return;
  Bucket& b = buckets_[static_cast<size_t>(epoch) % kBuckets];
  b.epoch = epoch;
  b.requests += 1;
  b.spend += spend;
  sum_.requests += 1;
  sum_.spend += spend;
  const bool fleet = fleet_max_age_.count() > 0;
  if (fleet) {
    unsynced_.requests += 1;
    unsynced_.spend_usd += spend;
  }
  for (ShareKind k : kKinds) {
    const std::string key = share_key(k, served);
    const size_t i = key_index_locked(k, key);
    b.key_requests[i] += 1;
    b.key_spend[i] += spend;
    sum_.key_requests[i] += 1;
    sum_.key_spend[i] += spend;
    if (fleet) unsynced_.add_to_key(k, key, 1, spend);
  }
}

ShareTotals ShareWindow::totals(core::SteadyTime now) {
  std::lock_guard<std::mutex> lock(mu_);
  advance_locked(steady_ns(now) / bucket_ns_);
  if (fleet_ && now - fleet_at_ <= fleet_max_age_) {
    ShareTotals t = merge_shares(*fleet_, unsynced_);
    accumulate(t, in_flight_);
    return t;
  }
  ShareTotals t;
  // Running sums drift by rounding; a sum that is ~0 is 0.
  auto clean = [](double v) { return v < 1e-9 ? 0.0 : v; };
  t.requests = clean(sum_.requests);
  t.spend_usd = clean(sum_.spend);
  t.keys.reserve(keys_.size());
  for (size_t i = 0; i < keys_.size(); ++i)
    t.keys.push_back({keys_[i].first, keys_[i].second, clean(sum_.key_requests[i]), clean(sum_.key_spend[i])});
  return t;
}

ShareTotals ShareWindow::take_unsynced() {
  std::lock_guard<std::mutex> lock(mu_);
  accumulate(in_flight_, unsynced_);
  unsynced_ = {};
  return in_flight_;
}

void ShareWindow::fleet_synced(ShareTotals fleet, core::SteadyTime now) {
  std::lock_guard<std::mutex> lock(mu_);
  fleet_ = std::move(fleet);
  fleet_at_ = now;
  in_flight_ = {};
}

void ShareWindow::fleet_failed() {
  std::lock_guard<std::mutex> lock(mu_);
  accumulate(unsynced_, in_flight_);
  in_flight_ = {};
  fleet_.reset();
}

void DiversityState::enable_fleet(std::chrono::milliseconds max_age) {
  std::lock_guard<std::mutex> lock(mu_);
  fleet_max_age_ = max_age;
}

std::shared_ptr<ShareWindow> DiversityState::window(const std::string& route, std::chrono::seconds length) {
  std::lock_guard<std::mutex> lock(mu_);
  auto& w = windows_[route];
  if (!w || w->length() != length) w = std::make_shared<ShareWindow>(length, fleet_max_age_);
  return w;
}

void DiversityState::served(const std::string& route, std::chrono::seconds length, const DeploymentFacts& f,
                            double cost_usd) {
  window(route, length)->add(f, cost_usd, clock_->steady_now());
}

void DiversityState::canary_sent(const std::string& route, const std::string& deployment) {
  std::lock_guard<std::mutex> lock(mu_);
  ++canaries_[{route, deployment}];
}

std::vector<LabelledSample> DiversityState::samples(const CompiledPolicy& p) {
  std::vector<LabelledSample> out;
  const auto now = clock_->steady_now();
  for (const auto& r : p.routes) {
    const DiversifySettings& s = r.diversify;
    if (s.caps.empty()) continue;
    const ShareTotals t = window(r.name, s.window)->totals(now);
    for (const auto& k : t.keys) {
      const bool capped_kind =
          std::any_of(s.caps.begin(), s.caps.end(), [&](const ShareCap& c) { return c.kind == k.kind; });
      if (!capped_kind) continue;
      out.push_back({"gateway_route_share",
                     {{"route", r.name}, {"key", k.key}, {"kind", to_string(k.kind)}},
                     t.share(k.kind, k.key, s.by_spend),
                     false});
    }
  }
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& [key, n] : canaries_)
    out.push_back({"gateway_canary_requests_total", {{"route", key.first}, {"deployment", key.second}},
                   static_cast<double>(n), true});
  return out;
}

namespace {

// The first cap the candidate's keys are at or over, or nullptr.
const ShareCap* cap_hit(const DiversifySettings& s, const ShareTotals& t, const DeploymentFacts& f, double& share) {
  for (const auto& c : s.caps) {
    const std::string key = share_key(c.kind, f);
    if (!c.key.empty() && c.key != key) continue;
    share = t.share(c.kind, key, s.by_spend);
    if (share >= c.cap) return &c;
  }
  return nullptr;
}

// Each capped key among the candidates, once, with its share (explain's "shares").
void read_shares(const DiversifySettings& s, const ShareTotals& t, const CompiledPolicy& p,
                 const std::vector<CandidateEval>& evals, DiversifyNote& note) {
  for (const auto& e : evals)
    for (const auto& c : s.caps) {
      const std::string key = share_key(c.kind, p.deployments[e.deployment]);
      if (!c.key.empty() && c.key != key) continue;
      const bool seen = std::any_of(note.shares.begin(), note.shares.end(), [&](const DiversifyNote::Reading& r) {
        return r.kind == c.kind && r.key == key;
      });
      if (!seen) note.shares.push_back({c.kind, key, t.share(c.kind, key, s.by_spend), c.cap});
    }
}

// Stable: within each tier, candidates under their caps first. Returns the demoted flags by rank.
std::vector<bool> apply_caps(const DiversifySettings& s, const ShareTotals& t, const CompiledPolicy& p,
                             const std::vector<CandidateEval>& evals, std::vector<uint32_t>& ranked,
                             DiversifyNote& note) {
  std::vector<bool> over(evals.size(), false);
  for (uint32_t idx : ranked) {
    const DeploymentFacts& f = p.deployments[evals[idx].deployment];
    double share = 0;
    if (const ShareCap* c = cap_hit(s, t, f, share)) {
      over[idx] = true;
      note.notes.push_back(std::string(to_string(c->kind)) + " " + share_key(c->kind, f) + " at " + fmt2(share) +
                           " share over cap " + fmt_g(c->cap) + ": demoted " + f.deployment.id);
    }
  }
  auto klass = [&](uint32_t idx) { return (evals[idx].fallback ? 2 : 0) + (over[idx] ? 1 : 0); };
  std::stable_sort(ranked.begin(), ranked.end(), [&](uint32_t a, uint32_t b) { return klass(a) < klass(b); });
  std::vector<bool> by_rank;
  for (uint32_t idx : ranked) by_rank.push_back(over[idx]);
  if (!ranked.empty() && over[ranked[0]])
    note.notes.push_back("every candidate of its tier is over a cap: the best of them stays primary");
  return by_rank;
}

void move_to_front(std::vector<uint32_t>& ranked, size_t at) {
  std::rotate(ranked.begin(), ranked.begin() + static_cast<std::ptrdiff_t>(at),
              ranked.begin() + static_cast<std::ptrdiff_t>(at) + 1);
}

}  // namespace

void diversify(const DiversifySettings& s, const ShareTotals* shares, const CompiledPolicy& p,
               const std::vector<CandidateEval>& evals, std::vector<uint32_t>& ranked, RandomSource& random,
               DiversifyNote& note) {
  note.clear();
  if (ranked.empty()) return;
  std::vector<bool> over(ranked.size(), false);
  if (!s.caps.empty() && shares) {
    note.window_requests = shares->requests;
    note.fleet = shares->fleet;
    read_shares(s, *shares, p, evals, note);
    note.caps_active = shares->requests >= static_cast<double>(s.min_requests);
    if (note.caps_active)
      over = apply_caps(s, *shares, p, evals, ranked, note);
    else
      note.notes.push_back("share caps wait for " + std::to_string(s.min_requests) + " requests in the window (" +
                           fmt_g(shares->requests) + " so far)");
  }
  if (s.canary > 0 && ranked.size() > 1) {
    // One draw: [0, canary) sends to the first fall-back, [canary, 2 canary) to the second, ...
    const size_t fallbacks = ranked.size() - 1;
    const double u = random.uniform();
    const auto slot = static_cast<size_t>(u / s.canary);
    if (slot < fallbacks) {
      note.canary_to = p.deployments[evals[ranked[1 + slot]].deployment].deployment.id;
      move_to_front(ranked, 1 + slot);
      note.notes.push_back("canary to " + note.canary_to + " (" + fmt_g(s.canary) + " of requests to each of " +
                           std::to_string(fallbacks) + " fall-backs)");
      return;
    }
  }
  if (s.spread_within && ranked.size() > 1) {
    const CandidateEval& best = evals[ranked[0]];
    const double limit = best.score + *s.spread_within * std::fabs(best.score);
    size_t n = 1;
    while (n < ranked.size() && evals[ranked[n]].fallback == best.fallback && over[n] == over[0] &&
           evals[ranked[n]].score <= limit)
      ++n;
    if (n > 1) {
      const size_t pick = std::min(n - 1, static_cast<size_t>(random.uniform() * static_cast<double>(n)));
      move_to_front(ranked, pick);
      note.notes.push_back("spread among " + std::to_string(n) + " within " + fmt_g(*s.spread_within) + ": " +
                           p.deployments[evals[ranked[0]].deployment].deployment.id);
    }
  }
}

void append_diversify_json(std::string& o, const DiversifySettings& s, const DiversifyNote& note) {
  core::append_json_string(o, "diversify");
  o += ":{";
  core::append_json_string(o, "notes");
  o += ":[";
  for (size_t i = 0; i < note.notes.size(); ++i) {
    if (i) o += ',';
    core::append_json_string(o, note.notes[i]);
  }
  o += ']';
  if (!note.canary_to.empty()) {
    o += ",\"canary_to\":";
    core::append_json_string(o, note.canary_to);
  }
  if (s.spread_within) o += ",\"spread_within\":" + fmt_g(*s.spread_within);
  if (s.canary > 0) o += ",\"canary\":" + fmt_g(s.canary);
  if (!s.caps.empty()) {
    o += ",\"share_by\":";
    o += s.by_spend ? "\"spend\"" : "\"requests\"";
    o += ",\"window_s\":" + std::to_string(s.window.count());
    o += ",\"window_requests\":" + fmt_g(note.window_requests);
    o += ",\"shares_from\":";
    o += note.fleet ? "\"fleet\"" : "\"local\"";
    o += ",\"min_requests\":" + std::to_string(s.min_requests);
    o += ",\"caps_active\":";
    o += note.caps_active ? "true" : "false";
    o += ",\"shares\":[";
    for (size_t i = 0; i < note.shares.size(); ++i) {
      const auto& r = note.shares[i];
      if (i) o += ',';
      o += "{\"kind\":";
      core::append_json_string(o, to_string(r.kind));
      o += ",\"key\":";
      core::append_json_string(o, r.key);
      char buf[96];
      std::snprintf(buf, sizeof buf, ",\"share\":%.6g,\"cap\":%.6g}", r.share, r.cap);
      o += buf;
    }
    o += ']';
  }
  o += '}';
}

}  // namespace routing
