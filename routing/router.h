#pragma once
// What the gateway asks of routing: an ordered plan of attempts for one request, and the
// outcome of every attempt fed back. No sockets here; routing knows deployments and numbers.
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/chat.h"
#include "core/clock.h"
#include "core/error.h"
#include "core/money.h"
#include "core/usage.h"
#include "core/result.h"
#include "routing/deployment.h"

namespace routing {

// The authenticated tenant's own routing settings (gateway config `tenants:`), validated at load.
// They are authoritative: a request header can only add a restriction (another region whose rules
// also apply, more data tags, a stricter classification), never remove or replace one, unless the
// tenant lets that header override (`allow_header_overrides`).
struct TenantSettings {
  std::string client_region;        // "DE" or "UA-43" (parse_region-ed); empty = none
  std::string data_classification;  // normalize_tag-ed; empty = none
  std::vector<std::string> data_tags;  // normalize_tag-ed
  uint32_t presets = 0;                // routing::Preset bits, enforced on every route
  bool override_region = false, override_classification = false, override_tags = false;
};

// Everything about a request that routing may look at.
struct RequestFeatures {
  std::string model;              // alias the client asked for ("auto" allowed)
  std::string tenant;             // empty when open mode
  std::string path = "/v1/chat/completions";
  std::string client_region;      // ISO 3166-1 alpha-2 (optionally "-subdivision"), trusted header or tenant default
  std::string data_classification;
  std::vector<std::string> data_tags;
  int64_t est_input_tokens = 0;
  std::optional<int64_t> max_tokens;
  bool needs_tools = false, needs_json = false, needs_vision = false, needs_reasoning = false;
  // An embeddings request (POST /v1/embeddings): only deployments with the `embeddings` capability
  // serve it, and they serve nothing else. Context fit does not apply (limits are per input row).
  bool needs_embeddings = false;
  bool stream = false;
  uint64_t prefix_hash = 0;       // hash of the first N bytes of the prompt (0 if short)
  // Added for the policy engine (routing/policy_router.h):
  int64_t prefix_tokens = 0;      // tokens covered by prefix_hash (0 = unknown: half the input is assumed)
  // Lower-cased names, for route `match.headers`: views of the request's headers, valid while the
  // request is being planned and handled (the connection owns them).
  std::span<const std::pair<std::string_view, std::string_view>> headers;
  std::optional<double> budget_remaining_usd;  // tenant budget left; candidates costing more are excluded
  // The authenticated tenant's settings; they outlive the request (the config owns them).
  const TenantSettings* tenant_settings = nullptr;
  // The client's reasoning level (core::ChatRequest::reasoning_effort; empty = not said), for
  // `match.reasoning_effort`.
  std::string reasoning_effort;
  // The request's messages, valid like `headers`: scanned for `match.script` / `match.code` only
  // when a route tried has them (routing/content_match.h).
  std::span<const core::ChatMessage> messages;
};

// Why a candidate was not used.
struct Exclusion {
  std::string deployment;  // deployment id
  std::string reason;      // e.g. "jurisdiction CN denied by policy 'eu-only'"
};

struct PlannedAttempt {
  Deployment deployment;
  double est_cost_usd = 0;  // expected cost of this attempt, for the estimated-cost header
  double score = 0;
  // Most tokens one answer can use at this deployment (context window + max output; 0 = unknown):
  // a usage report beyond it is not believed.
  int64_t max_usage_tokens = 0;
  // Tokens per sequence the router believes this deployment has (0 = unknown): after another
  // deployment refused the request as too long, only a larger window is worth trying.
  int64_t context_window = 0;
};

// One name of GET /v1/models: the API paths on which a request for it would find a usable
// deployment, judged by configuration only (keys, configured providers, suspensions, the caller's
// policy), not by a passing outage such as an open circuit.
// An API path a listing asks about, and whether requests on it are embeddings requests.
struct ListingPath {
  std::string path;
  bool embeddings = false;
};
struct ModelListing {
  std::string name;
  std::vector<std::string> paths;  // the asked paths that serve it; empty = unavailable
  std::string unavailable;         // why, when `paths` is empty ("set DEEPSEEK_API_KEY")
};

struct Plan {
  std::string route;                    // name of the route that matched
  std::vector<PlannedAttempt> attempts; // primary first, then fall-backs
  std::vector<Exclusion> exclusions;
  // The routing snapshot (prices) this plan was made with, so an attempt is invoiced at the prices
  // of the policy that routed it even if a reload happens meanwhile. Opaque to the gateway.
  std::shared_ptr<const void> snapshot;
};

// The outcome of one attempt, fed back into live stats, breakers and cooldowns.
struct AttemptOutcome {
  std::string deployment;          // deployment id
  bool ok = false;
  std::optional<core::Error> error;
  std::chrono::microseconds ttft{0};      // time to first content byte (or whole answer if not streaming)
  std::chrono::microseconds duration{0};  // whole attempt
  int64_t output_tokens = 0;
  uint64_t prefix_hash = 0;  // the request's RequestFeatures::prefix_hash, for prompt-cache affinity
};

class Router {
 public:
  virtual ~Router() = default;
  // An ordered plan, or an error (404 unknown model, 403 policy refusal, 503 nothing available)
  // whose message names, per candidate, why it was excluded.
  virtual core::Result<Plan> plan(const RequestFeatures& request) const = 0;
  virtual void record(const AttemptOutcome& outcome) = 0;
  // The attempt at `deployment_id` answered the request `plan` was made for, costing `cost_usd`
  // (0 when unpriced): the traffic share caps count (routing/diversify.h).
  virtual void served(const Plan& plan, const std::string& deployment_id, double cost_usd) {}
  // Model names a client may ask for (GET /v1/models).
  virtual std::vector<std::string> model_names() const = 0;
  // model_names() with, for each, which of `paths` would serve a request like `base` (its tenant,
  // region, classification) for that name. By default every name serves every chat path.
  virtual std::vector<ModelListing> model_listing(const RequestFeatures& base,
                                                  std::span<const ListingPath> paths) const {
    std::vector<ModelListing> out;
    for (auto& n : model_names()) {
      ModelListing m{std::move(n), {}, {}};
      for (const auto& p : paths)
        if (!p.embeddings) m.paths.push_back(p.path);
      out.push_back(std::move(m));
    }
    return out;
  }
  // An attempt at `deployment_id` is being dispatched (in-flight accounting); record() ends it.
  virtual void attempt_started(const std::string& deployment_id) {}
  // What the provider will invoice for `usage` at `deployment_id` (prices, tiers, peak clock), at
  // the prices of the policy that made `plan`, if this router knows the deployment's prices.
  virtual std::optional<core::Money> cost(const Plan& plan, const std::string& deployment_id,
                                          const core::Usage& usage, core::WallTime when) const {
    return std::nullopt;
  }
  // What `usage` would have cost at the baseline of the route that made `plan` (routing/savings.h),
  // at that policy's prices; nullopt when the route has no baseline.
  virtual std::optional<core::Money> baseline_cost(const Plan& plan, const core::Usage& usage) const {
    return std::nullopt;
  }
};

}  // namespace routing
