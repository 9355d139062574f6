#include <gtest/gtest.h>

#include <set>

#include "routing/catalog.h"
#include "routing/constraints.h"

namespace routing {
namespace {

TEST(Catalog, BuiltinShape) {
  auto c = builtin_catalog();
  // deepseek 2 models x 1 region, qwen 4 x 4, kimi 3 x 2, glm 4 x 2
  EXPECT_EQ(c->size(), 2u + 16u + 6u + 8u);
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
