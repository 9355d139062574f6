// parse_endpoint: the pool key and the Host header value computed once per configured endpoint.
#include <gtest/gtest.h>

#include "providers/upstream_client.h"

namespace {

TEST(Endpoint, DefaultPortsAreLeftOutOfTheHostHeader) {
  auto https = providers::parse_endpoint("https://api.deepseek.com/v1");
  ASSERT_TRUE(https);
  EXPECT_EQ(https->port, "443");
  EXPECT_EQ(https->base_path, "/v1");
  EXPECT_EQ(https->key, "https://api.deepseek.com:443");
  EXPECT_EQ(https->authority, "api.deepseek.com");

  auto http = providers::parse_endpoint("http://vllm.internal");
  ASSERT_TRUE(http);
  EXPECT_EQ(http->key, "http://vllm.internal:80");
  EXPECT_EQ(http->authority, "vllm.internal");
}

TEST(Endpoint, OtherPortsAreInTheHostHeader) {
  auto e = providers::parse_endpoint("http://127.0.0.1:18101/v1");
  ASSERT_TRUE(e);
  EXPECT_EQ(e->authority, "127.0.0.1:18101");
  EXPECT_EQ(e->key, "http://127.0.0.1:18101");
  // The scheme's default port of the other scheme is not a default here.
  auto e443 = providers::parse_endpoint("http://proxy.corp:443");
  ASSERT_TRUE(e443);
  EXPECT_EQ(e443->authority, "proxy.corp:443");
}

TEST(Endpoint, Ipv6LiteralsKeepTheirBracketsInTheHostHeader) {
  auto e = providers::parse_endpoint("http://[::1]:8000/v1");
  ASSERT_TRUE(e);
  EXPECT_EQ(e->host, "::1");
  EXPECT_EQ(e->authority, "[::1]:8000");
  auto d = providers::parse_endpoint("https://[2001:db8::5]/");
  ASSERT_TRUE(d);
  EXPECT_EQ(d->authority, "[2001:db8::5]");
}

TEST(Endpoint, RejectsOtherSchemesAndBadPorts) {
  EXPECT_FALSE(providers::parse_endpoint("ftp://example.com"));
  EXPECT_FALSE(providers::parse_endpoint("http://example.com:80a"));
  EXPECT_FALSE(providers::parse_endpoint("http:///v1"));
}

}  // namespace
