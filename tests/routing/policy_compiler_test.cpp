// The YAML policy language: every error carries file:line:column and, for typos, a suggestion.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "routing/policy.h"
#include "test_util.h"

namespace routing {
namespace {

std::string compile_error(const std::string& yaml, const std::vector<ProviderInstance>& providers = test::all_providers()) {
  auto r = compile_policy(yaml, "policies/x.yaml", *builtin_catalog(), providers);
  if (r.ok()) return "";
  EXPECT_EQ(r.error().kind, core::ErrorKind::bad_request);
  EXPECT_EQ(r.error().code, "invalid_policy");
  return r.error().message;
}

struct ErrorCase {
  const char* name;
  const char* yaml;
  const char* expected;  // substring of the message
};

TEST(PolicyCompiler, ErrorsCarryPositionAndHints) {
  const ErrorCase cases[] = {
      {"unknown constraint", R"(routes:
  - name: r
    candidates: [deepseek/*]
    constraints:
      max_sanction_risk: low
)",
       "policies/x.yaml:5:7: unknown constraint 'max_sanction_risk' (did you mean 'max_sanctions_risk'?)"},
      {"unknown top-level key", "rutes: []\n", "policies/x.yaml:1:1: unknown key 'rutes' (did you mean 'routes'?)"},
      {"provider typo", R"(routes:
  - name: r
    candidates: [deepseak/deepseek-flash]
)",
       "policies/x.yaml:3:18: unknown provider 'deepseak' (did you mean 'deepseek'?)"},
      {"model typo", R"(routes:
  - name: r
    candidates:
      - qwen/qwen-flsh
)",
       "policies/x.yaml:4:9: unknown model 'qwen-flsh' for provider 'qwen' (did you mean 'qwen-flash'?)"},
      {"region typo", R"(routes:
  - name: r
    candidates: ["qwen@us-east1/qwen-flash"]
)",
       "unknown region 'us-east1' for provider 'qwen' (did you mean 'us-east-1'?)"},
      {"yaml syntax", "routes:\n  - name: [unclosed\n", "policies/x.yaml:3:1: YAML syntax error"},
      {"wrong type", R"(routes:
  - name: r
    candidates: [deepseek/*]
    max_attempts: lots
)",
       "policies/x.yaml:4:19: max_attempts must be an integer, got 'lots'"},
      {"unknown preset", R"(routes:
  - name: r
    candidates: [deepseek/*]
    constraints: {presets: [eu-gpdr]}
)",
       "unknown preset 'eu-gpdr' (did you mean 'eu-gdpr'?)"},
      {"objective type", R"(routes:
  - name: r
    candidates: [deepseek/*]
    objective: {type: cheapest}
)",
       "objective type 'cheapest' is not one of weighted, cheapest_within_slo, ordered"},
      {"slo needed", R"(routes:
  - name: r
    candidates: [deepseek/*]
    objective: {type: cheapest_within_slo}
)",
       "cheapest_within_slo needs latency_slo_ms or ttft_slo_ms"},
      {"weights on ordered", R"(routes:
  - name: r
    candidates: [deepseek/*]
    objective: {type: ordered, weights: {cost: 1}}
)",
       "'weights' only apply to objective type weighted"},
      {"no routes", "name: x\n", "policy needs 'routes'"},
      {"duplicate route", R"(routes:
  - {name: r, candidates: [deepseek/*]}
  - {name: r, candidates: [qwen/*]}
)",
       "policies/x.yaml:3:12: duplicate route name 'r'"},
      {"bad country", R"(routes:
  - name: r
    candidates: [deepseek/*]
    constraints: {required_inference_regions: [Europe]}
)",
       "'Europe' is not an ISO 3166-1 alpha-2 code or a group"},
      {"bad capability", R"(routes:
  - name: r
    candidates: [deepseek/*]
    constraints: {required_capabilities: [tool]}
)",
       "unknown capability 'tool' (did you mean 'tools'?)"},
      {"bad schedule", R"(catalog:
  - ref: deepseek@global/*
    price: {schedule: {peak: ["Mon-Fry 01:00-04:00"], offpeak_factor: 0.5}}
routes:
  - {name: r, candidates: [deepseek/*]}
)",
       "bad day range 'Mon-Fry'"},
      {"flat price on tiers", R"(catalog:
  - ref: qwen@us-east-1/qwen-flash
    price: {input: 1}
routes:
  - {name: r, candidates: [qwen/*]}
)",
       "has 2 input-length tiers; override them with 'tiers'"},
      {"new deployment needs context", R"(catalog:
  - ref: my-vllm@dc1/llama
    price: {input: 0, output: 0}
routes:
  - {name: r, candidates: [my-vllm/*]}
)",
       "needs context_window"},
      {"bad version", "version: 2\nroutes: [{name: r, candidates: [deepseek/*]}]\n", "unsupported policy version 2"},
      {"unknown candidate key", R"(routes:
  - name: r
    candidates:
      - {provider: qwen, modle: qwen-flash}
)",
       "unknown candidate key 'modle' (did you mean 'model'?)"},
  };
  for (const auto& c : cases) {
    const std::string msg = compile_error(c.yaml);
    EXPECT_NE(msg.find(c.expected), std::string::npos) << c.name << "\n got: " << msg << "\n want: " << c.expected;
  }
}

TEST(PolicyCompiler, ReportsAllErrorsOnePerLine) {
  const std::string msg = compile_error(R"(routes:
  - name: r
    candidates: [deepseek/*]
    constraints:
      max_sanction_risk: low
      denied_flag: [x]
    objectiv: ordered
)");
  EXPECT_NE(msg.find(":5:7: unknown constraint 'max_sanction_risk'"), std::string::npos) << msg;
  EXPECT_NE(msg.find(":6:7: unknown constraint 'denied_flag'"), std::string::npos) << msg;
  EXPECT_NE(msg.find(":7:5: unknown route key 'objectiv'"), std::string::npos) << msg;
  EXPECT_EQ(std::count(msg.begin(), msg.end(), '\n'), 2) << msg;
}

TEST(PolicyCompiler, InstancesMapToDeployments) {
  std::vector<ProviderInstance> providers{
      {"qwen-us", "qwen", {"us-east-1"}, true, "", {}},
      {"deepseek", "deepseek", {}, false, "set DEEPSEEK_API_KEY", {}},
      {"my-vllm", "openai_compatible", {"dc1"}, true, "", {"llama-3.3-70b"}},
  };
  auto p = test::must_compile(R"(
catalog:
  - ref: my-vllm@dc1/llama-3.3-70b
    jurisdiction: self
    inference_countries: [DE]
    context_window: 131072
routes:
  - {name: r, candidates: ["*/*"]}
)",
                              providers);
  ASSERT_NE(p->find("qwen-us@us-east-1/qwen-flash"), nullptr);
  EXPECT_EQ(p->find("qwen-us@cn-beijing/qwen-flash"), nullptr);  // region not configured
  // The built-in "qwen" provider nobody configured is visible but unconfigured.
  ASSERT_NE(p->find("qwen@cn-beijing/qwen-flash"), nullptr);
  EXPECT_FALSE(p->find("qwen@cn-beijing/qwen-flash")->configured);
  EXPECT_FALSE(p->find("deepseek@global/deepseek-flash")->has_credentials);
  const auto* v = p->find("my-vllm@dc1/llama-3.3-70b");
  ASSERT_NE(v, nullptr);
  EXPECT_EQ(v->risk.jurisdiction, "self");
  EXPECT_EQ(v->risk.inference_countries, std::vector<std::string>{"DE"});
  EXPECT_EQ(v->context_window, 131072);
  // The local engine is not configured: present (for explain) but unconfigured.
  ASSERT_NE(p->find("local@local/local"), nullptr);
  EXPECT_FALSE(p->find("local@local/local")->configured);
}

TEST(PolicyCompiler, NewDeploymentPricesDefaultToInputAndOutput) {
  std::vector<ProviderInstance> providers{{"my-vllm", "openai_compatible", {"dc1"}, true, "", {"m"}}};
  auto p = test::must_compile(R"(
catalog:
  - {ref: my-vllm@dc1/m, context_window: 1000, price: {input: 2, output: 8}}
  - {ref: my-vllm@dc1/m2, context_window: 1000, price: {input: 2, output: 8, cached_input: 0.5}}
  - {ref: deepseek@global/new-model, context_window: 1000, price: {input: 1, output: 3}}
routes:
  - {name: r, candidates: ["*/*"]}
)",
                              providers);
  const auto* v = p->find("my-vllm@dc1/m");
  ASSERT_NE(v, nullptr);
  ASSERT_EQ(v->pricing.tiers.size(), 1u);
  const auto& t = v->pricing.tiers[0];
  EXPECT_EQ(t.cached_input.pico_per_token, t.input.pico_per_token);
  EXPECT_EQ(t.cache_write.pico_per_token, t.input.pico_per_token);
  EXPECT_EQ(t.reasoning_output.pico_per_token, t.output.pico_per_token);
  EXPECT_EQ(t.input.pico_per_token, 2'000'000);
  const auto* v2 = p->find("my-vllm@dc1/m2");
  ASSERT_NE(v2, nullptr);
  EXPECT_EQ(v2->pricing.tiers[0].cached_input.pico_per_token, 500'000);   // stated: kept
  EXPECT_EQ(v2->pricing.tiers[0].reasoning_output.pico_per_token, 8'000'000);
  // A new model on a built-in provider: same rule, the template's price is not inherited.
  const auto* d = p->find("deepseek@global/new-model");
  ASSERT_NE(d, nullptr);
  EXPECT_EQ(d->pricing.tiers[0].cached_input.pico_per_token, 1'000'000);
  EXPECT_EQ(d->pricing.tiers[0].reasoning_output.pico_per_token, 3'000'000);
}

TEST(PolicyCompiler, ModelNames) {
  auto p = test::must_compile(R"(
routes:
  - {name: a, match: {model: [auto, fast]}, candidates: [deepseek/*]}
  - {name: b, match: {model: $catalog}, candidates: [{model: $request}]}
)");
  const auto& n = p->model_names;
  for (const char* m : {"auto", "fast", "deepseek-flash", "qwen3-max", "kimi-k3", "glm-4.5-air", "local"})
    EXPECT_NE(std::find(n.begin(), n.end(), m), n.end()) << m;
  EXPECT_TRUE(std::is_sorted(n.begin(), n.end()));
}

TEST(PolicyCompiler, ShippedPoliciesCompile) {
  const std::vector<std::vector<ProviderInstance>> configs{
      test::all_providers(true, true), test::all_providers(false, true), test::all_providers(true, false), {}};
  int files = 0;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(GW_POLICIES_DIR)) {
    if (entry.path().extension() != ".yaml") continue;
    // policies/kustomization.yaml ships the policies as a ConfigMap (deploy/k8s); it is not one.
    if (entry.path().filename() == "kustomization.yaml") continue;
    ++files;
    for (const auto& providers : configs) {
      auto r = compile_policy_file(entry.path().string(), *builtin_catalog(), providers);
      EXPECT_TRUE(r.ok()) << entry.path() << ": " << (r.ok() ? "" : r.error().message);
    }
  }
  EXPECT_GE(files, 5);
}

TEST(PolicyCompiler, MissingFileIsAnError) {
  auto r = compile_policy_file("/nonexistent/p.yaml", *builtin_catalog(), {});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("cannot open"), std::string::npos);
}

}  // namespace
}  // namespace routing
