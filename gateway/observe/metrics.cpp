#include "gateway/observe/metrics.h"

#include <prometheus/text_serializer.h>

#include <sstream>
#include <string_view>
#include <unordered_map>

namespace gateway {

namespace {
const prometheus::Histogram::BucketBoundaries& latency_buckets() {
  static const prometheus::Histogram::BucketBoundaries b = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1,
                                                            2.5,   5,    10,    20,   40,  80,   160, 320};
  return b;
}

using LabelList = std::initializer_list<std::pair<const char*, std::string_view>>;

// prometheus-cpp's Family::Add builds a label map, hashes it and takes the family's mutex on every
// call; on the request path the same few label sets repeat, so each thread remembers the metric
// object per (family, label values). Families never remove metrics, so the pointers stay valid.
template <class M, class... Args>
M& cached(prometheus::Family<M>* family, LabelList labels, Args&&... args) {
  thread_local std::string key;
  thread_local std::unordered_map<std::string, void*> cache;
  key.assign(reinterpret_cast<const char*>(&family), sizeof family);
  for (const auto& [name, value] : labels) {
    key.append(value.data(), value.size());
    key.push_back('\x1f');
  }
  if (auto it = cache.find(key); it != cache.end()) return *static_cast<M*>(it->second);
  prometheus::Labels l;
  for (const auto& [name, value] : labels) l.emplace(name, std::string(value));
  M& m = family->Add(l, std::forward<Args>(args)...);
  cache.emplace(key, &m);
  return m;
}
}  // namespace

