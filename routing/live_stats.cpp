#include "routing/live_stats.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace routing {
namespace {

int64_t ns(core::SteadyTime t) {
  // +1 so that a clock at its epoch (ManualClock starts there) still reads as "set".
  return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count() + 1;
}
int64_t ns(std::chrono::milliseconds d) { return d.count() * 1'000'000; }

enum CooldownCause : uint8_t { kNone = 0, kRateLimited, kOutOfBalance, kAuth, kRetryAfter };
const char* cause_name(uint8_t c) {
  switch (c) {
    case kRateLimited: return "rate limited (429)";
    case kOutOfBalance: return "out of balance";
    case kAuth: return "upstream rejected credentials";
    case kRetryAfter: return "upstream asked to retry later";
    default: return "cooling down";
  }
}

void ewma(std::atomic<double>& v, std::atomic<int64_t>& at, double sample, double alpha, double current) {
  // `current` is the decayed value, so a long-idle figure restarts from near its prior.
  v.store(at.load(std::memory_order_relaxed) == 0 ? sample : current + alpha * (sample - current),
          std::memory_order_relaxed);
}

}  // namespace

const char* to_string(CircuitState s) {
  switch (s) {
    case CircuitState::closed: return "closed";
    case CircuitState::open: return "open";
    case CircuitState::half_open: return "half_open";
  }
  return "closed";
}

void DeploymentStats::Ring::push(int64_t t, double v) {
  at[next] = t;
  value[next] = v;
  next = (next + 1) % kSize;
  count = std::min(count + 1, kSize);
}

double DeploymentStats::Ring::quantile(double q, int64_t since) const {
  double buf[kSize];
  size_t n = 0;
  for (size_t i = 0; i < count; ++i)
    if (at[i] >= since) buf[n++] = value[i];
  if (n == 0) return std::numeric_limits<double>::quiet_NaN();
  size_t k = std::min(n - 1, static_cast<size_t>(q * static_cast<double>(n)));
  std::nth_element(buf, buf + k, buf + n);
  return buf[k];
}

size_t DeploymentStats::Ring::count_since(int64_t since) const {
  size_t n = 0;
  for (size_t i = 0; i < count; ++i) n += at[i] >= since;
  return n;
}

double DeploymentStats::Ring::mean_since(int64_t since) const {
  double sum = 0;
  size_t n = 0;
  for (size_t i = 0; i < count; ++i)
    if (at[i] >= since) {
      sum += value[i];
      ++n;
    }
  return n ? sum / static_cast<double>(n) : 0.0;
}

DeploymentStats::DeploymentStats(std::string id, const BreakerConfig& config) : id_(std::move(id)), config_(config) {}

void DeploymentStats::set_priors(double ttft_ms, double tokens_per_second, double avg_output_tokens) {
  prior_ttft_ms_.store(ttft_ms, std::memory_order_relaxed);
  prior_tps_.store(tokens_per_second, std::memory_order_relaxed);
  prior_output_.store(avg_output_tokens, std::memory_order_relaxed);
}

double DeploymentStats::decayed(double value, double prior, int64_t at_ns, int64_t now_ns) const {
  if (at_ns == 0) return prior;
  const double age = static_cast<double>(std::max<int64_t>(0, now_ns - at_ns));
  const double tau = static_cast<double>(ns(config_.decay_tau));
  // A rational decay tau/(tau+age): cheap on the hot path, 1 when fresh, 1/2 after tau.
  const double w = tau / (tau + age);
  return prior + (value - prior) * w;
}

