// Invoice-grade cost per dialect: each vendor's real usage payload goes through the gateway's
// normaliser, then the built-in price table, and must equal the figure computed by hand from the
// vendors' list prices (2026-11) at a fixed clock.
#include <gtest/gtest.h>

#include <chrono>

#include "core/money.h"
#include "providers/dialect.h"
#include "providers/openai_normalize.h"
#include "routing/catalog.h"
#include "routing/pricing.h"

namespace {

using namespace std::chrono;

core::WallTime utc(int y, unsigned m, unsigned d, int h, int min = 0) {
  return core::WallTime(sys_days{year{y} / month{m} / day{d}}) + hours(h) + minutes(min);
}

core::Usage usage_of(const char* dialect, const std::string& body) {
  auto r = providers::normalize_response(*providers::find_dialect(dialect), body);
  EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message);
  return r.ok() ? r->usage : core::Usage{};
}

core::Money cost(const std::string& id, const core::Usage& u, core::WallTime when) {
  auto cat = routing::builtin_catalog();
  const routing::DeploymentFacts* f = cat->find(id);
  EXPECT_NE(f, nullptr) << id;
  return f ? routing::cost_of(*f, u, when) : core::Money{};
}

// USD per 1M tokens * tokens, in pico-dollars, exactly.
int64_t pico(double usd_per_million, int64_t tokens) { return std::llround(usd_per_million * 1e6) * tokens; }

const char* kDeepSeek = R"({"id":"a","object":"chat.completion","created":1,"model":"deepseek-flash",
  "choices":[{"index":0,"message":{"role":"assistant","content":"x","reasoning_content":"y"},"finish_reason":"stop"}],
  "usage":{"prompt_tokens":1000,"completion_tokens":300,"total_tokens":1300,"prompt_cache_hit_tokens":600,
           "prompt_cache_miss_tokens":400,"completion_tokens_details":{"reasoning_tokens":120}}})";

}  // namespace

TEST(Cost, DeepSeekPeakOffPeakAndWeekend) {
  core::Usage u = usage_of("deepseek", kDeepSeek);
  ASSERT_EQ(u.cached_tokens, 600);
  ASSERT_EQ(u.reasoning_tokens, 120);
  // Peak (Tue 02:00 UTC): miss 0.30, hit 0.006, output 1.20 (reasoning billed as output).
  const int64_t peak = pico(0.30, 400) + pico(0.006, 600) + pico(1.20, 300);
  EXPECT_EQ(cost("deepseek@global/deepseek-flash", u, utc(2026, 11, 24, 2)).pico, peak);
  EXPECT_EQ(core::format_usd(core::Money{peak}), "0.0004836");
  // Off-peak (Tue 12:00 UTC, and 04:30 between the two peak windows) is half price.
  EXPECT_EQ(cost("deepseek@global/deepseek-flash", u, utc(2026, 11, 24, 12)).pico, peak / 2);
  EXPECT_EQ(cost("deepseek@global/deepseek-flash", u, utc(2026, 11, 24, 4, 30)).pico, peak / 2);
  // Weekends are off-peak all day (Sat 2026-11-28 02:00).
  EXPECT_EQ(cost("deepseek@global/deepseek-flash", u, utc(2026, 11, 28, 2)).pico, peak / 2);
  // Window edges: 01:00 is peak, 10:00 is not.
  EXPECT_EQ(cost("deepseek@global/deepseek-flash", u, utc(2026, 11, 24, 1, 0)).pico, peak);
  EXPECT_EQ(cost("deepseek@global/deepseek-flash", u, utc(2026, 11, 24, 10, 0)).pico, peak / 2);
}

TEST(Cost, QwenCachedTokensAndInputTiers) {
  // Qwen reports cache hits in prompt_tokens_details.cached_tokens; qwen3.7-plus <=256K tier:
  // 0.50 in, 0.05 cached, 3.00 out.
  core::Usage u = usage_of("qwen", R"({"id":"q","object":"chat.completion","choices":[{"index":0,
    "message":{"role":"assistant","content":"x"},"finish_reason":"stop"}],
    "usage":{"prompt_tokens":2000,"completion_tokens":100,"total_tokens":2100,"prompt_tokens_details":{"cached_tokens":1500}}})");
  ASSERT_EQ(u.cached_tokens, 1500);
  EXPECT_EQ(cost("qwen@ap-southeast-1/qwen3.7-plus", u, utc(2026, 11, 24, 2)).pico,
            pico(0.50, 500) + pico(0.05, 1500) + pico(3.00, 100));
  // Above 256K input tokens the whole request moves to the upper tier: 2.00 / 0.20 / 6.00.
  core::Usage big = u;
  big.prompt_tokens = 300000;
  big.cached_tokens = 0;
  EXPECT_EQ(cost("qwen@ap-southeast-1/qwen3.7-plus", big, utc(2026, 11, 24, 2)).pico,
            pico(2.00, 300000) + pico(6.00, 100));
}

TEST(Cost, KimiStreamUsageInsideChoice) {
  // Kimi streams usage in choices[0].usage of the finish chunk, cached_tokens at the top of it.
  providers::StreamNormalizer n(*providers::find_dialect("kimi"), true);
  n.process(R"({"id":"k","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"hi"}}]})");
  n.process(R"({"id":"k","object":"chat.completion.chunk","choices":[{"index":0,"delta":{},"finish_reason":"stop",
    "usage":{"prompt_tokens":4000,"completion_tokens":250,"total_tokens":4250,"cached_tokens":3072}}]})");
  core::Usage u = n.usage();
  ASSERT_EQ(u.cached_tokens, 3072);
  // kimi-k2.6: 0.95 in, 0.16 cached, 4.00 out.
  EXPECT_EQ(cost("kimi@intl/kimi-k2.6", u, utc(2026, 11, 24, 2)).pico,
            pico(0.95, 928) + pico(0.16, 3072) + pico(4.00, 250));
}

TEST(Cost, GlmCachedAndReasoning) {
  core::Usage u = usage_of("glm", R"({"id":"g","choices":[{"index":0,"message":{"role":"assistant","content":"x",
    "reasoning_content":"r"},"finish_reason":"stop"}],"usage":{"prompt_tokens":800,"completion_tokens":400,
    "total_tokens":1200,"prompt_tokens_details":{"cached_tokens":256},"completion_tokens_details":{"reasoning_tokens":300}}})");
  ASSERT_EQ(u.cached_tokens, 256);
  ASSERT_EQ(u.reasoning_tokens, 300);
  // glm-4.7: 0.60 in, 0.11 cached, 2.20 out (reasoning billed as output).
  EXPECT_EQ(cost("glm@intl/glm-4.7", u, utc(2026, 11, 24, 2)).pico,
            pico(0.60, 544) + pico(0.11, 256) + pico(2.20, 400));
}