Metrics::Metrics() : registry_(std::make_shared<prometheus::Registry>()) {
  using namespace prometheus;
  requests_ = &BuildCounter().Name("gateway_requests_total")
                   .Help("Client requests answered, by model alias, final deployment and HTTP status class "
                         "(failed_after_content: a stream that ended with an in-band error after content).")
                   .Register(*registry_);
  attempts_ = &BuildCounter().Name("gateway_upstream_attempts_total")
                   .Help("Attempts sent to deployments, by outcome (ok or error kind).")
                   .Register(*registry_);
  failovers_ = &BuildCounter().Name("gateway_failovers_total")
                    .Help("Times a request moved on to its next deployment after a failure.")
                    .Register(*registry_);
  errors_ = &BuildCounter().Name("gateway_errors_total")
                 .Help("Requests that ended in an error, by reason.")
                 .Register(*registry_);
  tokens_ = &BuildCounter().Name("gateway_tokens_total")
                 .Help("Tokens billed by deployments, by kind (input, cached_input, cache_write, output, reasoning).")
                 .Register(*registry_);
  request_duration_ = &BuildHistogram().Name("gateway_request_duration_seconds")
                           .Help("Time from request received to response complete, by model alias.")
                           .Register(*registry_);
  upstream_latency_ = &BuildHistogram().Name("gateway_upstream_latency_seconds")
                           .Help("Duration of each upstream attempt, by deployment.")
                           .Register(*registry_);
  ttft_ = &BuildHistogram().Name("gateway_ttft_seconds")
               .Help("Time to first content token of streamed attempts, by deployment.")
               .Register(*registry_);
  provider_available_ = &BuildGauge().Name("gateway_provider_available")
                             .Help("1 if the provider instance is usable (credentials present), else 0.")
                             .Register(*registry_);
  queue_depth_ = &BuildGauge().Name("gateway_local_queue_depth")
                      .Help("Generations waiting or running in an embedded inference engine.")
                      .Register(*registry_);
  decode_tps_ = &BuildGauge().Name("gateway_local_decode_tokens_per_second")
                     .Help("Recent decode speed of an embedded inference engine (EWMA).")
                     .Register(*registry_);
  reloads_ = &BuildCounter().Name("gateway_policy_reloads_total")
                  .Help("Policy reload attempts, by result (ok: now serving; error: refused, previous policy kept).")
                  .Register(*registry_);
  reloads_->Add({{"result", "ok"}});
  reloads_->Add({{"result", "error"}});
  policy_warnings_ = &BuildGauge().Name("gateway_policy_warnings")
                          .Help("Warnings of the routing policy now serving (`gateway check` prints them), e.g. a route that can never serve.")
                          .Register(*registry_).Add({});
  feed_ = &BuildCounter().Name("gateway_prometheus_feed_total")
               .Help("Rounds of fleet-wide routing figures fetched from Prometheus, by result.")
               .Register(*registry_);
  cost_ = &BuildCounter().Name("gateway_cost_usd_total")
               .Help("What deployments will invoice, in USD, by tenant and deployment, from the usage they returned and their price tables.")
               .Register(*registry_);
  saved_ = &BuildCounter().Name("gateway_cost_saved_usd_total")
                .Help("What routing saved against the route's baseline price, in USD, by tenant (attempts that cost more than the baseline add 0).")
                .Register(*registry_);
  baseline_ = &BuildCounter().Name("gateway_cost_baseline_usd_total")
                   .Help("What the same usage would have cost at the route's baseline price, in USD, by tenant.")
                   .Register(*registry_);
  cache_ = &BuildCounter().Name("gateway_cache_lookups_total")
                .Help("Response cache lookups by result (hit served at no cost, miss sent upstream).")
                .Register(*registry_);
  // Counters owned by the Redis store, mirrored at scrape time (monotonic, hence *_total gauges are
  // avoided: exported under names without the suffix).
  auto& fallback = BuildGauge().Name("gateway_redis_limit_fallbacks")
                       .Help("Requests decided without Redis (unreachable), by fail mode: open = admitted unchecked, closed = refused.")
                       .Register(*registry_);
  redis_fail_open_ = &fallback.Add({{"fail_mode", "open"}});
  redis_fail_closed_ = &fallback.Add({{"fail_mode", "closed"}});
  ledger_failing_ = &BuildGauge().Name("gateway_ledger_failing")
                         .Help("1 while the spend ledger cannot write (its entries wait, retried; with "
                               "state.on_ledger_failure: refuse, new requests get 503).")
                         .Register(*registry_)
                         .Add({});
  ledger_commit_failures_ = &BuildGauge().Name("gateway_ledger_commit_failures")
                                 .Help("Spend ledger commits that failed and were retried, since start.")
                                 .Register(*registry_)
                                 .Add({});
  ledger_queue_ = &BuildGauge().Name("gateway_ledger_queue_depth")
                      .Help("Spend ledger entries accepted and not yet committed (they wait here while the ledger fails).")
                      .Register(*registry_)
                      .Add({});
  budget_ = &BuildGauge().Name("gateway_budget_remaining_usd")
                 .Help("Budget left per tenant and period (daily, monthly); negative when overspent.")
                 .Register(*registry_);
  in_flight_ = &BuildGauge().Name("gateway_in_flight_requests")
                    .Help("Chat requests being processed right now.")
                    .Register(*registry_).Add({});
  open_connections_ = &BuildGauge().Name("gateway_open_connections")
                           .Help("Client connections open right now.")
                           .Register(*registry_).Add({});
  rejected_connections_ = &BuildCounter().Name("gateway_rejected_connections_total")
                               .Help("Client connections refused because max_connections was reached.")
                               .Register(*registry_).Add({});
}

