#include "providers/glm_jwt.h"

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

namespace {
std::string b64url_decode(const std::string& in) {
  std::string s = in;
  for (char& c : s) c = c == '-' ? '+' : c == '_' ? '/' : c;
  while (s.size() % 4) s.push_back('=');
  std::string out(s.size(), '\0');
  int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()), reinterpret_cast<const unsigned char*>(s.data()), int(s.size()));
  size_t pad = (4 - in.size() % 4) % 4;
  out.resize(static_cast<size_t>(n) - pad);
  return out;
}
}  // namespace

TEST(GlmJwt, HeaderPayloadAndSignatureFollowZhipuConvention) {
  auto tok = providers::glm_jwt("myid.mysecret", 1700000000000, 3600000);
  ASSERT_TRUE(tok.ok());
  auto d1 = tok->find('.'), d2 = tok->rfind('.');
  ASSERT_NE(d1, d2);
  EXPECT_EQ(b64url_decode(tok->substr(0, d1)), R"({"alg":"HS256","sign_type":"SIGN"})");
  EXPECT_EQ(b64url_decode(tok->substr(d1 + 1, d2 - d1 - 1)),
            R"({"api_key":"myid","exp":1700003600000,"timestamp":1700000000000})");
  std::string input = tok->substr(0, d2);
  unsigned char mac[32];
  unsigned int len = 0;
  HMAC(EVP_sha256(), "mysecret", 8, reinterpret_cast<const unsigned char*>(input.data()), input.size(), mac, &len);
  EXPECT_EQ(tok->substr(d2 + 1), providers::base64url(std::string(reinterpret_cast<char*>(mac), len)));
  EXPECT_EQ(tok->find('='), std::string::npos);
}

TEST(GlmJwt, KeyWithoutSecretIsRejected) {
  EXPECT_FALSE(providers::glm_jwt("nodot", 1, 1).ok());
  EXPECT_FALSE(providers::glm_jwt("id.", 1, 1).ok());
}

TEST(Base64Url, KnownVectors) {
  EXPECT_EQ(providers::base64url(""), "");
  EXPECT_EQ(providers::base64url("f"), "Zg");
  EXPECT_EQ(providers::base64url("fo"), "Zm8");
  EXPECT_EQ(providers::base64url("foo"), "Zm9v");
  EXPECT_EQ(providers::base64url("\xfb\xff"), "-_8");
}
