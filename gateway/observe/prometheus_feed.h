#pragma once
// Fleet-wide routing figures: periodically asks a Prometheus server (which scrapes every replica's
// /metrics) for each deployment's TTFT, speed, error and 429 rates and in-flight count across the
// fleet, weighted by each replica's attempts, and hands them to the router. So every replica routes
// on what the whole fleet sees, not only on its own traffic.
#include "core/task.h"
#include <map>
#include <string>
#include <string_view>

#include "core/result.h"
#include "gateway/app/app.h"
#include "routing/live_stats.h"

namespace gateway {

// The PromQL queries, by ExternalStats field.
struct FleetQuery {
  const char* field;
  std::string promql;
  double scale;  // multiply the result (seconds -> ms)
};
const std::vector<FleetQuery>& fleet_queries();

// Parses a Prometheus /api/v1/query answer (instant vector) into deployment -> value; NaN and
// infinities are dropped.
core::Result<std::map<std::string, double>> parse_prometheus_vector(std::string_view body);

// Runs until the gateway drains; on the calling worker's io_context.
core::Task<void> run_prometheus_feed(App& app, providers::UpstreamClient& client);

}  // namespace gateway
