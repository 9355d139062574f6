#pragma once
// routing::PolicyRouter: the policy engine behind routing::Router. Runs the compiled policy over
// an immutable snapshot (policy + per-deployment live stats) swapped atomically on reload; a
// decision takes no global lock. Scoring: expected cost (price x estimated tokens, after expected
// prompt-cache hits), expected latency (TTFT + output / tokens-per-second), error risk.
#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "core/clock.h"
#include "routing/affinity.h"
#include "routing/diversify.h"
#include "routing/live_stats.h"
#include "routing/policy.h"
#include "routing/router.h"

namespace routing {

struct PolicyRouterOptions {
  const core::Clock* clock = &core::SystemClock::instance();
  BreakerConfig breaker;
  size_t affinity_capacity = 65536;
  std::chrono::milliseconds affinity_ttl{300'000};
  size_t max_reasons_in_error = 64;  // refusal messages list at most this many candidates
  // routing.unknown_data_tags: true = a data tag or classification outside the vocabulary is a 400
  // (default); false = it is dropped (the rules that test known tags still apply).
  bool reject_unknown_data_tags = true;
  // Draws for `spread` and `canary`; nullptr = thread_random(). Tests pass a SeededRandom.
  RandomSource* random = nullptr;
};

// Per-candidate detail of one decision (what explain prints).
struct CandidateEval {
  uint32_t deployment = 0;  // index into CompiledPolicy::deployments
  uint32_t order = 0;       // position in the route's candidate list
  bool excluded = false;
  ExclusionKind kind = ExclusionKind::policy;
  std::string reason;
  double est_cost_usd = 0;
  int64_t est_output_tokens = 0;
  int64_t est_cached_tokens = 0;
  double price_factor = 1;
  double ttft_ms = 0, tokens_per_second = 0, latency_ms = 0, error_rate = 0;
  double cost_term = 0, latency_term = 0, error_term = 0, score = 0;
  bool meets_slo = true;
  bool affinity = false;
  bool probe = false;  // half-open: this request would be the probe
  bool external = false;
  bool fallback = false;  // candidate marked `fallback: true`: ranked after all others

  // Resets every field (keeping the reason's capacity), so decision buffers can be reused.
  void reset(uint32_t dep, uint32_t ord, bool fb) {
    deployment = dep;
    order = ord;
    excluded = false;
    kind = ExclusionKind::policy;
    reason.clear();
    est_cost_usd = 0;
    est_output_tokens = est_cached_tokens = 0;
    price_factor = 1;
    ttft_ms = tokens_per_second = latency_ms = error_rate = 0;
    cost_term = latency_term = error_term = score = 0;
    meets_slo = true;
    affinity = probe = external = false;
    fallback = fb;
  }
};

struct Decision {
  std::shared_ptr<const CompiledPolicy> policy;
  const Route* route = nullptr;
  std::string client_country, client_subdivision, data_classification;
  std::vector<ClientRegion> other_client_regions;  // further regions whose rules apply too
  std::vector<std::string> data_tags;
  uint32_t presets = 0;  // the tenant's own presets, enforced in addition to the route's
  std::vector<CandidateEval> evals;
  std::vector<uint32_t> ranked;  // indexes into evals: qualified candidates, best first
  DiversifyNote diversify;       // what max_share / spread / canary did to the order
  std::optional<ContentFeatures> content;  // when a route tried had script or code conditions
  std::optional<core::Error> error;
};

class PolicyRouter final : public Router {
 public:
  explicit PolicyRouter(std::shared_ptr<const CompiledPolicy> policy, PolicyRouterOptions options = {});

  // Compiles `path` against the built-in catalog and `providers` and builds a router.
  static core::Result<std::unique_ptr<PolicyRouter>> from_file(const std::string& path,
                                                                const std::vector<ProviderInstance>& providers,
                                                                PolicyRouterOptions options = {});

  core::Result<Plan> plan(const RequestFeatures& request) const override;
  void record(const AttemptOutcome& outcome) override;
  std::vector<std::string> model_names() const override;
  std::vector<ModelListing> model_listing(const RequestFeatures& base,
                                          std::span<const ListingPath> paths) const override;
  void served(const Plan& plan, const std::string& deployment_id, double cost_usd) override;

  // Call when an attempt is dispatched (in-flight gauge); record() ends it.
  void attempt_started(const std::string& deployment_id) override;
  std::optional<core::Money> cost(const Plan& plan, const std::string& deployment_id, const core::Usage& usage,
                                  core::WallTime when) const override;
  std::optional<core::Money> baseline_cost(const Plan& plan, const core::Usage& usage) const override;