LiveView DeploymentStats::view(core::SteadyTime now) const {
  const int64_t t = ns(now);
  LiveView v;
  v.ttft_ms = decayed(ttft_ms_.load(std::memory_order_relaxed), prior_ttft_ms_.load(std::memory_order_relaxed),
                      ttft_at_.load(std::memory_order_relaxed), t);
  v.tokens_per_second = decayed(tps_.load(std::memory_order_relaxed), prior_tps_.load(std::memory_order_relaxed),
                                tps_at_.load(std::memory_order_relaxed), t);
  const int64_t err_at = error_at_.load(std::memory_order_relaxed);
  v.error_rate = decayed(error_rate_.load(std::memory_order_relaxed), 0.0, err_at, t);
  v.rate_limited_rate = decayed(rate_limited_.load(std::memory_order_relaxed), 0.0, err_at, t);
  v.avg_output_tokens = decayed(output_avg_.load(std::memory_order_relaxed),
                                prior_output_.load(std::memory_order_relaxed), output_at_.load(std::memory_order_relaxed), t);
  v.in_flight = in_flight_.load(std::memory_order_relaxed);
  if (ext_until_.load(std::memory_order_acquire) > t) {
    auto take = [&](const std::atomic<double>& src, double& dst) {
      double x = src.load(std::memory_order_relaxed);
      if (x >= 0) {
        dst = x;
        v.external = true;
      }
    };
    take(ext_ttft_, v.ttft_ms);
    take(ext_tps_, v.tokens_per_second);
    take(ext_err_, v.error_rate);
    take(ext_rl_, v.rate_limited_rate);
    take(ext_out_, v.avg_output_tokens);
    double inflight = ext_inflight_.load(std::memory_order_relaxed);
    if (inflight >= 0) {
      v.in_flight = static_cast<int64_t>(std::llround(inflight));
      v.external = true;
    }
  }
  if (v.tokens_per_second <= 0.01) v.tokens_per_second = 0.01;
  return v;
}

AvailabilityCheck DeploymentStats::availability(core::SteadyTime now) const {
  const int64_t t = ns(now);
  const int64_t cd = cooldown_until_.load(std::memory_order_relaxed);
  if (cd > t) return {Availability::cooldown, (cd - t) / 1'000'000, cause_name(cooldown_cause_.load(std::memory_order_relaxed))};
  if (state_.load(std::memory_order_acquire) == static_cast<uint8_t>(CircuitState::closed)) return {};
  const int64_t until = open_until_.load(std::memory_order_relaxed);
  if (until > t) return {Availability::open, (until - t) / 1'000'000, "circuit open"};
  const int64_t probe = probe_taken_.load(std::memory_order_relaxed);
  if (probe != 0 && t - probe < ns(config_.probe_timeout)) return {Availability::probe_busy, 0, "half-open, probe in flight"};
  return {Availability::probe, 0, "half-open"};
}

CircuitState DeploymentStats::circuit(core::SteadyTime now) const {
  if (state_.load(std::memory_order_acquire) == static_cast<uint8_t>(CircuitState::closed)) return CircuitState::closed;
  return open_until_.load(std::memory_order_relaxed) > ns(now) ? CircuitState::open : CircuitState::half_open;
}

bool DeploymentStats::try_acquire_probe(core::SteadyTime now) {
  const int64_t t = ns(now);
  int64_t cur = probe_taken_.load(std::memory_order_relaxed);
  if (cur != 0 && t - cur < ns(config_.probe_timeout)) return false;
  return probe_taken_.compare_exchange_strong(cur, t, std::memory_order_acq_rel);
}

void DeploymentStats::attempt_started() { in_flight_.fetch_add(1, std::memory_order_relaxed); }

void DeploymentStats::open_circuit_locked(int64_t now_ns) {
  const int64_t base = ns(config_.open_cooldown);
  const int shift = std::min(open_count_, 20);
  const int64_t period = std::min<int64_t>(base << shift, ns(config_.max_open_cooldown));
  ++open_count_;
  open_until_.store(now_ns + period, std::memory_order_relaxed);
  probe_taken_.store(0, std::memory_order_relaxed);
  state_.store(static_cast<uint8_t>(CircuitState::open), std::memory_order_release);
}

