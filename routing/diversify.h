#pragma once
// Diversification as routing policy (policies/README.md, *Diversification*): how much of a route's
// traffic may depend on one vendor, parent company or jurisdiction (`max_share`), random choice
// among near-equal candidates so replicas do not herd onto one deployment (`spread`), and a small
// share of requests sent to each fall-back first so its live figures stay fresh (`canary`).
//
// None of these is a hard constraint: they only reorder candidates that already satisfy every
// constraint, so a request servable without them stays servable.
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "core/clock.h"

namespace routing {

struct CandidateEval;
struct CompiledPolicy;
struct DeploymentFacts;

enum class ShareKind : uint8_t { vendor = 0, parent = 1, jurisdiction = 2 };
const char* to_string(ShareKind k);
// What a deployment counts as. vendor: its provider type (every DeepSeek instance is DeepSeek), an
// openai_compatible or local instance being a vendor of its own under its instance name; parent:
// the catalog's `company` (else the vendor); jurisdiction: the company's (else "unknown").
std::string share_key(ShareKind k, const DeploymentFacts& f);

struct ShareCap {
  ShareKind kind = ShareKind::vendor;
  std::string key;  // empty: the cap applies to every key of this kind
  double cap = 1;   // in (0, 1]
};

struct DiversifySettings {
  std::vector<ShareCap> caps;                 // max_share
  bool by_spend = false;                      // max_share.by: requests (default) | spend
  std::chrono::seconds window{600};           // max_share.window
  int64_t min_requests = 20;                  // caps apply once the window holds this many requests
  std::optional<double> spread_within;        // spread.within, relative to the best score
  double canary = 0;                          // share of requests sent to each fall-back first
  bool any() const { return !caps.empty() || spread_within || canary > 0; }
};

// Uniform doubles in [0, 1). Injectable so tests replay a seeded stream; the default is one
// engine per thread, seeded from std::random_device.
class RandomSource {
 public:
  virtual ~RandomSource() = default;
  virtual double uniform() = 0;
};
RandomSource& thread_random();

class SeededRandom final : public RandomSource {
 public:
  explicit SeededRandom(uint64_t seed) : engine_(seed) {}
  double uniform() override;

 private:
  std::mutex mu_;
  std::mt19937_64 engine_;
};

// A route's traffic per key over the window, as caps see it.
struct ShareTotals {
  double requests = 0, spend_usd = 0;
  struct Key {
    ShareKind kind;
    std::string key;
    double requests = 0, spend_usd = 0;
  };
  std::vector<Key> keys;
  bool fleet = false;  // the fleet's totals (Redis) with this replica's unsynced counts, else local
  // The key's share of requests (or spend); 0 when the window is empty.
  double share(ShareKind kind, const std::string& key, bool by_spend) const;
  // Adds to the key's figures (the key is appended when new); the totals are the caller's.
  void add_to_key(ShareKind kind, const std::string& key, double requests, double spend);
};

// `into` += `from`, key by key (keys `into` lacks are appended in `from`'s order).
void accumulate(ShareTotals& into, const ShareTotals& from);
// What caps see in a fleet: the fleet's totals as last read plus this replica's counts not yet in
// them (unsynced: served after the last sync began, or held back by a failed sync).
ShareTotals merge_shares(const ShareTotals& fleet, const ShareTotals& unsynced);

// One route's served traffic over a sliding window of kBuckets buckets (window / kBuckets each).
// Memory is fixed per key seen (the keys are vendors, companies and jurisdictions of the route's
// candidates, so a handful); a bucket the window has passed is subtracted from the running sums.
//
// Fleet mode (a non-zero fleet_max_age): every add() is also kept as unsynced until a sync hands it
// to the fleet (take_unsynced, then fleet_synced or fleet_failed). totals() then answers the fleet's
// totals merged with the unsynced counts while the last successful sync is at most fleet_max_age
// old, and this replica's own window otherwise (Redis down, or never read yet).
class ShareWindow {
 public:
  static constexpr size_t kBuckets = 60;
  explicit ShareWindow(std::chrono::seconds window,
                       std::chrono::milliseconds fleet_max_age = std::chrono::milliseconds(0));

  std::chrono::seconds length() const { return window_; }
  void add(const DeploymentFacts& served, double cost_usd, core::SteadyTime now);
  ShareTotals totals(core::SteadyTime now);

