#pragma once
// GET /admin/state: one JSON document with what an operator on call looks at first, built from
// what the router, the limit store, the ledger and the pipeline already keep:
//   {"generated_ms", "policy": {name, file, generation, last_load: {at_ms, trigger, ok, message}},
//    "deployments": [{id, provider, region, model, availability, cause, wait_ms, circuit,
//                     traffic_share, figures: {routing_* metric: value}}],
//    "routes": [{name, model, max_attempts, candidates: [{deployment, fallback, static_exclusion}]}],
//    "tenants": [{tenant, spent_today_usd, budgets: [{period, hard, limit_usd, spent_usd,
//                 reserved_usd, remaining_usd}]}],
//    "spend_today": the ledger's report by tenant since 00:00 UTC (null without a ledger),
//    "refusals": {"total", "recent": [{at_ms, request_id, tenant, model, status, kind, code, message}]},
//    "suspensions": [{id, kind, target, selector, reason, since, by, source, exclusion_reason}]}
#include <string>
#include <vector>

#include "gateway/app/app.h"

namespace gateway {

// `budgets` and `spend_today` are read by the caller off the I/O thread (they may block).
std::string admin_state_json(const App& app, const std::vector<BudgetStatus>& budgets, const std::string& spend_today);

}  // namespace gateway
