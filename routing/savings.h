#pragma once
// Counterfactual savings: what the same usage would have cost on a baseline (a tenant's or a
// route's reference price, e.g. a frontier model at dated list prices), next to what it did cost.
// A baseline is a list price: one tier, no off-peak discount, cache writes billed as input and
// reasoning tokens as output, so the figure does not depend on when or where the call ran.
#include "core/clock.h"
#include "core/money.h"
#include "core/usage.h"
#include "routing/catalog.h"

namespace routing {

// `baseline: {price: {input, cached_input, output}}`, USD per 1M tokens.
struct BaselinePrice {
  core::TokenPrice input, cached_input, output;
};

// The baseline as a Pricing: one tier covering every input length.
Pricing baseline_pricing(const BaselinePrice& price);

// What `usage` costs at the baseline: its tiers by input length, never the schedule's factor.
core::Money baseline_cost(const Pricing& baseline, const core::Usage& usage);

struct Saving {
  core::Money actual;    // what the served deployment billed (tiers, peak, thinking mode)
  core::Money baseline;  // what the baseline would have billed for the same usage
  core::Money saved() const { return baseline - actual; }  // negative when routing cost more
};

// Both sides for one call of `served` that billed `usage` at `when`.
Saving saving_of(const DeploymentFacts& served, const Pricing& baseline, const core::Usage& usage,
                 core::WallTime when);

}  // namespace routing
