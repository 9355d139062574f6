#pragma once
// Interim router: a model alias maps to an ordered list of deployments from YAML. Deployments whose
// provider is unavailable (no key) are skipped with a reason; failed deployments cool down
// (Retry-After honoured, out-of-balance for minutes). Superseded by the policy engine.
#include <map>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/clock.h"
#include "routing/router.h"

namespace routing {

struct DeploymentFacts;

struct ProviderStatus {
  std::string name;
  bool available = false;
  std::string reason;  // why not available (e.g. "set DEEPSEEK_API_KEY")
  std::string default_region;
};

class StaticRouter final : public Router {
 public:
  StaticRouter(std::vector<std::pair<std::string, std::vector<Deployment>>> models,
               std::vector<ProviderStatus> providers, const core::Clock& clock = core::SystemClock::instance());

  core::Result<Plan> plan(const RequestFeatures& request) const override;
  void record(const AttemptOutcome& outcome) override;
  std::vector<std::string> model_names() const override;
  // An alias serves every path when one of its deployments has a configured, keyed provider.
  std::vector<ModelListing> model_listing(const RequestFeatures& base,
                                          std::span<const ListingPath> paths) const override;
  // Priced from the built-in catalog when the deployment is a catalog one (e.g. deepseek/deepseek-flash).
  std::optional<core::Money> cost(const Plan& plan, const std::string& deployment_id, const core::Usage& usage,
                                  core::WallTime when) const override;

 private:
  struct Health {
    int consecutive_failures = 0;
    core::SteadyTime cooldown_until{};
    std::string cooldown_reason;
  };
  // What plan() needs of an alias, found once at construction: its route name, and per deployment
  // its provider (nullptr: not configured) and its built-in catalog facts (nullptr: none).
  struct Prepared {
    std::string route;
    std::vector<const ProviderStatus*> providers;
    std::vector<const DeploymentFacts*> facts;
  };
  std::vector<std::pair<std::string, std::vector<Deployment>>> models_;
  std::vector<Prepared> prepared_;  // parallel to models_
  std::map<std::string, ProviderStatus> providers_;
  const core::Clock& clock_;
  mutable std::mutex mu_;
  std::unordered_map<std::string, Health> health_;
};

}  // namespace routing
