// Prices: tiers by input length, DeepSeek peak/off-peak by UTC clock, every token kind.
#include <gtest/gtest.h>

#include "routing/catalog.h"
#include "routing/pricing.h"
#include "routing/text_util.h"
#include "test_util.h"

namespace routing {
namespace {

using test::facts;
using test::usage;
using test::utc;

struct PeakCase {
  int day, hh, mm;
  bool peak;
};

TEST(Pricing, DeepSeekPeakWindowsUtc) {
  const PriceSchedule& s = facts("deepseek@global/deepseek-flash").pricing.schedule;
  const PeakCase cases[] = {
      {0, 0, 59, false}, {0, 1, 0, true},  {0, 3, 59, true},  {0, 4, 0, false}, {0, 5, 59, false},
      {0, 6, 0, true},   {0, 9, 59, true}, {0, 10, 0, false}, {0, 23, 0, false},
      {4, 2, 0, true},    // Friday
      {5, 2, 0, false},   // Saturday: all off-peak
      {6, 7, 30, false},  // Sunday
      {7, 1, 30, true},   // next Monday
  };
  for (const auto& c : cases) {
    EXPECT_EQ(is_peak(s, utc(c.day, c.hh, c.mm)), c.peak) << "day " << c.day << " " << c.hh << ":" << c.mm;
  }
}

TEST(Pricing, DeepSeekOffPeakIsHalfPrice) {
  const auto& f = facts("deepseek@global/deepseek-flash");
  // 1M miss + 1M hit + 1M output at peak: 0.30 + 0.006 + 1.20 = 1.506 USD.
  const auto u = usage(2'000'000, 1'000'000, 1'000'000);
  EXPECT_EQ(cost_of(f, u, utc(0, 2, 0)).pico, core::Money::from_usd(1.506).pico);
  EXPECT_EQ(cost_of(f, u, utc(0, 12, 0)).pico, core::Money::from_usd(0.753).pico);
  EXPECT_EQ(cost_of(f, u, utc(5, 2, 0)).pico, core::Money::from_usd(0.753).pico);
  const auto& pro = facts("deepseek@global/deepseek-v4-pro");
  EXPECT_EQ(cost_of(pro, usage(1'000'000, 0, 0), utc(0, 2, 0)).pico, core::Money::from_usd(1.32).pico);
  EXPECT_EQ(cost_of(pro, usage(1'000'000, 0, 0), utc(0, 11, 0)).pico, core::Money::from_usd(0.66).pico);
}

struct TierCase {
  const char* id;
  int64_t input;
  double usd_per_m_input;
  double usd_per_m_output;
};

TEST(Pricing, TiersByInputLength) {
  const TierCase cases[] = {
      {"qwen@ap-southeast-1/qwen-flash", 1000, 0.05, 0.40},
      {"qwen@ap-southeast-1/qwen-flash", 256000, 0.05, 0.40},  // bound is inclusive
      {"qwen@ap-southeast-1/qwen-flash", 256001, 0.25, 2.00},
      {"qwen@us-east-1/qwen3.7-plus", 300000, 2.00, 6.00},
      {"qwen@us-east-1/qwen3-coder-plus", 32000, 1.0, 5.0},
      {"qwen@us-east-1/qwen3-coder-plus", 32001, 1.8, 9.0},
      {"qwen@us-east-1/qwen3-coder-plus", 200000, 3.0, 15.0},
      {"qwen@us-east-1/qwen3-coder-plus", 900000, 6.0, 60.0},
      {"qwen@cn-beijing/qwen3-max", 100000, 2.4, 12.0},
      {"glm@intl/glm-4.7", 150000, 0.60, 2.20},  // flat
  };
  for (const auto& c : cases) {
    const auto& f = facts(c.id);
    const auto in_only = cost_of(f, usage(c.input, 0, 0), utc(0, 2, 0));
    EXPECT_EQ(in_only.pico, core::Money::from_usd(c.usd_per_m_input * static_cast<double>(c.input) / 1e6).pico)
        << c.id << " @" << c.input;
    const auto& tier = f.pricing.tier_for(c.input);
    EXPECT_DOUBLE_EQ(tier.output.per_million_usd_value(), c.usd_per_m_output) << c.id << " @" << c.input;
  }
}

TEST(Pricing, EveryTokenKind) {
  DeploymentFacts f;
  PriceTier t;
  t.input = core::TokenPrice::per_million_usd(1.0);
  t.cached_input = core::TokenPrice::per_million_usd(0.1);
  t.cache_write = core::TokenPrice::per_million_usd(1.25);
  t.output = core::TokenPrice::per_million_usd(4.0);
  t.reasoning_output = core::TokenPrice::per_million_usd(8.0);
  f.pricing.tiers.push_back(t);
  // 1000 prompt = 600 uncached + 300 cached + 100 written; 500 completion = 200 reasoning + 300 visible.
  const auto c = cost_of(f, usage(1000, 300, 500, 200, 100), utc(0, 0, 0));
  const double expect = (600 * 1.0 + 300 * 0.1 + 100 * 1.25 + 300 * 4.0 + 200 * 8.0) / 1e6;
  EXPECT_EQ(c.pico, core::Money::from_usd(expect).pico);
  // Nonsense usage (reasoning > completion, cached > prompt) never goes negative.
  EXPECT_GE(cost_of(f, usage(10, 50, 5, 99), utc(0, 0, 0)).pico, 0);
}

TEST(Pricing, HolidaysFromYamlAreOffPeak) {
  auto p = test::must_compile(R"(
catalog:
  - ref: deepseek@global/*
    price:
      schedule: {peak: ["Mon-Fri 01:00-04:00", "Mon-Fri 06:00-10:00"], offpeak_factor: 0.5, offpeak_dates: [2026-11-24]}
routes:
  - name: r
    candidates: [deepseek/*]
)");
  const auto* f = p->find("deepseek@global/deepseek-flash");
  ASSERT_NE(f, nullptr);
  EXPECT_TRUE(is_peak(f->pricing.schedule, utc(0, 2, 0)));
  EXPECT_FALSE(is_peak(f->pricing.schedule, utc(1, 2, 0)));  // the holiday
  EXPECT_TRUE(is_peak(f->pricing.schedule, utc(2, 2, 0)));
}

// National Day (2026-10-01, a Thursday) at 02:00 UTC, inside a peak window: off-peak, half price.
// A week later, the same hour is peak again.
TEST(Pricing, BuiltinHolidayAtPeakHourIsOffPeak) {
  const auto& f = facts("deepseek@global/deepseek-flash");
  const auto u = usage(2'000'000, 1'000'000, 1'000'000);
  const int national_day = -53;  // 2026-11-23 minus 53 days
  EXPECT_FALSE(is_peak(f.pricing.schedule, utc(national_day, 2, 0)));
  EXPECT_EQ(cost_of(f, u, utc(national_day, 2, 0)).pico, core::Money::from_usd(0.753).pico);
  EXPECT_EQ(cost_of(f, u, utc(national_day + 7, 2, 0)).pico, core::Money::from_usd(1.506).pico);
  EXPECT_EQ(cost_of(f, u, utc(national_day - 1, 2, 0)).pico, core::Money::from_usd(1.506).pico);
  EXPECT_EQ(builtin_holidays_through("deepseek"), "2026-10-01");
  EXPECT_EQ(builtin_holidays_through("qwen"), "");
}

// `gateway check`'s warning, with the clock injected: the built-in list (National Day 2026-10-01)
// covers the next 12 months on 2025-09-30 and not a day later; a policy's own dates cover it again;
// a provider without a holiday rule never warns.
TEST(Pricing, HolidayCoverageWarningBothSides) {
  const auto& builtin = builtin_catalog()->deployments();
  const int64_t national_day = *parse_iso_date("2026-10-01");
  EXPECT_EQ(holiday_coverage_warning(builtin, national_day - 365), "");
  const std::string w = holiday_coverage_warning(builtin, national_day - 364);
  EXPECT_NE(w.find("deepseek off-peak holiday dates end 2026-10-01, less than 12 months ahead"), std::string::npos) << w;
  const int64_t today = *parse_iso_date("2026-11-23");
  EXPECT_NE(holiday_coverage_warning(builtin, today), "");
  auto p = test::must_compile(R"(
catalog:
  - ref: deepseek@global/*
    price:
      schedule: {peak: ["Mon-Fri 01:00-04:00"], offpeak_factor: 0.5, offpeak_dates: ["2027-10-01", "2027-12-01"]}
routes:
  - name: r
    candidates: [deepseek/*]
)");
  EXPECT_EQ(holiday_coverage_warning(p->deployments, today), "");
  EXPECT_NE(holiday_coverage_warning(p->deployments, *parse_iso_date("2026-12-02")), "");
  auto none = test::must_compile(R"(
catalog:
  - ref: deepseek@global/*
    price:
      schedule: {peak: ["Mon-Fri 01:00-04:00"], offpeak_factor: 0.5}
routes:
  - name: r
    candidates: [deepseek/*]
)");
  EXPECT_NE(holiday_coverage_warning(none->deployments, today).find("end nowhere (none listed)"), std::string::npos);
  std::vector<DeploymentFacts> qwen_only;
  for (const auto& d : builtin)
    if (d.provider_type == "qwen") qwen_only.push_back(d);
  ASSERT_FALSE(qwen_only.empty());
  qwen_only.front().pricing.schedule.peak.push_back({0x1F, 60, 120});  // a schedule, but no holiday rule
  EXPECT_EQ(holiday_coverage_warning(qwen_only, today), "");
}

// qwen-plus: non-thinking output 1.20/1M, thinking-mode output 4.00/1M for every output token
// (answer included); above 256K input 3.60 and 12.00.
TEST(Pricing, QwenPlusThinkingVsNonThinkingOutput) {
  const auto& f = facts("qwen@ap-southeast-1/qwen-plus");
  const auto when = utc(0, 12, 0);
  EXPECT_EQ(cost_of(f, usage(0, 0, 1'000'000), when).pico, core::Money::from_usd(1.20).pico);
  EXPECT_EQ(cost_of(f, usage(0, 0, 1'000'000, 1), when).pico, core::Money::from_usd(4.00).pico);
  EXPECT_EQ(cost_of(f, usage(0, 0, 1'000'000, 400'000), when).pico, core::Money::from_usd(4.00).pico);
  // 300K input (second tier): 300K x 1.20 + 1M x 3.60 without thinking, + 1M x 12 with it.
  EXPECT_EQ(cost_of(f, usage(300'000, 0, 1'000'000), when).pico, core::Money::from_usd(0.36 + 3.60).pico);
  EXPECT_EQ(cost_of(f, usage(300'000, 0, 1'000'000, 10), when).pico, core::Money::from_usd(0.36 + 12.00).pico);
  // Other models keep reasoning tokens at the plain output price, the answer unchanged.
  const auto& flash = facts("qwen@ap-southeast-1/qwen-flash");
  EXPECT_EQ(cost_of(flash, usage(0, 0, 1'000'000, 1), when).pico, core::Money::from_usd(0.40).pico);
}

// MiniMax-M3: up to 512K input 0.30 / 0.06 / 1.20, above 0.60 / 0.12 / 2.40.
TEST(Pricing, MiniMaxM3Tier512K) {
  const auto& f = facts("minimax@intl/MiniMax-M3");
  const auto when = utc(0, 2, 0);  // no schedule: the clock does not matter
  EXPECT_EQ(cost_of(f, usage(512'000, 0, 1'000'000), when).pico, core::Money::from_usd(0.1536 + 1.20).pico);
  EXPECT_EQ(cost_of(f, usage(512'001, 0, 0), when).pico, core::Money::from_usd(512'001 * 0.60 / 1e6).pico);
  EXPECT_EQ(cost_of(f, usage(600'000, 100'000, 1'000'000), when).pico,
            core::Money::from_usd(0.30 + 0.012 + 2.40).pico);
}

TEST(Pricing, YamlOverridesPrice) {
  auto p = test::must_compile(R"(
catalog:
  - ref: glm@intl/glm-4.7-flashx
    price: {input: 0.10, output: 0.50, as_of: 2026-12-01}
routes:
  - name: r
    candidates: [glm/*]
)");
  const auto* f = p->find("glm@intl/glm-4.7-flashx");
  ASSERT_NE(f, nullptr);
  EXPECT_DOUBLE_EQ(f->pricing.tiers.at(0).input.per_million_usd_value(), 0.10);
  EXPECT_DOUBLE_EQ(f->pricing.tiers.at(0).cached_input.per_million_usd_value(), 0.01);  // kept
  EXPECT_EQ(f->pricing.as_of, "2026-12-01");
  // The CN endpoint of the same model is untouched.
  EXPECT_DOUBLE_EQ(p->find("glm@cn/glm-4.7-flashx")->pricing.tiers.at(0).input.per_million_usd_value(), 0.07);
}

}  // namespace
}  // namespace routing
