#include "gateway/state/suspension_service.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <random>

#include "gateway/state/redis_client.h"

namespace gateway {
namespace {

constexpr char kSep = '\x1f';  // the API refuses control characters in every field

int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

std::string new_id() {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  char buf[20];
  std::snprintf(buf, sizeof buf, "s-%012llx", static_cast<unsigned long long>(rng() & 0xffffffffffffULL));
  return buf;
}

std::string encode(const routing::Suspension& s) {
  return std::string(routing::to_string(s.selector.kind)) + kSep + s.selector.target + kSep + s.reason + kSep + s.by +
         kSep + s.since;
}

std::vector<std::string> split_fields(const std::string& v) {
  std::vector<std::string> f;
  size_t start = 0;
  for (size_t i = 0; i <= v.size(); ++i)
    if (i == v.size() || v[i] == kSep) {
      f.push_back(v.substr(start, i - start));
      start = i + 1;
    }
  return f;
}

// A tombstone is the lifted suspension's five fields and, sixth, when it was lifted (ms since the
// epoch); tombstones written before that field existed have five.
std::string encode_tomb(const routing::Suspension& s, int64_t lifted_ms) {
  return encode(s) + kSep + std::to_string(lifted_ms);
}

std::optional<int64_t> tomb_lifted_ms(const std::string& v) {
  const auto f = split_fields(v);
  if (f.size() != 6) return std::nullopt;
  char* end = nullptr;
  const long long ms = std::strtoll(f[5].c_str(), &end, 10);
  if (end == f[5].c_str() || *end != '\0') return std::nullopt;
  return ms;
}

std::optional<routing::Suspension> decode(const std::string& id, const std::string& v) {
  std::vector<std::string> f = split_fields(v);
  if (f.size() != 5 && f.size() != 6) return std::nullopt;
  auto kind = routing::parse_suspension_kind(f[0]);
  if (!kind) return std::nullopt;
  routing::Suspension s;
  s.id = id;
  s.selector = {*kind, f[1]};
  s.reason = f[2];
  s.by = f[3];
  s.since = f[4];
  return s;
}

// HGETALL's flat [field, value, ...] as pairs.
std::vector<std::pair<std::string, std::string>> pairs(const RedisReply& r) {
  std::vector<std::pair<std::string, std::string>> out;
  for (size_t i = 0; i + 1 < r.elements.size(); i += 2) out.emplace_back(r.elements[i].str, r.elements[i + 1].str);
  return out;
}

bool has_id(const routing::SuspensionList& list, const std::string& id) {
  return std::any_of(list.begin(), list.end(), [&](const routing::Suspension& s) { return s.id == id; });
}

}  // namespace

std::string utc_timestamp(std::chrono::system_clock::time_point t) {
  const std::time_t secs = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

SuspensionService::SuspensionService(std::unique_ptr<SuspensionAudit> audit, std::shared_ptr<RedisClient> redis,
                                     SuspensionServiceOptions options, Publish publish)
    : audit_(std::move(audit)), redis_(std::move(redis)), options_(std::move(options)), publish_(std::move(publish)) {}

SuspensionService::~SuspensionService() { stop(); }

core::Status SuspensionService::start() {
  auto rows = audit_->rows();
  if (!rows) return rows.error();
  {
    std::lock_guard lock(mu_);
    local_ = replay_suspensions(*rows);
    apply_locked();
  }
  for (const auto& s : local_)
    std::fprintf(stderr, "gateway: suspension %s (%s) in effect from the audit table: %s\n", s.id.c_str(),
                 s.selector.text().c_str(), routing::suspension_reason(s).c_str());
  if (redis_) {
    poll_fleet();
    poller_.start(options_.poll_interval, [this] { poll_fleet(); });
  }
  return core::ok_status();
}

void SuspensionService::stop() { poller_.stop(); }

void SuspensionService::apply_locked() {
  auto all = std::make_shared<routing::SuspensionList>(local_);
  for (const auto& s : fleet_)
    if (!has_id(*all, s.id)) all->push_back(s);
  publish_(std::move(all));
}

core::Result<routing::Suspension> SuspensionService::suspend(const routing::SuspensionSelector& selector,
                                                             const std::string& reason, const std::string& by) {
  routing::Suspension s;
  s.id = new_id();
  s.selector = selector;
  s.reason = reason;
  s.by = by;
  s.since = utc_timestamp(std::chrono::system_clock::now());
  {
    std::lock_guard lock(mu_);
    if (auto st = audit_->append({now_ms(), "suspend", s}); !st) return st.error();
    local_.push_back(s);
    apply_locked();
  }
  std::fprintf(stderr, "gateway: suspension %s: %s %s\n", s.id.c_str(), s.selector.text().c_str(),
               routing::suspension_reason(s).c_str());
  // Redis down: in effect here and recorded; the poller publishes it once Redis answers.
  if (redis_) publish_suspend(s);
  return s;
}

core::Result<routing::Suspension> SuspensionService::lift(const std::string& id, const std::string& by) {
  routing::Suspension lifted;
  {
    std::lock_guard lock(mu_);
    auto find = [&](routing::SuspensionList& list) {
      return std::find_if(list.begin(), list.end(), [&](const routing::Suspension& s) { return s.id == id; });
    };
    auto it = find(local_);
    const bool local = it != local_.end();
    if (!local) it = find(fleet_);
    if (!local && it == fleet_.end())
      return core::make_error(core::ErrorKind::not_found, "no runtime suspension has id '" + id + "'",
                              core::ErrorSource::client, "suspension_not_found");
    lifted = *it;
    routing::Suspension row = lifted;
    row.by = by;
    if (auto st = audit_->append({now_ms(), "lift", row}); !st) return st.error();
    (local ? local_ : fleet_).erase(it);
    apply_locked();
    if (redis_) pending_lifts_.emplace_back(lifted, by);
  }
  std::fprintf(stderr, "gateway: suspension %s (%s) lifted by %s\n", lifted.id.c_str(), lifted.selector.text().c_str(),
               by.c_str());
  if (redis_) poll_fleet();  // hands the tombstone to Redis now (or on a later poll)
  return lifted;
}

std::vector<std::string> SuspensionService::ids_of(const routing::SuspensionSelector& selector) const {
  std::lock_guard lock(mu_);
  std::vector<std::string> out;
  for (const auto* list : {&local_, &fleet_})
    for (const auto& s : *list)
      if (s.selector == selector) out.push_back(s.id);
  return out;
}

routing::SuspensionList SuspensionService::runtime() const {
  std::lock_guard lock(mu_);
  routing::SuspensionList all = local_;
  for (const auto& s : fleet_)
    if (!has_id(all, s.id)) all.push_back(s);
  return all;
}

bool SuspensionService::publish_suspend(const routing::Suspension& s) {
  const std::string& p = options_.redis_prefix;
  auto r = redis_->command({"HSET", p + ":active", s.id, encode(s)});
  if (r && !r->is_error()) r = redis_->command({"INCR", p + ":version"});
  if (!r || r->is_error()) {
    sync_failed(!r ? r.error().message : r->str);
    return false;
  }
  return true;
}

bool SuspensionService::publish_lift(const routing::Suspension& s, const std::string& by) {
  const std::string& p = options_.redis_prefix;
  routing::Suspension tomb = s;
  tomb.by = by;
  auto r = redis_->command({"HSET", p + ":lifted", s.id, encode_tomb(tomb, now_ms())});
  if (r && !r->is_error()) r = redis_->command({"HDEL", p + ":active", s.id});
  if (r && !r->is_error()) r = redis_->command({"INCR", p + ":version"});
  if (!r || r->is_error()) {
    sync_failed(!r ? r.error().message : r->str);
    return false;
  }
  return true;
}

void SuspensionService::sync_failed(const std::string& why) {
  sync_failures_.fetch_add(1);
  if (!sync_failing_.exchange(true))
    std::fprintf(stderr,
                 "gateway: suspensions: fleet sync through Redis failing (%s); keeping every suspension last known\n",
                 why.c_str());
}

void SuspensionService::sync_ok() {
  if (sync_failing_.exchange(false)) std::fprintf(stderr, "gateway: suspensions: fleet sync through Redis restored\n");
}

void SuspensionService::poll_fleet() {
  if (!redis_) return;
  polls_.fetch_add(1);
  const std::string& p = options_.redis_prefix;
  // Tombstones first: a lift made while Redis was down must reach the fleet before anything reads.
  std::vector<std::pair<routing::Suspension, std::string>> lifts;
  {
    std::lock_guard lock(mu_);
    lifts.swap(pending_lifts_);
  }
  for (size_t i = 0; i < lifts.size(); ++i)
    if (!publish_lift(lifts[i].first, lifts[i].second)) {
      std::lock_guard lock(mu_);
      pending_lifts_.insert(pending_lifts_.begin(), lifts.begin() + static_cast<std::ptrdiff_t>(i), lifts.end());
      return;
    }
  auto version = redis_->command({"GET", p + ":version"});
  if (!version || version->is_error()) return sync_failed(!version ? version.error().message : version->str);
  {
    // Nothing changed since the last full read, and nothing of ours failed to reach Redis since.
    std::lock_guard lock(mu_);
    if (!sync_failing_.load() && !version->str.empty() && version->str == last_version_) return;
  }
  auto active = redis_->command({"HGETALL", p + ":active"});
  auto lifted = active && !active->is_error() ? redis_->command({"HGETALL", p + ":lifted"}) : active;
  if (!active || active->is_error() || !lifted || lifted->is_error())
    return sync_failed(!active ? active.error().message : !lifted ? lifted.error().message : "HGETALL error reply");
  sync_ok();

  std::vector<routing::Suspension> republish;
  std::vector<routing::Suspension> lifted_here;
  {
    std::lock_guard lock(mu_);
    last_version_ = version->str;
    std::vector<std::pair<std::string, std::string>> tombs = pairs(*lifted);
    auto tomb_of = [&](const std::string& id) -> const std::string* {
      for (const auto& [tid, v] : tombs)
        if (tid == id) return &v;
      return nullptr;
    };
    // Our suspensions another replica lifted: recorded here too, so a restart does not revive them.
    for (auto it = local_.begin(); it != local_.end();) {
      const std::string* tomb = tomb_of(it->id);
      if (!tomb) {
        ++it;
        continue;
      }
      routing::Suspension row = decode(it->id, *tomb).value_or(*it);
      if (!audit_->append({now_ms(), "lift", row})) {
        ++it;  // not recorded: keep it in effect, try again next poll
        continue;
      }
      lifted_here.push_back(row);
      it = local_.erase(it);
    }
    routing::SuspensionList fleet;
    std::vector<std::string> seen;
    for (const auto& [id, v] : pairs(*active)) {
      seen.push_back(id);
      if (tomb_of(id) || has_id(local_, id)) continue;
      if (auto s = decode(id, v)) fleet.push_back(std::move(*s));
    }
    for (const auto& s : local_)
      if (std::find(seen.begin(), seen.end(), s.id) == seen.end()) republish.push_back(s);
    fleet_ = std::move(fleet);
    apply_locked();
  }
  for (const auto& s : lifted_here)
    std::fprintf(stderr, "gateway: suspension %s (%s) lifted on another replica by %s\n", s.id.c_str(),
                 s.selector.text().c_str(), s.by.c_str());
  for (const auto& s : republish) publish_suspend(s);
  prune_lifted(*lifted);
}

// Tombstones only need to outlive every replica that might still hold the suspension: those lifted
// more than lifted_retention ago are deleted; one without a lift time gets the current time (it is
// deleted lifted_retention from now). Best effort: a failure is retried on the next full read.
void SuspensionService::prune_lifted(const RedisReply& lifted) {
  const std::string key = options_.redis_prefix + ":lifted";
  const int64_t now = now_ms();
  const int64_t oldest = now - std::chrono::duration_cast<std::chrono::milliseconds>(options_.lifted_retention).count();
  std::vector<std::string> del{"HDEL", key};
  std::vector<std::string> stamp{"HSET", key};
  for (const auto& [id, v] : pairs(lifted)) {
    const auto ms = tomb_lifted_ms(v);
    if (ms && *ms < oldest) del.push_back(id);
    if (!ms && decode(id, v)) {
      stamp.push_back(id);
      stamp.push_back(v + kSep + std::to_string(now));
    }
  }
  if (del.size() > 2) redis_->command(del);
  if (stamp.size() > 2) redis_->command(stamp);
}

}  // namespace gateway
