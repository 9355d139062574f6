#include "gateway/state/auth.h"

#include <gtest/gtest.h>

#include <string>

namespace gateway {
namespace {

// Base64 of `s`, written out by a loop independent of the decoder under test.
std::string encode(std::string_view s) {
  static const char* a = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  size_t i = 0;
  for (; i + 2 < s.size(); i += 3) {
    const uint32_t v = uint8_t(s[i]) << 16 | uint8_t(s[i + 1]) << 8 | uint8_t(s[i + 2]);
    for (int sh = 18; sh >= 0; sh -= 6) out += a[(v >> sh) & 63];
  }
  if (s.size() - i == 1) {
    const uint32_t v = uint8_t(s[i]) << 16;
    out += a[v >> 18], out += a[(v >> 12) & 63], out += "==";
  } else if (s.size() - i == 2) {
    const uint32_t v = uint8_t(s[i]) << 16 | uint8_t(s[i + 1]) << 8;
    out += a[v >> 18], out += a[(v >> 12) & 63], out += a[(v >> 6) & 63], out += '=';
  }
  return out;
}

std::string basic(std::string_view user_and_password) { return "Basic " + encode(user_and_password); }

TEST(Base64, DecodesEveryByteAndEveryPaddingLength) {
  std::string all;
  for (int c = 0; c < 256; ++c) all += static_cast<char>(c);
  for (size_t n = 0; n <= all.size(); ++n) {
    auto d = decode_base64(encode(all.substr(0, n)));
    ASSERT_TRUE(d) << n;
    EXPECT_EQ(*d, all.substr(0, n)) << n;
  }
  EXPECT_EQ(decode_base64("YWRtaW46czNjcjN0").value(), "admin:s3cr3t");
}

TEST(Base64, RefusesWhatIsNotStrictBase64) {
  for (const char* bad : {"YWRtaW4", "YW=taW46", "YWRtaW4=6", "Y===", "====", "YWRt aW46", "YWRtaW4-", "YWRtaW4_",
                          "YQ==\n", " YQ==", "YR==", "YWF=", "\xff\xfe\xfd\xfc"})
    EXPECT_FALSE(decode_base64(bad)) << bad;
  EXPECT_EQ(decode_base64("").value(), "");
}

TEST(AdminCredentials, BearerAndBasicWithTheKeyAsPassword) {
  const std::string key = "adm-k3y:with:colons";
  EXPECT_TRUE(admin_credentials_match("Bearer " + key, key));
  EXPECT_TRUE(admin_credentials_match("bearer " + key, key));
  EXPECT_TRUE(admin_credentials_match(basic("anyone:" + key), key));
  EXPECT_TRUE(admin_credentials_match(basic(":" + key), key));  // empty user name
  EXPECT_TRUE(admin_credentials_match("BASIC " + encode("ops:" + key), key));
}

TEST(AdminCredentials, RefusesEverythingElse) {
  const std::string key = "adm-secret";
  for (const std::string& h : {std::string(), std::string("Bearer"), std::string("Bearer "), "Bearer  " + key,
                               "Bearer " + key + " ", "Bearer " + key + "x", "Bearer " + key.substr(1),
                               std::string("Basic"), std::string("Basic "), basic(key),  // no colon: no password
                               basic(key + ":x"),                                        // the key as user name
                               basic("u:" + key + "x"), basic("u:"), "Basic " + encode("u:" + key) + "=",
                               "Basic  " + encode("u:" + key), "Basic\t" + encode("u:" + key),
                               "Digest " + encode("u:" + key), "Token " + key, key})
    EXPECT_FALSE(admin_credentials_match(h, key)) << h;
  // A NUL inside the password is a byte like any other, not the end of it.
  EXPECT_FALSE(admin_credentials_match(basic(std::string("u:") + key + std::string(1, '\0')), key));
  // No key configured: nothing matches, not even empty credentials.
  EXPECT_FALSE(admin_credentials_match("Bearer ", ""));
  EXPECT_FALSE(admin_credentials_match(basic("u:"), ""));
}

}  // namespace
}  // namespace gateway
