#pragma once
// Live figures per deployment, updated by every attempt and read by every routing decision:
// EWMA and windowed quantiles of time-to-first-token and tokens/s, error and 429 rates,
// in-flight count, circuit breaker (closed / open / half-open probe) and cooldowns.
//
// Concurrency: the decision path reads only atomics (no lock). record() takes the deployment's
// own small mutex for the windows and breaker transitions. The registry's map is guarded by a
// shared_mutex used only when a deployment is created or looked up by id (record, export).
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/clock.h"
#include "routing/catalog.h"
#include "routing/router.h"

namespace routing {

struct BreakerConfig {
  int failures_to_open = 5;           // consecutive deployment faults that open the circuit
  double error_rate_to_open = 0.5;    // or: error rate over the window at least this ...
  int min_window_samples = 10;        // ... once the window holds this many attempts
  std::chrono::milliseconds open_cooldown{10'000};      // first open period; doubles per failed probe
  std::chrono::milliseconds max_open_cooldown{300'000};
  std::chrono::milliseconds rate_limit_cooldown{1'000}; // 429 without Retry-After
  std::chrono::milliseconds out_of_balance_cooldown{900'000};
  std::chrono::milliseconds auth_cooldown{300'000};     // upstream rejected our key
  std::chrono::milliseconds probe_timeout{30'000};      // a probe slot not reported back is freed after this
  std::chrono::milliseconds window{60'000};             // quantile / windowed error-rate horizon
  double ewma_alpha = 0.2;
  // Figures not refreshed decay toward the priors (latency) or zero (error rates) with this time
  // constant, so a deployment that was slow or failing once is tried again later.
  std::chrono::milliseconds decay_tau{120'000};
  std::chrono::milliseconds external_ttl{60'000};       // external figures older than this are ignored
};

enum class CircuitState : uint8_t { closed = 0, open = 1, half_open = 2 };
const char* to_string(CircuitState s);

// Figures injected from outside (e.g. a Prometheus query over the fleet). Unset = use local.
struct ExternalStats {
  std::optional<double> ttft_ms;
  std::optional<double> tokens_per_second;
  std::optional<double> error_rate;         // 0..1
  std::optional<double> rate_limited_rate;  // 0..1
  std::optional<double> avg_output_tokens;
  std::optional<double> in_flight;
};

// What the router sees for one deployment at one instant.
struct LiveView {
  double ttft_ms = 0;
  double tokens_per_second = 0;
  double error_rate = 0;
  double rate_limited_rate = 0;
  double avg_output_tokens = 0;
  int64_t in_flight = 0;
  bool external = false;  // some figure came from ExternalStats
};

enum class Availability : uint8_t {
  available,    // closed circuit, no cooldown
  probe,        // half-open: usable as a probe if the probe slot is free
  probe_busy,   // half-open, a probe is already in flight
  open,         // circuit open
  cooldown,     // Retry-After / out-of-balance / auth cooldown
};
struct AvailabilityCheck {
  Availability state = Availability::available;
  int64_t wait_ms = 0;   // until the circuit half-opens or the cooldown ends
  const char* cause = "";  // "rate limited", "out of balance", ...
};

// One exported figure: {deployment id, metric name, value}. Names are stable; see policies/README.md.
struct StatSample {
  std::string deployment;
  std::string metric;
  double value = 0;
};

class DeploymentStats {
 public:
  DeploymentStats(std::string id, const BreakerConfig& config);

  const std::string& id() const { return id_; }
  void set_priors(double ttft_ms, double tokens_per_second, double avg_output_tokens);

  // Lock-free reads for the decision path.
  LiveView view(core::SteadyTime now) const;
  AvailabilityCheck availability(core::SteadyTime now) const;
  CircuitState circuit(core::SteadyTime now) const;
  // Takes the half-open probe slot; false if another probe holds it.
  bool try_acquire_probe(core::SteadyTime now);

  void attempt_started();
  void record(const AttemptOutcome& outcome, core::SteadyTime now);
  void set_external(const ExternalStats& stats, core::SteadyTime now);
  void append_samples(std::vector<StatSample>& out, core::SteadyTime now) const;

 private:
  struct Ring {
    static constexpr size_t kSize = 256;
    int64_t at[kSize] = {};
    double value[kSize] = {};
    size_t next = 0, count = 0;
    void push(int64_t t, double v);
    // q-quantile of values newer than `since` (nan if none)
    double quantile(double q, int64_t since) const;
    size_t count_since(int64_t since) const;
    double mean_since(int64_t since) const;
  };
  double decayed(double value, double prior, int64_t at_ns, int64_t now_ns) const;
  void open_circuit_locked(int64_t now_ns);
  void set_cooldown(int64_t until_ns, uint8_t cause);

  const std::string id_;
  const BreakerConfig config_;

  std::atomic<double> prior_ttft_ms_{1000}, prior_tps_{50}, prior_output_{256};
  std::atomic<double> ttft_ms_{0}, tps_{0}, error_rate_{0}, rate_limited_{0}, output_avg_{0};
  std::atomic<int64_t> ttft_at_{0}, tps_at_{0}, error_at_{0}, output_at_{0};
  std::atomic<int64_t> in_flight_{0};

  std::atomic<uint8_t> state_{0};  // CircuitState closed/open; half-open is "open and period over"
  std::atomic<int64_t> open_until_{0};
  std::atomic<int64_t> probe_taken_{0};
  std::atomic<int64_t> cooldown_until_{0};
  std::atomic<uint8_t> cooldown_cause_{0};

  std::atomic<int64_t> ext_until_{0};
  std::atomic<double> ext_ttft_{-1}, ext_tps_{-1}, ext_err_{-1}, ext_rl_{-1}, ext_out_{-1}, ext_inflight_{-1};

  mutable std::mutex mu_;  // guards everything below
  int consecutive_failures_ = 0;
  int open_count_ = 0;
  int64_t attempts_total_ = 0, failures_total_ = 0;
  Ring ttft_ring_, tps_ring_, outcome_ring_;
};

class LiveStats {
 public:
  explicit LiveStats(BreakerConfig config = {}, const core::Clock* clock = &core::SystemClock::instance());

  // Created on first use, kept across policy reloads so figures survive a reload.
  std::shared_ptr<DeploymentStats> get_or_create(const std::string& id);
  std::shared_ptr<DeploymentStats> find(std::string_view id) const;

  void attempt_started(std::string_view deployment);
  void record(const AttemptOutcome& outcome);
  // Unknown ids are created, so a Prometheus poll may run before the first request.
  void set_external_stats(const std::string& deployment, const ExternalStats& stats);

  // Every figure the router uses, per deployment, sorted by deployment then metric.
  std::vector<StatSample> samples() const;

  const BreakerConfig& config() const { return config_; }
  const core::Clock& clock() const { return *clock_; }

 private:
  const BreakerConfig config_;
  const core::Clock* clock_;
  mutable std::shared_mutex mu_;
  std::unordered_map<std::string, std::shared_ptr<DeploymentStats>> by_id_;
};

}  // namespace routing
