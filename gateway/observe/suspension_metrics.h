#pragma once
// The kill switch's metrics, built at scrape time from what the router and the suspension service
// keep (no second set of counters to drift):
//   gateway_suspensions{kind,target}                 1 while a suspension of that target is in effect
//   gateway_suspension_exclusions_total{target}      requests whose plan excluded a candidate because of it
//   gateway_suspension_fleet_sync_failing            1 while Redis cannot be read or written (fleet mode)
//   gateway_suspension_fleet_sync_failures_total     failed fleet reads and writes
#include <vector>

#include <prometheus/metric_family.h>

#include "gateway/state/suspension_service.h"
#include "routing/policy_router.h"

namespace gateway {

void append_suspension_families(const routing::PolicyRouter& router, const SuspensionService* service,
                                std::vector<prometheus::MetricFamily>& out);

}  // namespace gateway