void DeploymentStats::set_cooldown(int64_t until_ns, uint8_t cause) {
  if (until_ns > cooldown_until_.load(std::memory_order_relaxed)) {
    cooldown_cause_.store(cause, std::memory_order_relaxed);
    cooldown_until_.store(until_ns, std::memory_order_relaxed);
  }
}

void DeploymentStats::record(const AttemptOutcome& outcome, core::SteadyTime now) {
  const int64_t t = ns(now);
  // in_flight never goes below zero, even if attempt_started() was not called.
  int64_t cur = in_flight_.load(std::memory_order_relaxed);
  while (cur > 0 && !in_flight_.compare_exchange_weak(cur, cur - 1, std::memory_order_relaxed)) {
  }

  std::lock_guard lock(mu_);
  ++attempts_total_;
  const double alpha = config_.ewma_alpha;
  const bool was_half_open = state_.load(std::memory_order_relaxed) != static_cast<uint8_t>(CircuitState::closed) &&
                             open_until_.load(std::memory_order_relaxed) <= t;
  if (outcome.ok) {
    const double ttft_ms = static_cast<double>(outcome.ttft.count()) / 1000.0;
    if (ttft_ms > 0) {
      const double current = decayed(ttft_ms_.load(std::memory_order_relaxed),
                                     prior_ttft_ms_.load(std::memory_order_relaxed),
                                     ttft_at_.load(std::memory_order_relaxed), t);
      ewma(ttft_ms_, ttft_at_, ttft_ms, alpha, current);
      ttft_at_.store(t, std::memory_order_relaxed);
      ttft_ring_.push(t, ttft_ms);
    }
    if (outcome.output_tokens > 0) {
      // Generation speed: tokens over the time after the first token; a non-streamed answer has
      // ttft == duration, so fall back to the whole duration.
      auto gen = outcome.duration - outcome.ttft;
      if (gen.count() <= 1000) gen = outcome.duration;
      if (gen.count() > 0) {
        const double tps = static_cast<double>(outcome.output_tokens) / (static_cast<double>(gen.count()) / 1e6);
        const double current = decayed(tps_.load(std::memory_order_relaxed), prior_tps_.load(std::memory_order_relaxed),
                                       tps_at_.load(std::memory_order_relaxed), t);
        ewma(tps_, tps_at_, tps, alpha, current);
        tps_at_.store(t, std::memory_order_relaxed);
        tps_ring_.push(t, tps);
      }
      const double cur_out = decayed(output_avg_.load(std::memory_order_relaxed), prior_output_.load(std::memory_order_relaxed),
                                     output_at_.load(std::memory_order_relaxed), t);
      ewma(output_avg_, output_at_, static_cast<double>(outcome.output_tokens), alpha, cur_out);
      output_at_.store(t, std::memory_order_relaxed);
    }
    const int64_t err_at = error_at_.load(std::memory_order_relaxed);
    error_rate_.store(decayed(error_rate_.load(std::memory_order_relaxed), 0.0, err_at, t) * (1 - alpha),
                      std::memory_order_relaxed);
    rate_limited_.store(decayed(rate_limited_.load(std::memory_order_relaxed), 0.0, err_at, t) * (1 - alpha),
                        std::memory_order_relaxed);
    error_at_.store(t, std::memory_order_relaxed);
    outcome_ring_.push(t, 0.0);
    consecutive_failures_ = 0;
    if (state_.load(std::memory_order_relaxed) != static_cast<uint8_t>(CircuitState::closed) && was_half_open) {
      // The probe succeeded: close, and forgive part of the error history so traffic returns.
      open_count_ = 0;
      probe_taken_.store(0, std::memory_order_relaxed);
      error_rate_.store(error_rate_.load(std::memory_order_relaxed) * 0.5, std::memory_order_relaxed);
      state_.store(static_cast<uint8_t>(CircuitState::closed), std::memory_order_release);
    }
    return;
  }

  // A failure. Only faults of the deployment count against it; a bad request or a client that
  // went away says nothing about the upstream.
  const bool fault = !outcome.error || outcome.error->deployment_fault();
  if (!fault) {
    if (was_half_open) probe_taken_.store(0, std::memory_order_relaxed);
    return;
  }
  ++failures_total_;
  const core::ErrorKind kind = outcome.error ? outcome.error->kind : core::ErrorKind::server_error;
  const int64_t retry_after = outcome.error ? ns(outcome.error->retry_after) : 0;
  const int64_t err_at = error_at_.load(std::memory_order_relaxed);
  const double err_now = decayed(error_rate_.load(std::memory_order_relaxed), 0.0, err_at, t);
  const double rl_now = decayed(rate_limited_.load(std::memory_order_relaxed), 0.0, err_at, t);
  error_rate_.store(err_now + alpha * (1.0 - err_now), std::memory_order_relaxed);
  const bool rate_limited = kind == core::ErrorKind::rate_limited;
  rate_limited_.store(rl_now + alpha * ((rate_limited ? 1.0 : 0.0) - rl_now), std::memory_order_relaxed);
  error_at_.store(t, std::memory_order_relaxed);
  outcome_ring_.push(t, 1.0);

  switch (kind) {
    case core::ErrorKind::rate_limited:
      set_cooldown(t + (retry_after > 0 ? retry_after : ns(config_.rate_limit_cooldown)), kRateLimited);
      break;
    case core::ErrorKind::out_of_balance:
      set_cooldown(t + std::max(retry_after, ns(config_.out_of_balance_cooldown)), kOutOfBalance);
      break;
    case core::ErrorKind::auth:
      set_cooldown(t + std::max(retry_after, ns(config_.auth_cooldown)), kAuth);
      break;
    default:
      if (retry_after > 0) set_cooldown(t + retry_after, kRetryAfter);
      break;
  }
  // Rate limits and empty accounts have their own cooldowns; they do not trip the breaker.
  if (rate_limited || kind == core::ErrorKind::out_of_balance || kind == core::ErrorKind::auth) {
    if (was_half_open) probe_taken_.store(0, std::memory_order_relaxed);
    return;
  }
  ++consecutive_failures_;
  if (was_half_open) {
    open_circuit_locked(t);  // failed probe: open again, longer
    return;
  }
  if (state_.load(std::memory_order_relaxed) == static_cast<uint8_t>(CircuitState::closed)) {
    const int64_t since = t - ns(config_.window);
    const size_t n = outcome_ring_.count_since(since);
    const bool rate_trip = static_cast<int>(n) >= config_.min_window_samples &&
                           outcome_ring_.mean_since(since) >= config_.error_rate_to_open;
    if (consecutive_failures_ >= config_.failures_to_open || rate_trip) open_circuit_locked(t);
  }
}

