#include "gateway/observe/suspension_metrics.h"

#include <set>

namespace gateway {
namespace {

prometheus::MetricFamily family(const char* name, const char* help, prometheus::MetricType type) {
  prometheus::MetricFamily f;
  f.name = name;
  f.help = help;
  f.type = type;
  return f;
}

void add_one(std::vector<prometheus::MetricFamily>& out, const char* name, const char* help,
             prometheus::MetricType type, double value) {
  auto f = family(name, help, type);
  prometheus::ClientMetric m;
  if (type == prometheus::MetricType::Counter) m.counter.value = value;
  else m.gauge.value = value;
  f.metric.push_back(std::move(m));
  out.push_back(std::move(f));
}

}  // namespace

void append_suspension_families(const routing::PolicyRouter& router, const SuspensionService* service,
                                std::vector<prometheus::MetricFamily>& out) {
  auto active = family("gateway_suspensions", "1 while a suspension (kill switch) of this vendor, parent, jurisdiction or "
                                              "deployment is in effect.",
                       prometheus::MetricType::Gauge);
  std::set<std::pair<std::string, std::string>> seen;
  for (const auto& s : *router.suspensions()) {
    if (!seen.emplace(routing::to_string(s.selector.kind), s.selector.target).second) continue;
    prometheus::ClientMetric m;
    m.label = {{"kind", routing::to_string(s.selector.kind)}, {"target", s.selector.target}};
    m.gauge.value = 1;
    active.metric.push_back(std::move(m));
  }
  if (!active.metric.empty()) out.push_back(std::move(active));

  auto excluded = family("gateway_suspension_exclusions_total",
                         "Requests whose plan excluded at least one candidate because of a suspension of this target.",
                         prometheus::MetricType::Counter);
  for (const auto& [target, n] : router.suspension_exclusions()) {
    prometheus::ClientMetric m;
    m.label = {{"target", target}};
    m.counter.value = static_cast<double>(n);
    excluded.metric.push_back(std::move(m));
  }
  if (!excluded.metric.empty()) out.push_back(std::move(excluded));

  if (!service || !service->fleet()) return;
  add_one(out, "gateway_suspension_fleet_sync_failing",
          "1 while this replica cannot read or write the fleet's suspensions in Redis (it keeps what it last knew).",
          prometheus::MetricType::Gauge, service->fleet_sync_failing() ? 1 : 0);
  add_one(out, "gateway_suspension_fleet_sync_failures_total",
          "Failed reads and writes of the fleet's suspensions in Redis.", prometheus::MetricType::Counter,
          static_cast<double>(service->fleet_sync_failures()));
}

void append_share_sync_families(const ShareSync* sync, std::vector<prometheus::MetricFamily>& out) {
  if (!sync) return;
  add_one(out, "gateway_share_fleet_syncs_total",
          "Successful rounds adding this replica's share counts to the fleet's in Redis and reading the fleet's back.",
          prometheus::MetricType::Counter, static_cast<double>(sync->syncs()));
  add_one(out, "gateway_share_fleet_sync_failures_total",
          "Failed rounds of the fleet share sync (Redis down, slow or an error reply); the counts wait for the next.",
          prometheus::MetricType::Counter, static_cast<double>(sync->failures()));
  add_one(out, "gateway_share_fleet_sync_failing",
          "1 while max_share caps use this replica's own counts because the fleet share sync fails.",
          prometheus::MetricType::Gauge, sync->failing() ? 1 : 0);
  add_one(out, "gateway_share_fleet_sync_age_seconds",
          "Seconds since the last successful fleet share sync (since start before the first).",
          prometheus::MetricType::Gauge, sync->age_seconds());
}

}  // namespace gateway
