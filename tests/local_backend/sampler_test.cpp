#include "local_backend/sampler.h"

#include <gtest/gtest.h>

#include <cmath>
#include <vector>

namespace local_backend {
namespace {

std::vector<float> logits() { return {0.1f, 2.0f, -1.0f, 1.9f, 0.5f}; }

int32_t draw(SamplingParams p, std::vector<float> l, std::vector<int32_t> recent = {}, uint64_t seed = 1) {
  Sampler s(p, seed);
  return s.sample(l, recent);
}

TEST(Sampler, GreedyWhenTemperatureZero) {
  SamplingParams p;
  p.temperature = 0;
  EXPECT_EQ(draw(p, logits()), 1);
}

TEST(Sampler, TopKOneTopPTinyMinPOneAreGreedy) {
  for (uint64_t seed = 0; seed < 50; ++seed) {
    SamplingParams a;
    a.top_k = 1;
    EXPECT_EQ(draw(a, logits(), {}, seed), 1);
    SamplingParams b;
    b.top_p = 0.01f;
    EXPECT_EQ(draw(b, logits(), {}, seed), 1);
    SamplingParams c;
    c.min_p = 1.0f;
    EXPECT_EQ(draw(c, logits(), {}, seed), 1);
  }
}

TEST(Sampler, TopKRestrictsToTheKBest) {
  for (uint64_t seed = 0; seed < 200; ++seed) {
    SamplingParams p;
    p.top_k = 2;
    p.temperature = 5.0f;  // flat: without top-k every token would appear
    const int32_t t = draw(p, logits(), {}, seed);
    EXPECT_TRUE(t == 1 || t == 3) << t;
  }
}

TEST(Sampler, MinPDropsUnlikelyTokens) {
  // p(1) ~ 0.39, p(3) ~ 0.35, p(4) ~ 0.09: min_p 0.5 keeps tokens 1 and 3 only.
  for (uint64_t seed = 0; seed < 200; ++seed) {
    SamplingParams p;
    p.min_p = 0.5f;
    p.temperature = 3.0f;
    const int32_t t = draw(p, logits(), {}, seed);
    EXPECT_TRUE(t == 1 || t == 3) << t;
  }
}

TEST(Sampler, SeedIsDeterministic) {
  SamplingParams p;
  p.has_seed = true;
  p.seed = 1234;
  std::vector<int32_t> a, b;
  Sampler s1(p, 1), s2(p, 999);  // fallback seed ignored when has_seed
  for (int i = 0; i < 100; ++i) {
    auto l1 = logits(), l2 = logits();
    a.push_back(s1.sample(l1, {}));
    b.push_back(s2.sample(l2, {}));
  }
  EXPECT_EQ(a, b);
}

TEST(Sampler, DrawsFollowTheSoftmax) {
  // logits {0, ln 3}: p(1) = 0.75.
  SamplingParams p;
  p.has_seed = true;
  p.seed = 7;
  Sampler s(p, 0);
  int ones = 0;
  const int n = 20000;
  for (int i = 0; i < n; ++i) {
    std::vector<float> l = {0.0f, std::log(3.0f)};
    ones += s.sample(l, {}) == 1;
  }
  EXPECT_NEAR(static_cast<double>(ones) / n, 0.75, 0.015);
  // Temperature 2 flattens: p(1) = sqrt(3) / (1 + sqrt(3)) ~ 0.634.
  p.temperature = 2.0f;
  Sampler s2(p, 0);
  ones = 0;
  for (int i = 0; i < n; ++i) {
    std::vector<float> l = {0.0f, std::log(3.0f)};
    ones += s2.sample(l, {}) == 1;
  }
  EXPECT_NEAR(static_cast<double>(ones) / n, 0.634, 0.015);
}

TEST(Sampler, RepetitionPenaltyDemotesRecentTokens) {
  SamplingParams p;
  p.temperature = 0;
  p.repeat_penalty = 1.2f;
  EXPECT_EQ(draw(p, logits(), {1}), 3);  // 2.0 / 1.2 = 1.67 < 1.9
  EXPECT_EQ(draw(p, logits(), {1, 1, 1}), 3);  // applied once per distinct token
  p.repeat_penalty = 1.0f;
  EXPECT_EQ(draw(p, logits(), {1}), 1);
}

}  // namespace
}  // namespace local_backend
