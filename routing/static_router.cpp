#include "routing/static_router.h"

#include <algorithm>

#include "routing/catalog.h"
#include "routing/constraints.h"
#include "routing/pricing.h"
#include "routing/vocabulary.h"

namespace routing {

using core::ErrorKind;

namespace {

// The built-in catalog's facts for a deployment id (e.g. deepseek@global/deepseek-flash), if any.
const DeploymentFacts* catalog_facts(const std::string& deployment_id) {
  static const std::shared_ptr<const Catalog> catalog = builtin_catalog();
  return catalog ? catalog->find(deployment_id) : nullptr;
}

}  // namespace

StaticRouter::StaticRouter(std::vector<std::pair<std::string, std::vector<Deployment>>> models,
                           std::vector<ProviderStatus> providers, const core::Clock& clock)
    : models_(std::move(models)), clock_(clock) {
  for (auto& p : providers) providers_[p.name] = std::move(p);
  prepared_.reserve(models_.size());
  for (const auto& [alias, list] : models_) {
    Prepared& pr = prepared_.emplace_back();
    pr.route = "models." + alias;
    for (const auto& d : list) {
      auto p = providers_.find(d.provider);
      pr.providers.push_back(p == providers_.end() ? nullptr : &p->second);
      pr.facts.push_back(catalog_facts(d.id));
    }
  }
}

std::vector<std::string> StaticRouter::model_names() const {
  std::vector<std::string> out;
  for (const auto& [alias, list] : models_) out.push_back(alias);
  return out;
}

std::vector<ModelListing> StaticRouter::model_listing(const RequestFeatures&,
                                                      std::span<const ListingPath> paths) const {
  std::vector<ModelListing> out;
  for (const auto& [alias, list] : models_) {
    ModelListing m{alias, {}, {}};
    for (const auto& d : list) {
      auto p = providers_.find(d.provider);
      if (p != providers_.end() && p->second.available) {
        for (const auto& path : paths)
          if (!path.embeddings) m.paths.push_back(path.path);  // model lists serve chat only
        break;
      }
      if (m.unavailable.empty())
        m.unavailable = p == providers_.end() ? "provider '" + d.provider + "' is not configured" : p->second.reason;
    }
    if (!m.paths.empty()) m.unavailable.clear();
    else if (m.unavailable.empty()) m.unavailable = "no deployment is listed for '" + alias + "'";
    out.push_back(std::move(m));
  }
  return out;
}

namespace {

// Plain lists apply no policy, but sanctioned-origin-block is always on: the client region header
// is validated and checked here too, with the US operator list. (Tenant routing settings need the
// policy engine; the config refuses them without one.)
std::optional<core::Error> origin_refusal(const RequestFeatures& f) {
  if (f.client_region.empty()) return std::nullopt;  // no region said: nothing is blocked
  std::string why;
  auto region = parse_region(f.client_region, &why);
  if (!region)
    return core::make_error(ErrorKind::bad_request,
                            "x-gateway-client-region header: " + why +
                                " (expected an ISO 3166-1 alpha-2 code, optionally with an ISO 3166-2 subdivision)",
                            core::ErrorSource::client, "invalid_client_region", "x-gateway-client-region");
  RequestContext ctx;
  ctx.client_country = region->country;
  ctx.client_subdivision = region->subdivision;
  if (auto reason = origin_block_reason(ctx, "US"); !reason.empty())
    return core::make_error(ErrorKind::forbidden, reason, core::ErrorSource::gateway, "routing_refused");
  return std::nullopt;
}

}  // namespace

core::Result<Plan> StaticRouter::plan(const RequestFeatures& request) const {
  if (auto refusal = origin_refusal(request)) return *refusal;
  const std::vector<Deployment>* list = nullptr;
  const Prepared* prepared = nullptr;
  for (size_t i = 0; i < models_.size(); ++i)
    if (models_[i].first == request.model) list = &models_[i].second, prepared = &prepared_[i];
  if (!list) {
    std::string names;
    for (const auto& [alias, l] : models_) names += (names.empty() ? "" : ", ") + alias;
    return core::make_error(ErrorKind::not_found,
                            "The model '" + request.model + "' does not exist on this gateway. Available: " + names,
                            core::ErrorSource::client, "model_not_found", "model");
  }
  Plan plan;
  plan.route = prepared->route;
  auto now = clock_.steady_now();
  // What the refusal tells the client when nothing is left: the shortest cool-down (the real wait),
  // and whether every exclusion is permanent (no key, no provider) or a rate-limit cool-down.
  int64_t shortest_wait_ms = -1;
  bool all_permanent = true, all_rate_limited = true;
  std::lock_guard lock(mu_);
  for (size_t i = 0; i < list->size(); ++i) {
    const Deployment& d = (*list)[i];
    const ProviderStatus* p = prepared->providers[i];
    if (!p) {
      plan.exclusions.push_back({d.id, "provider '" + d.provider + "' is not configured"});
      all_rate_limited = false;
      continue;
    }
    if (!p->available) {
      plan.exclusions.push_back({d.id, p->reason});
      all_rate_limited = false;
      continue;
    }
    auto h = health_.find(d.id);
    if (h != health_.end() && h->second.cooldown_until > now) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(h->second.cooldown_until - now).count();
      plan.exclusions.push_back({d.id, "cooling down for " + std::to_string(left) + " ms after " + h->second.cooldown_reason});
      all_permanent = false;
      all_rate_limited &= h->second.cooldown_reason == core::to_string(ErrorKind::rate_limited);
      shortest_wait_ms = shortest_wait_ms < 0 ? left : std::min<int64_t>(shortest_wait_ms, left);
      continue;
    }
    PlannedAttempt a{d, 0.0, 0.0};
    // A catalog deployment's window bounds the usage it can report, as with the policy router.
    if (const DeploymentFacts* facts = prepared->facts[i]) {
      a.max_usage_tokens = facts->max_usage_tokens();
      a.context_window = facts->context_window;
    }
    plan.attempts.push_back(std::move(a));
  }
  if (plan.attempts.empty()) {
    std::string msg = "No deployment can serve model '" + request.model + "' right now:";
    for (const auto& e : plan.exclusions) msg += " " + e.deployment + ": " + e.reason + ";";
    if (!msg.empty() && msg.back() == ';') msg.pop_back();
    const bool rate_limited = all_rate_limited && shortest_wait_ms >= 0;
    core::Error e = core::make_error(rate_limited ? ErrorKind::rate_limited : ErrorKind::unavailable, msg,
                                     core::ErrorSource::gateway, "no_deployment_available");
    if (shortest_wait_ms >= 0) e.retry_after = std::chrono::milliseconds(std::max<int64_t>(shortest_wait_ms, 1));
    e.permanent = all_permanent && !list->empty();
    return e;
  }
  return plan;
}

