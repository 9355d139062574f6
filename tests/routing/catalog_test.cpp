#include <gtest/gtest.h>

#include <set>

#include "routing/catalog.h"
#include "routing/constraints.h"

namespace routing {
namespace {

TEST(Catalog, BuiltinShape) {
  auto c = builtin_catalog();
  // deepseek 4 model IDs x 1 region, qwen 8 x 7 + text-embedding-v4 in 2 regions, kimi 10 x 2,
  // glm 9 x 4 + embedding-3 in cn, minimax 3 x 2
  EXPECT_EQ(c->size(), 4u + 56u + 2u + 20u + 36u + 1u + 6u);
  std::set<std::string> ids;
  for (const auto& d : c->deployments()) {
    EXPECT_TRUE(ids.insert(d.deployment.id).second) << d.deployment.id;
    EXPECT_EQ(d.deployment.id, deployment_id(d.deployment.provider, d.deployment.region, d.deployment.model));
    EXPECT_FALSE(d.pricing.tiers.empty()) << d.deployment.id;
    EXPECT_GT(d.context_window, 0) << d.deployment.id;
    EXPECT_GT(d.max_output, 0) << d.deployment.id;
    EXPECT_EQ(d.risk.jurisdiction, "CN");
    EXPECT_EQ(d.developer_country, "CN");
    EXPECT_FALSE(d.risk.verified_at.empty());
  }
  for (const char* id : {"deepseek@global/deepseek-flash", "deepseek@global/deepseek-v4-pro", "qwen@cn-beijing/qwen-flash",
                         "qwen@ap-southeast-1/qwen3.7-plus", "qwen@us-east-1/qwen3-coder-plus", "qwen@cn-hongkong/qwen3-max",
                         "kimi@intl/kimi-k2.6", "kimi@cn/kimi-k3", "kimi@intl/kimi-k2.5", "glm@intl/glm-5.2",
                         "glm@cn/glm-4.7", "glm@intl/glm-4.7-flashx", "glm@cn/glm-4.5-air"})
    EXPECT_NE(c->find(id), nullptr) << id;
}

// The embedding models: only where the reference prices them, each region at its own price, and
// the only deployments with the `embeddings` capability (DeepSeek, Kimi and MiniMax have no
// OpenAI embeddings API).
TEST(Catalog, BuiltinEmbeddingModels) {
  auto c = builtin_catalog();
  std::set<std::string> emb;
  for (const auto& d : c->deployments())
    if (d.caps.embeddings) emb.insert(d.deployment.id);
  EXPECT_EQ(emb, (std::set<std::string>{"qwen@ap-southeast-1/text-embedding-v4", "qwen@cn-beijing/text-embedding-v4",
                                        "glm@cn/embedding-3"}));
  const auto* sg = c->find("qwen@ap-southeast-1/text-embedding-v4");
  const auto* bj = c->find("qwen@cn-beijing/text-embedding-v4");
  ASSERT_NE(sg, nullptr);
  ASSERT_NE(bj, nullptr);
  EXPECT_EQ(sg->pricing.tiers.at(0).input.pico_per_token, 70000);  // $0.07 per 1M
  EXPECT_EQ(bj->pricing.tiers.at(0).input.pico_per_token, 72000);  // $0.072 per 1M
  EXPECT_EQ(sg->context_window, 8192);
  EXPECT_EQ(c->find("qwen@us-east-1/text-embedding-v4"), nullptr);
  EXPECT_EQ(c->find("glm@intl/embedding-3"), nullptr);
  EXPECT_EQ(c->find("glm@cn/embedding-3")->sources.at("price"), "unverified");
}

// Every model and region of reference/providers.md (compiled 2026-11-23), with its dated facts.
// A checked-in copy of the reference's figures: ctx, max_out, then tier 1 in / cached / out (USD/1M).
TEST(Catalog, ReferenceModelsAndPrices) {
  struct Row {
    const char* id;
    int64_t ctx, max_out;
    double in, cached, out;
  };
  const Row rows[] = {
      {"deepseek@global/deepseek-v4-flash", 1000000, 384000, 0.30, 0.006, 1.20},
      {"deepseek@global/deepseek-v4-flash-vision-exp", 1000000, 384000, 0.30, 0.006, 1.20},
      {"qwen@ap-southeast-1/qwen-plus", 1000000, 32768, 0.40, 0.08, 1.20},
      {"qwen@ap-southeast-1/qwen3.7-max", 1000000, 65536, 2.50, 0.50, 7.50},
      {"qwen@ap-southeast-1/qwen3.8-max", 1000000, 65536, 2.00, 0.40, 6.00},
      {"qwen@ap-southeast-1/qwen3.8-flash", 1000000, 131072, 0.15, 0.016, 0.47},
      {"kimi@intl/kimi-k2.7-code", 262144, 262144, 0.95, 0.19, 4.00},
      {"kimi@intl/kimi-k2.7-code-highspeed", 262144, 262144, 1.90, 0.38, 8.00},
      {"kimi@intl/moonshot-v1-8k", 8192, 8192, 0.2, 0.2, 2.0},
      {"kimi@cn/moonshot-v1-32k", 32768, 32768, 1.0, 1.0, 3.0},
      {"kimi@intl/moonshot-v1-128k", 131072, 131072, 2.0, 2.0, 5.0},
      {"kimi@intl/kimi-k3.1-pro", 1000000, 1000000, 3.00, 0.30, 15.00},
      {"kimi@intl/kimi-k3.1-highspeed", 1000000, 1000000, 3.00, 0.30, 15.00},
      {"glm@intl/glm-5.3", 1000000, 131072, 1.40, 0.26, 4.40},
      {"glm@intl/glm-5.1", 200000, 131072, 1.40, 0.26, 4.40},
      {"glm@intl/glm-5", 200000, 131072, 1.00, 0.20, 3.20},
      {"glm@intl/glm-5-turbo", 200000, 131072, 1.20, 0.24, 4.00},
      {"glm@intl/glm-4.7-flash", 200000, 131072, 0.0, 0.0, 0.0},
      {"glm@intl-coding/glm-4.7", 204800, 131072, 0.60, 0.11, 2.20},
      {"glm@cn-coding/glm-5.2", 1000000, 131072, 1.40, 0.26, 4.40},
      {"minimax@intl/MiniMax-M3", 1000000, 131072, 0.30, 0.06, 1.20},
      {"minimax@cn/MiniMax-M2.7", 204800, 204800, 0.30, 0.06, 1.20},
      {"minimax@intl/MiniMax-M2.7-highspeed", 204800, 204800, 0.60, 0.12, 2.40},
      {"qwen@eu-central-1/qwen-flash", 1000000, 32768, 0.05, 0.01, 0.40},
      {"qwen@ap-northeast-1/qwen-flash", 1000000, 32768, 0.05, 0.01, 0.40},
      {"qwen@global/qwen-flash", 1000000, 32768, 0.05, 0.01, 0.40},
  };
  auto c = builtin_catalog();
  for (const auto& r : rows) {
    const auto* d = c->find(r.id);
    ASSERT_NE(d, nullptr) << r.id;
    EXPECT_EQ(d->context_window, r.ctx) << r.id;
    EXPECT_EQ(d->max_output, r.max_out) << r.id;
    const auto& t = d->pricing.tiers.front();
    EXPECT_EQ(t.input.pico_per_token, core::TokenPrice::per_million_usd(r.in).pico_per_token) << r.id;
    EXPECT_EQ(t.cached_input.pico_per_token, core::TokenPrice::per_million_usd(r.cached).pico_per_token) << r.id;
    EXPECT_EQ(t.output.pico_per_token, core::TokenPrice::per_million_usd(r.out).pico_per_token) << r.id;
    EXPECT_FALSE(d->pricing.source.empty()) << r.id;
  }
  // Unverified facts say so in their source.
  EXPECT_NE(c->find("kimi@intl/kimi-k3.1-pro")->pricing.source.find("[U]"), std::string::npos);
  EXPECT_NE(c->find("qwen@ap-southeast-1/qwen3.8-max")->pricing.source.find("[S]"), std::string::npos);
  // MiniMax-M3's second tier starts above 512K input tokens.
  const auto& m3 = c->find("minimax@intl/MiniMax-M3")->pricing;
  ASSERT_EQ(m3.tiers.size(), 2u);
  EXPECT_EQ(m3.tiers[0].up_to_input_tokens, 512000);
  EXPECT_EQ(m3.tiers[1].input.pico_per_token, core::TokenPrice::per_million_usd(0.60).pico_per_token);
  EXPECT_EQ(m3.tiers[1].cached_input.pico_per_token, core::TokenPrice::per_million_usd(0.12).pico_per_token);
  EXPECT_EQ(m3.tiers[1].output.pico_per_token, core::TokenPrice::per_million_usd(2.40).pico_per_token);
}

TEST(Catalog, RegionResidency) {
  auto c = builtin_catalog();
  const auto* eu = c->find("qwen@eu-central-1/qwen-flash");
  EXPECT_TRUE(runs_only_in(eu->risk.inference_countries, expand_country_group("EU")));
  EXPECT_EQ(eu->risk.storage_countries, std::vector<std::string>{"DE"});
  const auto* global = c->find("qwen@global/qwen-flash");
  EXPECT_TRUE(may_touch(global->risk.inference_countries, global->risk.inference_excluded, {"CN"}));
  const auto* us = c->find("qwen@us-east-1/qwen-flash");
  EXPECT_FALSE(may_touch(us->risk.inference_countries, us->risk.inference_excluded, {"CN"}));
  const auto* tokyo = c->find("qwen@ap-northeast-1/qwen-flash");
  EXPECT_TRUE(tokyo->risk.inference_countries.empty());  // scope not documented: unknown, fails closed
  const auto* mm = c->find("minimax@intl/MiniMax-M3");
  EXPECT_EQ(mm->risk.contracting_country, "SG");
  EXPECT_EQ(mm->risk.storage_countries, std::vector<std::string>{"US"});
  EXPECT_TRUE(mm->risk.has_flag("distillation_allegation"));
  EXPECT_EQ(c->find("minimax@cn/MiniMax-M3")->risk.inference_countries, std::vector<std::string>{"CN"});
}

// Neither reference records a CAC filing; the DeepSeek ban list is compliance.md's.
TEST(Catalog, SourcedListFacts) {
  auto c = builtin_catalog();
  for (const auto& d : c->deployments()) EXPECT_FALSE(d.risk.cac_genai_filed) << d.deployment.id;
  const auto& bans = c->find("deepseek@global/deepseek-flash")->risk.gov_device_bans;
  size_t states = 0;
  for (const auto& b : bans) states += b.rfind("us_state:", 0) == 0;
  EXPECT_EQ(states, 17u);
  for (const char* b : {"us_state:NV", "us_state:GA", "us_fed:disa", "us_fed:commerce", "cz_public", "au_pspf"})
    EXPECT_NE(std::find(bans.begin(), bans.end(), b), bans.end()) << b;
}

TEST(Catalog, RiskFacts) {
  auto c = builtin_catalog();
  const auto* glm = c->find("glm@intl/glm-5.2");
  EXPECT_TRUE(glm->risk.has_flag("us_entity_list"));
  EXPECT_EQ(glm->risk.sanctions_risk(), SanctionsRisk::high);
  const auto* ds = c->find("deepseek@global/deepseek-flash");
  EXPECT_EQ(ds->risk.sanctions_risk(), SanctionsRisk::medium);
  EXPECT_TRUE(ds->risk.has_flag("gov_device_bans"));
  EXPECT_EQ(ds->risk.inference_countries, std::vector<std::string>{"CN"});
  const auto* qsg = c->find("qwen@ap-southeast-1/qwen-flash");
  EXPECT_EQ(qsg->risk.sanctions_risk(), SanctionsRisk::low);  // dod_1260h_pending
  EXPECT_FALSE(may_touch(qsg->risk.inference_countries, qsg->risk.inference_excluded, {"CN"}));
  EXPECT_TRUE(may_touch(qsg->risk.inference_countries, qsg->risk.inference_excluded, {"US"}));
  const auto* kimi = c->find("kimi@intl/kimi-k2.6");
  EXPECT_EQ(kimi->risk.sanctions_risk(), SanctionsRisk::none);
  EXPECT_TRUE(kimi->risk.inference_countries.empty());  // not stated: unknown
  EXPECT_TRUE(may_touch(kimi->risk.inference_countries, {}, {"CN"}));  // unknown fails closed
  EXPECT_FALSE(runs_only_in(kimi->risk.inference_countries, {"SG", "US"}));
  EXPECT_EQ(c->find("qwen@us-east-1/qwen-flash")->risk.inference_countries, std::vector<std::string>{"US"});
}

TEST(Catalog, CountryGroups) {
  EXPECT_EQ(expand_country_group("prc"), (std::vector<std::string>{"CN", "HK", "MO"}));
  auto eea = expand_country_group("EEA");
  EXPECT_EQ(eea.size(), 30u);
  EXPECT_NE(std::find(eea.begin(), eea.end(), "NO"), eea.end());
  EXPECT_EQ(expand_country_group("de"), std::vector<std::string>{"DE"});
}

}  // namespace
}  // namespace routing