void Metrics::policy_reload(bool ok) { reloads_->Add({{"result", ok ? "ok" : "error"}}).Increment(); }
void Metrics::policy_warnings(size_t n) { policy_warnings_->Set(static_cast<double>(n)); }
void Metrics::prometheus_feed(bool ok) { feed_->Add({{"result", ok ? "ok" : "error"}}).Increment(); }
void Metrics::cost(const std::string& tenant, const std::string& deployment, double usd) {
  if (usd > 0)
    cached(cost_, {{"tenant", !tenant_labels_ ? std::string_view() : tenant.empty() ? std::string_view("open") : std::string_view(tenant)},
                   {"deployment", deployment}})
        .Increment(usd);
}
void Metrics::saving(const std::string& tenant, core::Money actual, core::Money baseline) {
  const std::string_view label = !tenant_labels_ ? std::string_view() : tenant.empty() ? std::string_view("open")
                                                                                       : std::string_view(tenant);
  // Created at the first baselined attempt even when it saved nothing, so the series exists.
  auto& saved = cached(saved_, {{"tenant", label}});
  if (baseline.pico > actual.pico) saved.Increment((baseline - actual).usd());
  auto& base = cached(baseline_, {{"tenant", label}});
  if (baseline.pico > 0) base.Increment(baseline.usd());
}
void Metrics::redis_fallbacks(double open, double closed) {
  redis_fail_open_->Set(open);
  redis_fail_closed_->Set(closed);
}
void Metrics::ledger(bool failing, double commit_failures_total, double queue_depth) {
  ledger_failing_->Set(failing ? 1 : 0);
  ledger_queue_->Set(queue_depth);
  ledger_commit_failures_->Set(commit_failures_total);
}
void Metrics::cache(bool hit) { cached(cache_, {{"result", hit ? "hit" : "miss"}}).Increment(); }
void Metrics::budget(const std::string& tenant, const std::string& period, double remaining_usd) {
  budget_->Add({{"tenant", tenant}, {"period", period}}).Set(remaining_usd);
}

std::string Metrics::serialize(const std::vector<prometheus::MetricFamily>& extra) const {
  prometheus::TextSerializer s;
  std::ostringstream os;
  auto fams = registry_->Collect();
  fams.insert(fams.end(), extra.begin(), extra.end());
  s.Serialize(os, fams);
  return os.str();
}

std::string Metrics::serialize() const {
  prometheus::TextSerializer s;
  std::ostringstream os;
  s.Serialize(os, registry_->Collect());
  return os.str();
}

void Metrics::request_done(const std::string& model, const std::string& deployment, int status, double seconds) {
  const char* sc = status < 200 ? "1xx" : status < 300 ? "2xx" : status < 400 ? "3xx" : status < 500 ? "4xx" : "5xx";
  cached(requests_, {{"model", model}, {"deployment", deployment}, {"status_class", sc}}).Increment();
  cached(request_duration_, {{"model", model}}, latency_buckets()).Observe(seconds);
}

void Metrics::request_failed_after_content(const std::string& model, const std::string& deployment, double seconds) {
  cached(requests_, {{"model", model}, {"deployment", deployment}, {"status_class", "failed_after_content"}}).Increment();
  cached(request_duration_, {{"model", model}}, latency_buckets()).Observe(seconds);
}

void Metrics::attempt_done(const std::string& deployment, const std::string& outcome, double upstream_seconds,
                           double ttft_seconds, bool streamed) {
  cached(attempts_, {{"deployment", deployment}, {"outcome", outcome}}).Increment();
  cached(upstream_latency_, {{"deployment", deployment}}, latency_buckets()).Observe(upstream_seconds);
  if (streamed && ttft_seconds > 0) cached(ttft_, {{"deployment", deployment}}, latency_buckets()).Observe(ttft_seconds);
}

void Metrics::failover(const std::string& model) { cached(failovers_, {{"model", model}}).Increment(); }
void Metrics::error(const std::string& reason) { cached(errors_, {{"reason", reason}}).Increment(); }

void Metrics::tokens(const std::string& deployment, const core::Usage& u) {
  if (!u.present) return;
  auto add = [&](const char* kind, int64_t n) {
    if (n > 0) cached(tokens_, {{"deployment", deployment}, {"kind", kind}}).Increment(static_cast<double>(n));
  };
  add("input", u.uncached_prompt_tokens());
  add("cached_input", u.cached_tokens);
  add("cache_write", u.cache_write_tokens);
  add("output", u.completion_tokens - u.reasoning_tokens);
  add("reasoning", u.reasoning_tokens);
}

void Metrics::provider_load(const std::string& provider, double queue_depth, double tps) {
  queue_depth_->Add({{"provider", provider}}).Set(queue_depth);
  decode_tps_->Add({{"provider", provider}}).Set(tps);
}

void Metrics::provider_available(const std::string& provider, bool available) {
  provider_available_->Add({{"provider", provider}}).Set(available ? 1 : 0);
}

}  // namespace gateway
