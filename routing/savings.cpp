#include "routing/savings.h"

#include "routing/pricing.h"

namespace routing {

Pricing baseline_pricing(const BaselinePrice& price) {
  PriceTier t;
  t.input = price.input;
  t.cached_input = price.cached_input;
  t.cache_write = price.input;
  t.output = price.output;
  t.reasoning_output = price.output;
  Pricing p;
  p.tiers.push_back(t);
  return p;
}

core::Money baseline_cost(const Pricing& baseline, const core::Usage& usage) {
  if (baseline.tiers.empty()) return {};
  return cost_of(baseline, usage, 1.0);
}

Saving saving_of(const DeploymentFacts& served, const Pricing& baseline, const core::Usage& usage,
                 core::WallTime when) {
  return Saving{cost_of(served, usage, when), baseline_cost(baseline, usage)};
}

}  // namespace routing
