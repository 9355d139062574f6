#include "gateway/state/tenants.h"
#include "routing/policy.h"

#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <set>

namespace gateway {
namespace {

core::Result<TenantDirectory> load(const std::string& yaml) {
  YAML::Node root = YAML::Load(yaml);
  return TenantDirectory::from_yaml(root["tenants"], "gw.yaml");
}

TEST(Tenants, ParsesFullShape) {
  std::string k1 = "gwk_test_key_one";
  std::string h1 = hash_key(k1).substr(7);
  auto d = load(R"(
tenants:
  acme:
    keys: [{id: k1, sha256: ")" + h1 + R"("}]
    models: ["qwen-*", auto]
    client_region: DE
    data_classification: internal
    compliance_profile: eu-gdpr
    budget: {daily_usd: 5, monthly_usd: 100.5, hard: true}
    limits: {rpm: 600, tpm: 200000, concurrency: 20}
  beta:
    budget: {daily_usd: 0.25, hard: false}
)");
  ASSERT_TRUE(d.ok()) << d.error().message;
  const Tenant* t = d->find("acme");
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->client_region, "DE");
  EXPECT_EQ(t->compliance_profiles, std::vector<std::string>{"eu-gdpr"});
  EXPECT_EQ(t->routing.presets, routing::kPresetEuGdpr);
  EXPECT_EQ(*t->budget.daily, core::Money::from_usd(5));
  EXPECT_EQ(t->budget.monthly->pico, 100'500'000'000'000);
  EXPECT_TRUE(t->budget.hard);
  EXPECT_EQ(*t->limits.rpm, 600);
  EXPECT_EQ(*t->limits.tpm, 200000);
  EXPECT_EQ(*t->limits.concurrency, 20);
  EXPECT_TRUE(model_allowed(*t, "qwen-flash"));
  EXPECT_TRUE(model_allowed(*t, "auto"));
  EXPECT_FALSE(model_allowed(*t, "deepseek-flash"));
  const Tenant* b = d->find("beta");
  ASSERT_NE(b, nullptr);
  EXPECT_FALSE(b->budget.hard);
  EXPECT_FALSE(b->budget.monthly.has_value());
  EXPECT_FALSE(b->limits.rpm.has_value());
  EXPECT_TRUE(model_allowed(*b, "anything"));
  EXPECT_EQ(d->find("nobody"), nullptr);
}

TEST(Tenants, AuthenticateByHash) {
  std::string k1 = mint_key(), k2 = mint_key();
  auto d = load("tenants:\n  a:\n    keys: [{id: ka, sha256: \"" + hash_key(k1) + "\"}]\n  b:\n    keys:\n"
                "      - {id: kb, sha256: \"" + hash_key(k2).substr(7) + "\"}\n");
  ASSERT_TRUE(d.ok()) << d.error().message;
  std::string id;
  const Tenant* t = d->authenticate(k1, &id);
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->name, "a");
  EXPECT_EQ(id, "ka");
  t = d->authenticate(k2, &id);
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->name, "b");
  EXPECT_EQ(id, "kb");
  EXPECT_EQ(d->authenticate(k1 + "x", &id), nullptr);
  EXPECT_EQ(d->authenticate("", nullptr), nullptr);
  EXPECT_EQ(d->authenticate(hash_key(k1), nullptr), nullptr);  // the hash is not a key
}

