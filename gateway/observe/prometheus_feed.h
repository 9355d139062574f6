#pragma once
// Fleet-wide routing figures: periodically asks a Prometheus server (which scrapes every replica's
// /metrics) for each deployment's TTFT, speed, error and 429 rates and in-flight count across the
// fleet, weighted by each replica's attempts, and hands them to the router. So every replica routes
// on what the whole fleet sees, not only on its own traffic.
#include "core/task.h"
#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <string_view>

#include "core/result.h"
#include "gateway/observe/metrics.h"
#include "providers/upstream_client.h"
#include "routing/live_stats.h"
#include "routing/policy_router.h"

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

// What the feed needs: where Prometheus is and how often to ask, the flag that ends it, where its
// outcome is counted and the router the figures go to.
struct FleetFeed {
  std::string url;
  std::chrono::milliseconds interval{5000};
  const std::atomic<bool>* draining = nullptr;
  Metrics* metrics = nullptr;
  std::shared_ptr<routing::PolicyRouter> router;  // null: figures are fetched and counted only
};

// Runs until the gateway drains; on the calling worker's io_context.
core::Task<void> run_prometheus_feed(FleetFeed feed, providers::UpstreamClient& client);

}  // namespace gateway
