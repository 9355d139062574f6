#pragma once
// What-if planning: the plans of a set of requests as they are, and as they would be with some
// vendors, parents, jurisdictions or deployments suspended; the estimated cost of each, and across
// the set the share of requests per vendor before and after, the cost change and the requests
// that would become unservable. No side effects: nothing is counted, no probe slot is taken.
#include <map>
#include <string>
#include <vector>

#include "routing/policy_router.h"
#include "routing/suspensions.h"

namespace routing {

// One request's primary choice (the first attempt of its plan) in one scenario.
struct WhatIfChoice {
  bool served = false;
  std::string deployment;  // primary deployment id ("" when unservable)
  std::string vendor;      // its provider instance
  std::vector<std::string> plan;
  double est_cost_usd = 0;
  std::string error;  // why the request cannot be served
};

struct WhatIfRow {
  WhatIfChoice before, after;
};

struct WhatIfSummary {
  size_t requests = 0;
  size_t unservable_before = 0, unservable_after = 0;
  size_t became_unservable = 0;  // served before, not after
  size_t moved = 0;              // served both times, by another vendor after
  // Over the requests served in both scenarios, so the two sums price the same traffic.
  double cost_before_usd = 0, cost_after_usd = 0;
  double cost_change_pct = 0;  // (after - before) / before x 100; 0 when before is 0
  // Share of all requests served by each vendor, in % of `requests`.
  std::map<std::string, double> share_before_pct, share_after_pct;
  std::string text;  // "suspending vendor:qwen moves 62 % of traffic to deepseek (...); cost +18 %; ..."
};

// The arithmetic over rows already planned (unit-testable without a router).
WhatIfSummary summarize_what_if(const std::vector<WhatIfRow>& rows, const std::string& scenario);

// Plans every request without and with `what_if`.
std::vector<WhatIfRow> plan_what_if(const PolicyRouter& router, const std::vector<RequestFeatures>& requests,
                                    const SuspensionList& what_if);

// {"what_if":[selectors],"requests":[{before, after}...],"summary":{...}}; with one request, the
// full explain of both scenarios too ("explain_before", "explain_after").
std::string what_if_json(const PolicyRouter& router, const std::vector<RequestFeatures>& requests,
                         const SuspensionList& what_if);

// Selectors ("alibaba", "jurisdiction:CN") as suspensions, read against the router's policy.
core::Result<SuspensionList> what_if_suspensions(const std::vector<std::string>& selectors,
                                                 const std::vector<DeploymentFacts>& deployments);

}  // namespace routing
