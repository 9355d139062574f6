// Counterfactual savings: baseline at flat list prices against the served deployment's real bill
// (cached input, reasoning/thinking output, input-length tiers, peak and off-peak).
#include <gtest/gtest.h>

#include "routing/catalog.h"
#include "routing/savings.h"
#include "test_util.h"

namespace routing {
namespace {

using test::facts;
using test::usage;
using test::utc;

// GPT-class list prices: 1.25 input, 0.125 cached input, 10 output (USD per 1M tokens).
Pricing gpt_class() {
  return baseline_pricing({core::TokenPrice::per_million_usd(1.25), core::TokenPrice::per_million_usd(0.125),
                           core::TokenPrice::per_million_usd(10.0)});
}

int64_t usd(double v) { return core::Money::from_usd(v).pico; }

TEST(Savings, BaselineBillsEveryTokenKindFlat) {
  const Pricing b = gpt_class();
  // 1M uncached + 1M cached input, 1M output of which 0.4M reasoning: 1.25 + 0.125 + 10.
  EXPECT_EQ(baseline_cost(b, usage(2'000'000, 1'000'000, 1'000'000, 400'000)).pico, usd(11.375));
  // A cache write is billed as plain input at the baseline.
  EXPECT_EQ(baseline_cost(b, usage(1'000'000, 0, 0, 0, 1'000'000)).pico, usd(1.25));
  // A very long prompt stays in the one tier.
  EXPECT_EQ(baseline_cost(b, usage(3'000'000, 0, 0)).pico, usd(3.75));
  EXPECT_EQ(baseline_cost(Pricing{}, usage(1'000, 0, 1'000)).pico, 0);  // no baseline: nothing to compare
}

TEST(Savings, CachedInputOnDeepSeekAtPeakAndOffPeak) {
  const auto& f = facts("deepseek@global/deepseek-flash");
  const auto u = usage(2'000'000, 1'000'000, 1'000'000);  // 1.506 USD at peak, half off-peak
  const Saving peak = saving_of(f, gpt_class(), u, utc(0, 2, 0));
  EXPECT_EQ(peak.actual.pico, usd(1.506));
  EXPECT_EQ(peak.baseline.pico, usd(11.375));
  EXPECT_EQ(peak.saved().pico, usd(11.375 - 1.506));
  const Saving off = saving_of(f, gpt_class(), u, utc(0, 12, 0));
  EXPECT_EQ(off.actual.pico, usd(0.753));
  EXPECT_EQ(off.baseline.pico, peak.baseline.pico);  // the baseline ignores the clock
  EXPECT_EQ(off.saved().pico, usd(11.375 - 0.753));
}

TEST(Savings, QwenThinkingModeAndTiers) {
  const auto& f = facts("qwen@ap-southeast-1/qwen-plus");
  const auto when = utc(0, 12, 0);
  // Thinking mode bills the whole 1M output at 4.00; the baseline bills it at 10.
  const Saving thinking = saving_of(f, gpt_class(), usage(0, 0, 1'000'000, 1), when);
  EXPECT_EQ(thinking.actual.pico, usd(4.00));
  EXPECT_EQ(thinking.saved().pico, usd(6.00));
  // Second tier (300K input): 0.36 + 12.00 with thinking; baseline 0.375 + 10: routing cost more.
  const Saving tier2 = saving_of(f, gpt_class(), usage(300'000, 0, 1'000'000, 10), when);
  EXPECT_EQ(tier2.actual.pico, usd(0.36 + 12.00));
  EXPECT_EQ(tier2.baseline.pico, usd(0.375 + 10.0));
  EXPECT_LT(tier2.saved().pico, 0);
  EXPECT_EQ(tier2.saved().pico, usd(0.375 + 10.0 - 12.36));
}

TEST(Savings, TieredBaselineFromACatalogEntry) {
  // A catalog entry used as the baseline keeps its tiers: MiniMax-M3 doubles above 512K input.
  const Pricing& b = facts("minimax@intl/MiniMax-M3").pricing;
  EXPECT_EQ(baseline_cost(b, usage(512'000, 0, 1'000'000)).pico, usd(0.1536 + 1.20));
  EXPECT_EQ(baseline_cost(b, usage(600'000, 100'000, 1'000'000)).pico, usd(0.30 + 0.012 + 2.40));
  const auto& ds = facts("deepseek@global/deepseek-flash");
  const Saving s = saving_of(ds, b, usage(600'000, 100'000, 1'000'000), utc(0, 12, 0));
  EXPECT_EQ(s.saved().pico, s.baseline.pico - s.actual.pico);
  EXPECT_GT(s.saved().pico, 0);
}

}  // namespace
}  // namespace routing
