#include "gateway/config.h"

#include <gtest/gtest.h>

using gateway::parse_config;

TEST(Config, DefaultsWithoutAFile) {
  auto c = parse_config("", "<defaults>");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->providers.size(), 5u);
  bool has_auto = false;
  for (const auto& [alias, refs] : c->models) has_auto |= alias == "auto";
  EXPECT_TRUE(has_auto);
}

TEST(Config, ErrorsCarryFileLineColumn) {
  auto c = parse_config("server:\n  listen: \"127.0.0.1:0\"\n  wokers: 2\n", "gw.yaml");
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.error().message.find("gw.yaml:3:3"), std::string::npos) << c.error().message;
  EXPECT_NE(c.error().message.find("wokers"), std::string::npos);

  auto bad_yaml = parse_config("server: [\n", "x.yaml");
  ASSERT_FALSE(bad_yaml.ok());
  EXPECT_EQ(bad_yaml.error().message.rfind("x.yaml:", 0), 0u) << bad_yaml.error().message;

  auto secret = parse_config("providers:\n  deepseek:\n    api_key: sk-123\n", "s.yaml");
  ASSERT_FALSE(secret.ok());
  EXPECT_NE(secret.error().message.find("never go in the YAML"), std::string::npos);
  EXPECT_EQ(secret.error().message.find("sk-123"), std::string::npos);

  auto bad_url = parse_config("providers:\n  v:\n    type: openai_compatible\n    base_url: ftp://x\n", "u.yaml");
  ASSERT_FALSE(bad_url.ok());
  EXPECT_NE(bad_url.error().message.find("http"), std::string::npos);

  auto bad_type = parse_config("upstream:\n  connect_timeout_ms: soon\n", "t.yaml");
  ASSERT_FALSE(bad_type.ok());
  EXPECT_NE(bad_type.error().message.find("t.yaml:2:23"), std::string::npos) << bad_type.error().message;
}

TEST(Config, ProvidersAndModels) {
  auto c = parse_config(R"(
upstream: {first_byte_timeout_ms: 1500, max_attempts: 2}
providers:
  qwen: {region: us-east-1, base_urls: {us-east-1: "http://127.0.0.1:9/compatible-mode/v1"}}
  vllm: {type: openai_compatible, base_url: "http://127.0.0.1:8000/v1"}
models:
  chat: [qwen/qwen-flash, vllm/Qwen/Qwen3-30B-A3B]
  one: vllm/m
)", "p.yaml");
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ(c->timeouts.first_byte.count(), 1500);
  EXPECT_EQ(c->max_attempts, 2);
  ASSERT_EQ(c->models.size(), 2u);
  EXPECT_EQ(c->models[0].second[1], "vllm/Qwen/Qwen3-30B-A3B");
  EXPECT_EQ(c->models[1].second.size(), 1u);
}