  // The counts to hand to the fleet: the unsynced ones become in flight (still counted by totals()).
  ShareTotals take_unsynced();
  // The sync wrote what take_unsynced() returned and read `fleet` (which includes it).
  void fleet_synced(ShareTotals fleet, core::SteadyTime now);
  // The sync failed: what was in flight is unsynced again, and caps use local counts until a sync succeeds.
  void fleet_failed();

 private:
  struct Bucket {
    int64_t epoch = -1;
    double requests = 0, spend = 0;
    std::vector<double> key_requests, key_spend;  // parallel to keys_
  };
  size_t key_index_locked(ShareKind kind, const std::string& key);
  void advance_locked(int64_t epoch);

  const std::chrono::seconds window_;
  const int64_t bucket_ns_;
  std::mutex mu_;
  std::vector<std::pair<ShareKind, std::string>> keys_;
  Bucket buckets_[kBuckets];
  int64_t current_ = -1;  // newest epoch seen
  Bucket sum_;            // running sums of the live buckets
  // Fleet mode.
  const std::chrono::milliseconds fleet_max_age_;
  ShareTotals unsynced_, in_flight_;
  std::optional<ShareTotals> fleet_;
  core::SteadyTime fleet_at_{};
};

// One exported figure with its own labels (gateway_route_share, gateway_canary_requests_total).
struct LabelledSample {
  std::string metric;
  std::vector<std::pair<std::string, std::string>> labels;
  double value = 0;
  bool counter = false;
};

// Share windows per route and canary counters, kept across policy reloads (by route name; a
// window whose length changed starts empty).
class DiversityState {
 public:
  explicit DiversityState(const core::Clock* clock) : clock_(clock) {}

  // Fleet mode for every window made from now on (call before traffic): see ShareWindow.
  void enable_fleet(std::chrono::milliseconds max_age);
  bool fleet() const { return fleet_max_age_.count() > 0; }

  std::shared_ptr<ShareWindow> window(const std::string& route, std::chrono::seconds length);
  void served(const std::string& route, std::chrono::seconds length, const DeploymentFacts& f, double cost_usd);
  void canary_sent(const std::string& route, const std::string& deployment);
  // gateway_route_share{route,key,kind} for every route with caps, gateway_canary_requests_total.
  std::vector<LabelledSample> samples(const CompiledPolicy& p);

 private:
  const core::Clock* clock_;
  std::chrono::milliseconds fleet_max_age_{0};
  std::mutex mu_;
  std::map<std::string, std::shared_ptr<ShareWindow>> windows_;
  std::map<std::pair<std::string, std::string>, uint64_t> canaries_;
};

// What diversification did to one decision, for explain.
struct DiversifyNote {
  std::vector<std::string> notes;  // why the primary is the primary, in the order applied
  std::string canary_to;           // deployment id when this request is a canary
  struct Reading {
    ShareKind kind;
    std::string key;
    double share = 0, cap = 0;
  };
  std::vector<Reading> shares;  // each capped key of the candidates, with its current share
  bool caps_active = false;
  bool fleet = false;  // the shares are the fleet's (else this replica's own)
  double window_requests = 0;
  void clear() {
    notes.clear();
    canary_to.clear();
    shares.clear();
    caps_active = false;
    fleet = false;
    window_requests = 0;
  }
};

// Reorders `ranked` (indexes into `evals`, fully sorted best first) by the route's settings:
// 1. caps (once the window holds min_requests): a candidate whose key is at or over its cap moves
//    behind every candidate that is not, within its tier (`fallback: true` candidates stay last);
// 2. canary: with probability `canary` per fall-back, that fall-back becomes the primary;
// 3. otherwise spread: the primary is drawn uniformly among the leading candidates of the same
//    tier and cap state whose score is at most best + within x |best|.
void diversify(const DiversifySettings& s, const ShareTotals* shares, const CompiledPolicy& p,
               const std::vector<CandidateEval>& evals, std::vector<uint32_t>& ranked, RandomSource& random,
               DiversifyNote& note);

// `"diversify":{...}` for explain (no trailing comma).
void append_diversify_json(std::string& out, const DiversifySettings& s, const DiversifyNote& note);

}  // namespace routing