void DeploymentStats::set_external(const ExternalStats& s, core::SteadyTime now) {
  auto put = [](std::atomic<double>& dst, const std::optional<double>& v) {
    dst.store(v && std::isfinite(*v) && *v >= 0 ? *v : -1.0, std::memory_order_relaxed);
  };
  put(ext_ttft_, s.ttft_ms);
  put(ext_tps_, s.tokens_per_second);
  put(ext_err_, s.error_rate ? std::optional<double>(std::clamp(*s.error_rate, 0.0, 1.0)) : std::nullopt);
  put(ext_rl_, s.rate_limited_rate ? std::optional<double>(std::clamp(*s.rate_limited_rate, 0.0, 1.0)) : std::nullopt);
  put(ext_out_, s.avg_output_tokens);
  put(ext_inflight_, s.in_flight);
  ext_until_.store(ns(now) + ns(config_.external_ttl), std::memory_order_release);
}

void DeploymentStats::append_samples(std::vector<StatSample>& out, core::SteadyTime now) const {
  const int64_t t = ns(now);
  // The figures this replica measured (decayed exactly as the router reads them when no external
  // source is set), so dashboards and a fleet-wide Prometheus query see what routing sees.
  const double ttft = decayed(ttft_ms_.load(), prior_ttft_ms_.load(), ttft_at_.load(), t);
  const double tps = decayed(tps_.load(), prior_tps_.load(), tps_at_.load(), t);
  const double err = decayed(error_rate_.load(), 0.0, error_at_.load(), t);
  const double rl = decayed(rate_limited_.load(), 0.0, error_at_.load(), t);
  const double outp = decayed(output_avg_.load(), prior_output_.load(), output_at_.load(), t);
  const AvailabilityCheck av = availability(now);
  auto add = [&](const char* name, double v) { out.push_back({id_, name, v}); };
  std::lock_guard lock(mu_);
  const int64_t since = t - ns(config_.window);
  auto q = [](double v) { return std::isnan(v) ? 0.0 : v; };
  add("routing_ttft_seconds_ewma", ttft / 1000.0);
  add("routing_ttft_seconds_p50", q(ttft_ring_.quantile(0.50, since)) / 1000.0);
  add("routing_ttft_seconds_p90", q(ttft_ring_.quantile(0.90, since)) / 1000.0);
  add("routing_ttft_seconds_p99", q(ttft_ring_.quantile(0.99, since)) / 1000.0);
  add("routing_tokens_per_second_ewma", tps);
  add("routing_tokens_per_second_p50", q(tps_ring_.quantile(0.50, since)));
  add("routing_error_rate_ewma", err);
  add("routing_error_rate_window", outcome_ring_.mean_since(since));
  add("routing_rate_limited_rate_ewma", rl);
  add("routing_output_tokens_avg", outp);
  add("routing_in_flight", static_cast<double>(in_flight_.load()));
  add("routing_circuit_state", static_cast<double>(circuit(now)));
  add("routing_cooldown_seconds",
      av.state == Availability::cooldown ? static_cast<double>(av.wait_ms) / 1000.0 : 0.0);
  add("routing_attempts_total", static_cast<double>(attempts_total_));
  add("routing_failures_total", static_cast<double>(failures_total_));
  add("routing_external_active", ext_until_.load() > t ? 1.0 : 0.0);
}