TEST(Tenants, MintedKeysAreWellFormedAndDistinct) {
  std::set<std::string> seen;
  for (int i = 0; i < 200; ++i) {
    std::string k = mint_key();
    ASSERT_EQ(k.size(), 44u);
    ASSERT_EQ(k.rfind("gwk_", 0), 0u);
    for (char c : k.substr(4)) ASSERT_TRUE(std::isalnum(static_cast<unsigned char>(c))) << k;
    seen.insert(k);
  }
  EXPECT_EQ(seen.size(), 200u);
  // Known SHA-256 vector.
  EXPECT_EQ(hash_key("abc"), "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(Tenants, KeyConfigLineRoundTrips) {
  std::string k = mint_key();
  std::string line = key_config_line("acme", k);
  EXPECT_EQ(line.find(k), std::string::npos) << "the key itself must never be printed";
  // Paste the line under tenants.acme.keys and authenticate with the key.
  std::string item = line.substr(line.find("- {"));
  auto d = load("tenants:\n  acme:\n    keys:\n      " + item);
  ASSERT_TRUE(d.ok()) << d.error().message;
  std::string id;
  ASSERT_NE(d->authenticate(k, &id), nullptr);
  EXPECT_EQ(id, "k-" + hash_key(k).substr(7, 8));
  EXPECT_NE(key_config_line("acme", k, "ci").find("{id: ci,"), std::string::npos);
}

TEST(Tenants, ErrorsCarryLineAndColumn) {
  struct Case {
    std::string yaml, expect;
  } cases[] = {
      {"tenants:\n  acme:\n    budgets: {}\n", "gw.yaml:3:5: unknown key 'budgets' in tenants.acme"},
      {"tenants:\n  acme:\n    keys: [{id: k1, sha256: abc}]\n", "gw.yaml:3:29: sha256 must be 64 hex digits"},
      {"tenants:\n  acme:\n    keys: [{id: k1, key: gwk_x}]\n", "keys are stored as hashes only"},
      {"tenants:\n  acme:\n    limits: {rpm: 0}\n", "gw.yaml:3:19: tenants.acme.limits.rpm must be > 0"},
      {"tenants:\n  acme:\n    limits: {rpm: lots}\n", "tenants.acme.limits.rpm has the wrong type ('lots')"},
      {"tenants:\n  acme:\n    budget: {daily_usd: -1}\n", "gw.yaml:3:25: tenants.acme.budget.daily_usd must be"},
      {"tenants:\n  acme:\n    budget: {daily_usd: 10, monthly_usd: 5}\n", "daily_usd is larger than monthly_usd"},
      {"tenants:\n  \"a b\": {}\n", "gw.yaml:2:3: tenant name 'a b'"},
      {"tenants: [a, b]\n", "gw.yaml:1:10: tenants must be a mapping"},
      {"tenants:\n  a:\n    keys: [{id: k, sha256: \"" + std::string(64, 'a') + "\"}, {id: k, sha256: \"" +
           std::string(64, 'b') + "\"}]\n",
       "duplicate key id 'k'"},
      {"tenants:\n  a:\n    keys: [{id: k, sha256: \"" + std::string(64, 'a') + "\"}]\n  b:\n    keys: [{id: k2, "
       "sha256: \"" + std::string(64, 'A') + "\"}]\n",
       "gw.yaml:5:29: the same key hash is already used by a/k"},
  };
  for (const auto& c : cases) {
    auto d = load(c.yaml);
    ASSERT_FALSE(d.ok()) << c.yaml;
    EXPECT_NE(d.error().message.find(c.expect), std::string::npos) << d.error().message << "\n--- wanted: " << c.expect;
  }
}

TEST(Tenants, AbsentSectionIsOpenMode) {
  auto d = TenantDirectory::from_yaml(YAML::Node(), "gw.yaml");
  ASSERT_TRUE(d.ok());
  EXPECT_TRUE(d->empty());
  EXPECT_EQ(d->authenticate("anything", nullptr), nullptr);
}

TEST(Tenants, Glob) {
  EXPECT_TRUE(glob_match("*", ""));
  EXPECT_TRUE(glob_match("qwen-*", "qwen-"));
  EXPECT_TRUE(glob_match("q?en*max", "qwen3-max"));
  EXPECT_FALSE(glob_match("qwen-*", "qwen3"));
  EXPECT_TRUE(glob_match("*-*-*", "a-b-c"));
  EXPECT_FALSE(glob_match("a*b", "aXc"));
  EXPECT_TRUE(glob_match("exact", "exact"));
  EXPECT_FALSE(glob_match("exact", "exactly"));
}

}  // namespace
}  // namespace gateway
