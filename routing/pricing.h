#pragma once
// What a call costs: tier by the request's input length, peak/off-peak by UTC clock, every token
// kind priced separately. Integer pico-USD throughout, so ledgers add up exactly.
#include <cstdint>
#include <string>
#include <vector>

#include "core/clock.h"
#include "core/money.h"
#include "core/usage.h"
#include "routing/catalog.h"

namespace routing {

// True when list (peak) price applies at `when`. No schedule = always list price.
bool is_peak(const PriceSchedule& schedule, core::WallTime when);

// Multiplier applied to list prices at `when` (1.0, or e.g. 0.5 off-peak).
double price_factor(const PriceSchedule& schedule, core::WallTime when);

// Cost of one call that billed `usage` at `when`:
//   uncached input x input + cached x cached_input + cache_write x cache_write
//   + (completion - reasoning) x output + reasoning x reasoning_output,
// all from the tier selected by usage.prompt_tokens, times the schedule factor. With
// pricing.thinking_bills_all_output, a call with any reasoning tokens bills all completion tokens
// at reasoning_output.
core::Money cost_of(const DeploymentFacts& facts, const core::Usage& usage, core::WallTime when);

// Same, with a precomputed schedule factor (the router computes it once per decision).
core::Money cost_of(const Pricing& pricing, const core::Usage& usage, double factor);

// A peak schedule whose holiday list ends within a year silently bills the next unlisted holiday at
// peak price. For the first deployment of a provider type with a built-in holiday rule (DeepSeek)
// whose off-peak dates end before `today` (UTC days since epoch) + 365: the warning `gateway check`
// prints; "" when every such schedule is covered. The clock is the caller's, so both sides test.
std::string holiday_coverage_warning(const std::vector<DeploymentFacts>& deployments, int64_t today);

}  // namespace routing