  // Swaps in a new compiled policy; decisions already running keep the old snapshot.
  void swap_policy(std::shared_ptr<const CompiledPolicy> policy);
  // Compile + swap. On error the current policy keeps serving and the error is returned.
  core::Status reload(std::string_view yaml_text, std::string_view file_name,
                      const std::vector<ProviderInstance>& providers);
  core::Status reload_file(const std::string& path, const std::vector<ProviderInstance>& providers);
  uint64_t reloads_ok() const { return reloads_ok_.load(); }
  uint64_t reloads_failed() const { return reloads_failed_.load(); }
  std::shared_ptr<const CompiledPolicy> policy() const;

  // Full detail of the decision for `request` (no side effects: probe slots are not taken).
  // `what_if`: suspensions assumed on top of those in effect (what-if planning).
  Decision decide(const RequestFeatures& request, const SuspensionList* what_if = nullptr) const;
  // The decision as JSON: every candidate's score terms and exclusions (gateway explain,
  // POST /admin/explain).
  std::string explain_json(const RequestFeatures& request, const SuspensionList* what_if = nullptr) const;

  // The runtime suspensions (admin API, fleet); the policy file's `suspended:` apply as well. In
  // effect from the next decision.
  void set_suspensions(std::shared_ptr<const SuspensionList> runtime);
  // Every suspension in effect: the policy file's, then the runtime ones.
  std::shared_ptr<const SuspensionList> suspensions() const { return snapshot_.load()->suspended; }
  // Requests whose plan excluded a candidate because of a suspension, by suspension target.
  std::map<std::string, uint64_t> suspension_exclusions() const;

  // Every live figure routing uses, per deployment ({deployment, metric, value}), for /metrics.
  std::vector<StatSample> stats_samples() const { return live_->samples(); }
  // gateway_route_share and gateway_canary_requests_total, for /metrics.
  std::vector<LabelledSample> diversity_samples() const { return diversity_->samples(*policy()); }
  // The share windows (a fleet's sync reads and feeds them: gateway/state/share_sync.h).
  DiversityState& diversity() const { return *diversity_; }
  const core::Clock& clock() const { return *options_.clock; }
  // Figures from an external source (Prometheus query mode); they expire after breaker.external_ttl.
  void set_external_stats(const std::string& deployment_id, const ExternalStats& stats);
  LiveStats& live_stats() { return *live_; }
  const AffinityMap& affinity() const { return affinity_; }

 private:
  struct Snapshot {
    std::shared_ptr<const CompiledPolicy> policy;
    std::vector<std::shared_ptr<DeploymentStats>> stats;  // parallel to policy->deployments
    std::vector<uint64_t> key;                            // hash of each deployment id (affinity)
    std::shared_ptr<const SuspensionList> suspended;      // policy file's + runtime, never null
  };
  std::shared_ptr<const Snapshot> make_snapshot(std::shared_ptr<const CompiledPolicy> policy);
  // full_rank = false sorts only the first max_attempts candidates (the plan needs no more).
  void evaluate(const Snapshot& snap, const RequestFeatures& request, Decision& d, bool full_rank,
                const SuspensionList* what_if = nullptr) const;
  void count_suspension_exclusions(const Snapshot& snap, const Decision& d) const;
  void diversify_order(const Route& route, Decision& d) const;

  PolicyRouterOptions options_;
  std::shared_ptr<LiveStats> live_;
  AffinityMap affinity_;
  std::shared_ptr<DiversityState> diversity_;
  std::atomic<std::shared_ptr<const Snapshot>> snapshot_;
  std::atomic<uint64_t> reloads_ok_{0}, reloads_failed_{0};
  std::mutex swap_mu_;  // policy swaps and suspension swaps rebuild the snapshot one at a time
  std::shared_ptr<const SuspensionList> runtime_suspensions_;  // guarded by swap_mu_
  mutable std::mutex exclusions_mu_;
  mutable std::map<std::string, uint64_t> suspension_exclusions_;
};

// The request's region, classification and tags after tenant settings and policy defaults (the
// precedence is documented in policies/README.md); an error (400 naming the header) for an invalid
// region, or an unknown tag or classification when `reject_unknown_tags`.
std::optional<core::Error> resolve_request_facts(const CompiledPolicy& p, const RequestFeatures& f,
                                                 bool reject_unknown_tags, Decision& d);

// Free-function form used by `gateway explain`.
inline std::string explain_json(const PolicyRouter& router, const RequestFeatures& request) {
  return router.explain_json(request);
}

}  // namespace routing
