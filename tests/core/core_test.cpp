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

namespace {
// The escaper's reference: one byte at a time.
std::string reference_json_string(std::string_view s) {
  static const char* hex = "0123456789abcdef";
  std::string out = "\"";
  for (unsigned char c : s) {
    if (c == '"') out += "\\\"";
    else if (c == '\\') out += "\\\\";
    else if (c == '\n') out += "\\n";
    else if (c == '\r') out += "\\r";
    else if (c == '\t') out += "\\t";
    else if (c == '\b') out += "\\b";
    else if (c == '\f') out += "\\f";
    else if (c < 0x20) { out += "\\u00"; out += hex[c >> 4]; out += hex[c & 15]; }
    else out += static_cast<char>(c);
  }
  return out + "\"";
}
}  // namespace

// The word-at-a-time scan must agree with the byte loop for every byte value at every position
// of a word (and in the tail shorter than a word), and on bytes >= 0x80 next to the special ones.
TEST(JsonWriter, WordScanAgreesWithByteLoop) {
  for (int len = 0; len <= 19; ++len)
    for (int pos = 0; pos < len; ++pos)
      for (int c = 0; c < 256; ++c) {
        std::string s(len, 'a');
        s[pos] = static_cast<char>(c);
        if (pos + 1 < len) s[pos + 1] = static_cast<char>(0xff - c);
        ASSERT_EQ(core::json_string(s), reference_json_string(s)) << "len " << len << " pos " << pos << " byte " << c;
      }
  uint64_t x = 88172645463325252ull;  // xorshift: fixed seed, so a failure reproduces
  for (int round = 0; round < 2000; ++round) {
    std::string s;
    const int len = int(x % 97);
    for (int i = 0; i < len; ++i) {
      x ^= x << 13; x ^= x >> 7; x ^= x << 17;
      s.push_back(static_cast<char>(x % 5 == 0 ? x % 0x30 : x >> 24));
    }
    ASSERT_EQ(core::json_string(s), reference_json_string(s)) << round;
  }
}

TEST(Utf8, Validation) {
  EXPECT_TRUE(core::valid_utf8("héllo 你好 🎉"));
  EXPECT_FALSE(core::valid_utf8("\xC3\x28"));
  EXPECT_FALSE(core::valid_utf8("\xED\xA0\x80"));      // surrogate
  EXPECT_FALSE(core::valid_utf8("\xC0\xAF"));          // overlong
  EXPECT_FALSE(core::valid_utf8("\xF4\x90\x80\x80"));  // > U+10FFFF
  EXPECT_FALSE(core::valid_utf8("\xE4\xBD"));          // truncated
}