LiveStats::LiveStats(BreakerConfig config, const core::Clock* clock) : config_(config), clock_(clock) {}

std::shared_ptr<DeploymentStats> LiveStats::get_or_create(const std::string& id) {
  {
    std::shared_lock lock(mu_);
    auto it = by_id_.find(id);
    if (it != by_id_.end()) return it->second;
  }
  std::unique_lock lock(mu_);
  auto& slot = by_id_[id];
  if (!slot) slot = std::make_shared<DeploymentStats>(id, config_);
  return slot;
}

std::shared_ptr<DeploymentStats> LiveStats::find(std::string_view id) const {
  std::shared_lock lock(mu_);
  auto it = by_id_.find(std::string(id));
  return it == by_id_.end() ? nullptr : it->second;
}

void LiveStats::attempt_started(std::string_view deployment) {
  if (auto s = find(deployment)) s->attempt_started();
}

void LiveStats::record(const AttemptOutcome& outcome) {
  if (auto s = find(outcome.deployment)) s->record(outcome, clock_->steady_now());
}

void LiveStats::set_external_stats(const std::string& deployment, const ExternalStats& stats) {
  get_or_create(deployment)->set_external(stats, clock_->steady_now());
}

std::vector<StatSample> LiveStats::samples() const {
  std::vector<std::shared_ptr<DeploymentStats>> all;
  {
    std::shared_lock lock(mu_);
    all.reserve(by_id_.size());
    for (const auto& [id, s] : by_id_) all.push_back(s);
  }
  std::sort(all.begin(), all.end(), [](const auto& a, const auto& b) { return a->id() < b->id(); });
  std::vector<StatSample> out;
  out.reserve(all.size() * 16);
  const auto now = clock_->steady_now();
  for (const auto& s : all) s->append_samples(out, now);
  return out;
}

}  // namespace routing
