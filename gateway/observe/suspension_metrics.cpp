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
  auto failing = family("gateway_suspension_fleet_sync_failing",
                        "1 while this replica cannot read or write the fleet's suspensions in Redis (it keeps what it "
                        "last knew).",
                        prometheus::MetricType::Gauge);
  prometheus::ClientMetric f;
  f.gauge.value = service->fleet_sync_failing() ? 1 : 0;
  failing.metric.push_back(std::move(f));
  out.push_back(std::move(failing));
  auto failures = family("gateway_suspension_fleet_sync_failures_total",
                         "Failed reads and writes of the fleet's suspensions in Redis.", prometheus::MetricType::Counter);
  prometheus::ClientMetric c;
  c.counter.value = static_cast<double>(service->fleet_sync_failures());
  failures.metric.push_back(std::move(c));
  out.push_back(std::move(failures));
}

}  // namespace gateway
