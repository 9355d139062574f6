#include <gtest/gtest.h>

#include "core/json_writer.h"
#include "core/money.h"

TEST(Money, ExactPicoDollarArithmetic) {
  auto p = core::TokenPrice::per_million_usd(0.003625);  // DeepSeek pro cache-hit, 2026
  EXPECT_EQ(p.pico_per_token, 3625);
  EXPECT_EQ(p.times(1'000'000).pico, 3'625'000'000);
  EXPECT_EQ(core::format_usd(p.times(1'000'000)), "0.003625");
  EXPECT_EQ(core::format_usd(core::Money{0}), "0.0");
  EXPECT_EQ(core::format_usd(core::Money::from_usd(1.5)), "1.5");
}

TEST(JsonWriter, EscapesControlAndQuotes) {
  EXPECT_EQ(core::json_string("a\"b\\c\n\x01"), "\"a\\\"b\\\\c\\n\\u0001\"");
}

TEST(Utf8, Validation) {
  EXPECT_TRUE(core::valid_utf8("héllo 你好 🎉"));
  EXPECT_FALSE(core::valid_utf8("\xC3\x28"));
  EXPECT_FALSE(core::valid_utf8("\xED\xA0\x80"));      // surrogate
  EXPECT_FALSE(core::valid_utf8("\xC0\xAF"));          // overlong
  EXPECT_FALSE(core::valid_utf8("\xF4\x90\x80\x80"));  // > U+10FFFF
  EXPECT_FALSE(core::valid_utf8("\xE4\xBD"));          // truncated
}