void StaticRouter::record(const AttemptOutcome& outcome) {
  std::lock_guard lock(mu_);
  auto& h = health_[outcome.deployment];
  if (outcome.ok || !outcome.error) {
    h.consecutive_failures = 0;
    return;
  }
  const core::Error& e = *outcome.error;
  if (!e.deployment_fault()) return;
  ++h.consecutive_failures;
  std::chrono::milliseconds cool{0};
  switch (e.kind) {
    case ErrorKind::out_of_balance: cool = std::chrono::minutes(5); break;
    case ErrorKind::auth: cool = std::chrono::minutes(5); break;
    case ErrorKind::rate_limited: cool = e.retry_after.count() > 0 ? e.retry_after : std::chrono::milliseconds(1000); break;
    default:
      // Transient failures: back off only after repeated failures, growing up to 30 s.
      if (h.consecutive_failures >= 3)
        cool = std::chrono::milliseconds(std::min(30000, 1000 << std::min(5, h.consecutive_failures - 3)));
      if (e.retry_after.count() > 0) cool = std::max(cool, e.retry_after);
  }
  if (cool.count() > 0) {
    h.cooldown_until = clock_.steady_now() + cool;
    h.cooldown_reason = core::to_string(e.kind);
  }
}

std::optional<core::Money> StaticRouter::cost(const Plan&, const std::string& deployment_id, const core::Usage& usage,
                                               core::WallTime when) const {
  const DeploymentFacts* facts = catalog_facts(deployment_id);
  if (!facts) return std::nullopt;
  return cost_of(*facts, usage, when);
}

}  // namespace routing
