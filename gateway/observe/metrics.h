#pragma once
// Every metric the gateway exports, declared once with its help text (see metrics.cpp), served on
// the gateway's own port at /metrics. Labels are bounded: model aliases and deployments come from
// config, status classes and kinds from fixed sets.
#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <memory>
#include <string>

#include "core/money.h"
#include "core/usage.h"

namespace gateway {

class Metrics {
 public:
  Metrics();
  std::string serialize() const;
  std::shared_ptr<prometheus::Registry> registry() const { return registry_; }

  void request_done(const std::string& model, const std::string& deployment, int status, double seconds);
  // A stream that failed after content had reached the client: HTTP said 200, the answer is broken.
  void request_failed_after_content(const std::string& model, const std::string& deployment, double seconds);
  void attempt_done(const std::string& deployment, const std::string& outcome, double upstream_seconds,
                    double ttft_seconds, bool streamed);
  void failover(const std::string& model);
  void error(const std::string& reason);
  void tokens(const std::string& deployment, const core::Usage& u);
  void provider_available(const std::string& provider, bool available);
  void policy_reload(bool ok);
  // Warnings of the policy now serving (e.g. a route whose constraints exclude every candidate).
  void policy_warnings(size_t n);
  void prometheus_feed(bool ok);
  void cost(const std::string& tenant, const std::string& deployment, double usd);
  // One attempt with a baseline (routing/savings.h): adds baseline_usd to the baseline counter and
  // the saving to the saved counter, by tenant (empty label when tenant labels are off). A counter
  // never goes down, so an attempt that cost more than its baseline adds 0 to the saved counter;
  // the ledger's savings report has the net figure.
  void saving(const std::string& tenant, core::Money actual, core::Money baseline);
  // false (server.metrics_tenant_labels): cost series carry an empty tenant label (one series per
  // deployment), so /metrics shows no tenant's name or spend. Set before serving.
  void set_tenant_labels(bool on) { tenant_labels_ = on; }
  void cache(bool hit);
  // Requests admitted unchecked (fail open) or refused (fail closed) while Redis was unreachable.
  void redis_fallbacks(double fail_open_total, double fail_closed_total);
  void ledger(bool failing, double commit_failures_total, double queue_depth);
  void budget(const std::string& tenant, const std::string& period, double remaining_usd);
  // Serialises the registry plus extra gauge families (the router's live figures).
  std::string serialize(const std::vector<prometheus::MetricFamily>& extra) const;
  void provider_load(const std::string& provider, double queue_depth, double decode_tokens_per_second);
  prometheus::Gauge& in_flight() { return *in_flight_; }
  prometheus::Gauge& open_connections() { return *open_connections_; }
  prometheus::Counter& rejected_connections() { return *rejected_connections_; }

 private:
  std::shared_ptr<prometheus::Registry> registry_;
  bool tenant_labels_ = true;
  prometheus::Family<prometheus::Counter>* requests_;
  prometheus::Family<prometheus::Counter>* attempts_;
  prometheus::Family<prometheus::Counter>* failovers_;
  prometheus::Family<prometheus::Counter>* errors_;
  prometheus::Family<prometheus::Counter>* tokens_;
  prometheus::Family<prometheus::Histogram>* request_duration_;
  prometheus::Family<prometheus::Histogram>* upstream_latency_;
  prometheus::Family<prometheus::Histogram>* ttft_;
  prometheus::Family<prometheus::Gauge>* provider_available_;
  prometheus::Family<prometheus::Gauge>* queue_depth_;
  prometheus::Family<prometheus::Counter>* reloads_;
  prometheus::Gauge* policy_warnings_ = nullptr;
  prometheus::Family<prometheus::Counter>* feed_;
  prometheus::Family<prometheus::Counter>* cost_;
  prometheus::Family<prometheus::Counter>* saved_;
  prometheus::Family<prometheus::Counter>* baseline_;
  prometheus::Family<prometheus::Counter>* cache_;
  prometheus::Gauge* redis_fail_open_;
  prometheus::Gauge* redis_fail_closed_;
  prometheus::Gauge* ledger_failing_;
  prometheus::Gauge* ledger_commit_failures_;
  prometheus::Gauge* ledger_queue_;
  prometheus::Family<prometheus::Gauge>* budget_;
  prometheus::Family<prometheus::Gauge>* decode_tps_;
  prometheus::Gauge* in_flight_;
  prometheus::Gauge* open_connections_;
  prometheus::Counter* rejected_connections_;
};

}  // namespace gateway
