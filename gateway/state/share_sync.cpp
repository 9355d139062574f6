#include "gateway/state/share_sync.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "gateway/state/redis_client.h"
#include "routing/policy.h"
#include "routing/policy_router.h"

namespace gateway {
namespace {

constexpr char kSep = '\x1f';  // never in a vendor, company or jurisdiction name
constexpr int64_t kBuckets = static_cast<int64_t>(routing::ShareWindow::kBuckets);

// KEYS[1]: the bucket to add to; KEYS[2..]: every bucket of the window. ARGV[1]: the TTL in
// seconds; ARGV[2..]: field, delta pairs. Returns the window's sums as [field, value, ...], values
// as strings (Lua would truncate numbers to integers).
const RedisScript kAddAndRead(R"lua(
if #ARGV > 1 then
  for i = 2, #ARGV, 2 do redis.call('HINCRBYFLOAT', KEYS[1], ARGV[i], ARGV[i + 1]) end
  redis.call('EXPIRE', KEYS[1], ARGV[1])
end
local sums, order = {}, {}
for k = 2, #KEYS do
  local flat = redis.call('HGETALL', KEYS[k])
  for j = 1, #flat, 2 do
    local f = flat[j]
    if sums[f] == nil then
      sums[f] = 0
      order[#order + 1] = f
    end
    sums[f] = sums[f] + tonumber(flat[j + 1])
  end
end
local out = {}
for _, f in ipairs(order) do
  out[#out + 1] = f
  out[#out + 1] = string.format('%.17g', sums[f])
end
return out
)lua");

std::string number(double v) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  return buf;
}

std::optional<routing::ShareKind> parse_kind(const std::string& s) {
  for (auto k : {routing::ShareKind::vendor, routing::ShareKind::parent, routing::ShareKind::jurisdiction})
    if (s == routing::to_string(k)) return k;
  return std::nullopt;
}

int64_t steady_ns(core::SteadyTime t) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}

}  // namespace

std::vector<std::pair<std::string, std::string>> share_fields(const routing::ShareTotals& t) {
  std::vector<std::pair<std::string, std::string>> out;
  if (t.requests > 0) out.emplace_back("n", number(t.requests));
  if (t.spend_usd > 0) out.emplace_back("usd", number(t.spend_usd));
  for (const auto& k : t.keys) {
    const std::string base = std::string(routing::to_string(k.kind)) + kSep + k.key + kSep;
    if (k.requests > 0) out.emplace_back(base + "n", number(k.requests));
    if (k.spend_usd > 0) out.emplace_back(base + "usd", number(k.spend_usd));
  }
  return out;
}

routing::ShareTotals parse_share_fields(const std::vector<std::pair<std::string, std::string>>& fields) {
  routing::ShareTotals t;
  for (const auto& [field, text] : fields) {
    char* end = nullptr;
    const double v = std::strtod(text.c_str(), &end);
    if (end == text.c_str() || *end != '\0' || !std::isfinite(v) || v < 0) continue;
    if (field == "n" || field == "usd") {
      (field == "n" ? t.requests : t.spend_usd) = v;
      continue;
    }
    const size_t a = field.find(kSep), b = field.rfind(kSep);
    if (a == std::string::npos || a == b) continue;
    const auto kind = parse_kind(field.substr(0, a));
    const std::string what = field.substr(b + 1);
    if (!kind || (what != "n" && what != "usd")) continue;
    const std::string key = field.substr(a + 1, b - a - 1);
    t.add_to_key(*kind, key, what == "n" ? v : 0, what == "usd" ? v : 0);
  }
  return t;
}

ShareSync::ShareSync(std::shared_ptr<RedisClient> redis, std::shared_ptr<routing::PolicyRouter> router,
                     ShareSyncOptions options)
    : redis_(std::move(redis)), router_(std::move(router)), options_(std::move(options)) {
  router_->diversity().enable_fleet(max_age(options_));
}

ShareSync::~ShareSync() { stop(); }

std::chrono::milliseconds ShareSync::max_age(const ShareSyncOptions& o) {
  return 3 * o.interval + 4 * o.redis_timeout;
}

void ShareSync::start() {
  last_ok_ns_.store(steady_ns(router_->clock().steady_now()));
  sync_once();
  thread_.start(options_.interval, [this] { sync_once(); });
}

void ShareSync::stop() { thread_.stop(); }

double ShareSync::age_seconds() const {
  const int64_t ns = steady_ns(router_->clock().steady_now()) - last_ok_ns_.load();
  return static_cast<double>(std::max<int64_t>(ns, 0)) / 1e9;
}

void ShareSync::sync_once() {
  auto policy = router_->policy();
  if (!policy) return;
  bool ok = true;
  std::string why;
  for (const auto& r : policy->routes) {
    if (r.diversify.caps.empty()) continue;
    auto w = router_->diversity().window(r.name, r.diversify.window);
    // After one failure the rest of the round would only wait out the same timeouts.
    std::optional<routing::ShareTotals> fleet;
    if (ok) fleet = sync_window(r.name, r.diversify.window, *w, why);
    if (fleet) {
      w->fleet_synced(std::move(*fleet), router_->clock().steady_now());
    } else {
      w->fleet_failed();
      ok = false;
    }
  }
  round_done(ok, why);
}

std::optional<routing::ShareTotals> ShareSync::sync_window(const std::string& route, std::chrono::seconds window,
                                                          routing::ShareWindow& w, std::string& why) {
  const int64_t window_ms = std::chrono::duration_cast<std::chrono::milliseconds>(window).count();
  const int64_t bucket_ms = std::max<int64_t>(1, window_ms / kBuckets);
  const int64_t wall_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                              router_->clock().wall_now().time_since_epoch())
                              .count();
  const int64_t epoch = wall_ms / bucket_ms;
  const std::string base = options_.redis_prefix + ":" + route + ":" + std::to_string(window.count()) + "s:";
  std::vector<std::string> keys{base + std::to_string(epoch)};
  for (int64_t e = epoch - kBuckets + 1; e <= epoch; ++e) keys.push_back(base + std::to_string(e));
  std::vector<std::string> args{std::to_string((window_ms + 2 * bucket_ms + 999) / 1000)};
  for (auto& [field, value] : share_fields(w.take_unsynced())) {
    args.push_back(std::move(field));
    args.push_back(std::move(value));
  }
  auto r = redis_->eval(kAddAndRead, keys, args);
  if (!r || r->is_error() || r->type != RedisReply::Type::array) {
    why = !r ? r.error().message : r->is_error() ? r->str : "unexpected reply to the share script";
    return std::nullopt;
  }
  std::vector<std::pair<std::string, std::string>> fields;
  for (size_t i = 0; i + 1 < r->elements.size(); i += 2) fields.emplace_back(r->elements[i].str, r->elements[i + 1].str);
  return parse_share_fields(fields);
}

void ShareSync::round_done(bool ok, const std::string& why) {
  if (ok) {
    last_ok_ns_.store(steady_ns(router_->clock().steady_now()));
    syncs_.fetch_add(1);
    if (failing_.exchange(false))
      std::fprintf(stderr, "gateway: share caps: fleet sync through Redis restored; capping on the fleet's totals\n");
    return;
  }
  failures_.fetch_add(1);
  if (!failing_.exchange(true))
    std::fprintf(stderr,
                 "gateway: share caps: fleet sync through Redis failing (%s); capping on this replica's own counts "
                 "until it is back\n",
                 why.c_str());
}

}  // namespace gateway
