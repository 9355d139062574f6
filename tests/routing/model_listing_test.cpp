// PolicyRouter::model_listing (GET /v1/models): a name is served on a path when configuration leaves
// it a candidate; a passing outage does not hide it.
#include <gtest/gtest.h>

#include <algorithm>

#include "routing/policy_router.h"
#include "test_util.h"

namespace routing {
namespace {

using test::must_compile;

const std::vector<ListingPath> kQuery = {{"/v1/chat/completions"}, {"/v1/responses"}, {"/v1/messages"}};
const std::vector<std::string> kPaths = {"/v1/chat/completions", "/v1/responses", "/v1/messages"};

// deepseek keyed, qwen without a key.
std::vector<ProviderInstance> half_keyed() {
  auto p = test::all_providers();
  for (auto& i : p)
    if (i.name == "qwen") i.has_credentials = false;
  return p;
}

const char* kPolicy = R"(
routes:
  - {name: ds, match: {model: ds}, objective: ordered, candidates: [deepseek/deepseek-flash]}
  - {name: qw, match: {model: qw}, candidates: [qwen@us-east-1/qwen-flash]}
  - {name: chat-only, match: {model: co, path: "/v1/chat/*"}, candidates: [deepseek/deepseek-flash]}
  - {name: both, match: {model: both}, objective: ordered, candidates: [qwen@us-east-1/qwen-flash, deepseek/deepseek-flash]}
)";

const ModelListing& find(const std::vector<ModelListing>& all, const std::string& name) {
  auto it = std::find_if(all.begin(), all.end(), [&](const ModelListing& m) { return m.name == name; });
  if (it == all.end()) throw std::runtime_error("not listed: " + name);
  return *it;
}

TEST(ModelListing, KeysPathsAndReasons) {
  PolicyRouter r(must_compile(kPolicy, half_keyed()));
  auto all = r.model_listing(RequestFeatures{}, kQuery);
  EXPECT_EQ(find(all, "ds").paths, kPaths);
  EXPECT_TRUE(find(all, "ds").unavailable.empty());
  EXPECT_TRUE(find(all, "qw").paths.empty());
  EXPECT_NE(find(all, "qw").unavailable.find("set DASHSCOPE_API_KEY"), std::string::npos) << find(all, "qw").unavailable;
  EXPECT_EQ(find(all, "co").paths, std::vector<std::string>{"/v1/chat/completions"});
  EXPECT_EQ(find(all, "both").paths, kPaths);  // one keyed candidate is enough
}

TEST(ModelListing, AnOpenCircuitDoesNotHideAModel) {
  core::ManualClock clock;
  PolicyRouterOptions opt;
  opt.clock = &clock;
  opt.breaker.failures_to_open = 1;
  PolicyRouter r(must_compile(kPolicy, half_keyed()), opt);
  AttemptOutcome bad;
  bad.deployment = "deepseek@global/deepseek-flash";
  bad.ok = false;
  bad.error = core::make_error(core::ErrorKind::server_error, "boom", core::ErrorSource::upstream);
  r.record(bad);
  ASSERT_FALSE(r.plan(test::request("ds")).ok());  // the circuit is open: no plan now
  const auto listed = r.model_listing(RequestFeatures{}, kQuery);
  EXPECT_EQ(find(listed, "ds").paths, kPaths) << find(listed, "ds").unavailable;
}

TEST(ModelListing, SuspensionsAndTenantPresetsHide) {
  PolicyRouter r(must_compile(kPolicy));
  r.set_suspensions(test::one_suspension(SuspensionKind::vendor, "deepseek"));
  auto all = r.model_listing(RequestFeatures{}, kQuery);
  EXPECT_TRUE(find(all, "ds").paths.empty());
  EXPECT_NE(find(all, "ds").unavailable.find("suspended"), std::string::npos) << find(all, "ds").unavailable;
  EXPECT_EQ(find(all, "qw").paths, kPaths);

  PolicyRouter plain(must_compile(kPolicy));
  TenantSettings federal;
  federal.presets = kPresetUsFederal;  // no PRC-linked vendor
  RequestFeatures base;
  base.tenant = "gov";
  base.tenant_settings = &federal;
  auto gov = plain.model_listing(base, kQuery);
  EXPECT_TRUE(find(gov, "ds").paths.empty());
  EXPECT_TRUE(find(gov, "qw").paths.empty());
  EXPECT_EQ(find(plain.model_listing(RequestFeatures{}, kQuery), "ds").paths, kPaths);
}

}  // namespace
}  // namespace routing

namespace routing {
namespace {

TEST(ModelListing, EmbeddingModelsServeOnlyTheEmbeddingsPath) {
  PolicyRouter r(test::must_compile(R"(
routes:
  - {name: emb, match: {model: text-embedding-v4}, candidates: [qwen@ap-southeast-1/text-embedding-v4]}
  - {name: ds, match: {model: ds}, candidates: [deepseek/deepseek-flash]}
)"));
  std::vector<ListingPath> q = kQuery;
  q.push_back({"/v1/embeddings", true});
  auto all = r.model_listing(RequestFeatures{}, q);
  EXPECT_EQ(find(all, "text-embedding-v4").paths, std::vector<std::string>{"/v1/embeddings"});
  EXPECT_EQ(find(all, "ds").paths, kPaths);
}

}  // namespace
}  // namespace routing
