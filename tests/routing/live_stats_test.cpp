#include <gtest/gtest.h>

#include <thread>

#include "routing/live_stats.h"

namespace routing {
namespace {

TEST(LiveStats, EwmaQuantilesAndDecay) {
  core::ManualClock clock;
  BreakerConfig cfg;
  LiveStats live(cfg, &clock);
  auto s = live.get_or_create("d");
  s->set_priors(1000, 50, 256);
  EXPECT_DOUBLE_EQ(s->view(clock.steady_now()).ttft_ms, 1000);  // prior until data
  for (int i = 1; i <= 100; ++i) {
    AttemptOutcome o;
    o.deployment = "d";
    o.ok = true;
    o.ttft = std::chrono::milliseconds(i * 10);
    o.duration = o.ttft + std::chrono::seconds(1);
    o.output_tokens = 50;
    live.record(o);
  }
  auto v = s->view(clock.steady_now());
  EXPECT_GT(v.ttft_ms, 900);  // EWMA follows recent (slow) samples
  EXPECT_NEAR(v.tokens_per_second, 50, 1e-9);
  std::map<std::string, double> m;
  for (const auto& x : live.samples()) m[x.metric] = x.value;
  EXPECT_NEAR(m["routing_ttft_seconds_p50"], 0.51, 0.011);
  EXPECT_NEAR(m["routing_ttft_seconds_p99"], 1.0, 0.011);
  // Old samples leave the window; the EWMA decays toward the prior.
  clock.advance(std::chrono::minutes(10));
  m.clear();
  for (const auto& x : live.samples()) m[x.metric] = x.value;
  EXPECT_EQ(m["routing_ttft_seconds_p50"], 0.0);
  const double decayed = s->view(clock.steady_now()).ttft_ms;
  EXPECT_LT(std::abs(decayed - 1000), std::abs(v.ttft_ms - 1000));
}

TEST(LiveStats, ErrorRateTripsBreaker) {
  core::ManualClock clock;
  BreakerConfig cfg;
  cfg.failures_to_open = 100;  // only the windowed rate can trip
  cfg.min_window_samples = 10;
  cfg.error_rate_to_open = 0.5;
  LiveStats live(cfg, &clock);
  auto s = live.get_or_create("d");
  for (int i = 0; i < 20; ++i) {
    AttemptOutcome o;
    o.deployment = "d";
    o.ok = i % 2 == 0;
    if (!o.ok) o.error = core::make_error(core::ErrorKind::server_error, "x", core::ErrorSource::upstream);
    live.record(o);
    if (s->circuit(clock.steady_now()) == CircuitState::open) break;
  }
  EXPECT_EQ(s->circuit(clock.steady_now()), CircuitState::open);
}

TEST(LiveStats, ConcurrentRecordAndRead) {
  core::ManualClock clock;
  LiveStats live({}, &clock);
  auto s = live.get_or_create("d");
  std::atomic<bool> stop{false};
  std::thread reader([&] {
    while (!stop) {
      auto v = s->view(clock.steady_now());
      ASSERT_GE(v.error_rate, 0.0);
      ASSERT_LE(v.error_rate, 1.0);
      (void)live.samples();
    }
  });
  std::vector<std::thread> writers;
  for (int t = 0; t < 3; ++t)
    writers.emplace_back([&, t] {
      for (int i = 0; i < 5000; ++i) {
        AttemptOutcome o;
        o.deployment = "d";
        o.ok = (i + t) % 3 != 0;
        if (!o.ok) o.error = core::make_error(core::ErrorKind::overloaded, "x", core::ErrorSource::upstream);
        o.ttft = std::chrono::milliseconds(100);
        o.duration = std::chrono::milliseconds(300);
        o.output_tokens = 10;
        live.attempt_started("d");
        live.record(o);
      }
    });
  for (auto& w : writers) w.join();
  stop = true;
  reader.join();
  EXPECT_EQ(s->view(clock.steady_now()).in_flight, 0);
}

}  // namespace
}  // namespace routing
