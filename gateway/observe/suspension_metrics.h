#pragma once
// The kill switch's metrics, built at scrape time from what the router and the suspension service
// keep (no second set of counters to drift):
//   gateway_suspensions{kind,target}                 1 while a suspension of that target is in effect
//   gateway_suspension_exclusions_total{target}      requests whose plan excluded a candidate because of it
//   gateway_suspension_fleet_sync_failing            1 while Redis cannot be read or written (fleet mode)
//   gateway_suspension_fleet_sync_failures_total     failed fleet reads and writes
// and those of the fleet-wide share caps (state.mode redis, gateway/state/share_sync.h):
//   gateway_share_fleet_syncs_total                  successful sync rounds
//   gateway_share_fleet_sync_failures_total          failed sync rounds
//   gateway_share_fleet_sync_failing                 1 while caps use this replica's own counts
//   gateway_share_fleet_sync_age_seconds             since the last successful round
#include <vector>

#include <prometheus/metric_family.h>

#include "gateway/state/share_sync.h"
#include "gateway/state/suspension_service.h"
#include "routing/policy_router.h"

namespace gateway {

void append_suspension_families(const routing::PolicyRouter& router, const SuspensionService* service,
                                std::vector<prometheus::MetricFamily>& out);
// Nothing without a sync (one replica).
void append_share_sync_families(const ShareSync* sync, std::vector<prometheus::MetricFamily>& out);

}  // namespace gateway
