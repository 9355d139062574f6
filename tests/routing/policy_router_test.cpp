// Decisions: constraints and presets (table-driven), scoring, objectives, live feedback,
// circuit breaker, cooldowns, affinity, explain, reload.
#include <gtest/gtest.h>

#include <fstream>
#include <set>
#include <sstream>

#include "routing/policy_router.h"
#include "test_util.h"

namespace routing {
namespace {

using test::all_providers;
using test::must_compile;
using test::request;

std::set<std::string> ids(const Plan& p) {
  std::set<std::string> out;
  for (const auto& a : p.attempts) out.insert(a.deployment.id);
  return out;
}

// The spare route keeps the policy loadable when the constraints under test exclude everything (a
// policy that can serve nothing at all is refused when it compiles).
const std::string kAllCandidates = R"(
    candidates: ["*/*"]
    max_attempts: 16
  - {name: spare, match: {model: spare}, candidates: [local/*]}
)";

struct ConstraintCase {
  const char* name;
  const char* constraints;  // YAML flow mapping
  const char* client_region;
  std::vector<std::string> tags;
  std::vector<std::string> must_include;
  std::vector<std::string> must_exclude;  // deployment id -> must be excluded
  const char* reason_part;                // expected in the exclusion of must_exclude[0]
};

TEST(PolicyRouter, ConstraintTable) {
  const ConstraintCase cases[] = {
      {"deny CN jurisdiction leaves local", "{denied_jurisdictions: [CN]}", "US", {}, {"local@local/local"},
       {"deepseek@global/deepseek-flash"}, "jurisdiction CN denied"},
      {"allowed self only", "{allowed_jurisdictions: [self]}", "US", {}, {"local@local/local"},
       {"qwen@us-east-1/qwen-flash"}, "not in allowed_jurisdictions"},
      {"inference in US only", "{required_inference_regions: [US]}", "US", {}, {"qwen@us-east-1/qwen-flash"},
       {"qwen@ap-southeast-1/qwen-flash", "deepseek@global/deepseek-flash", "kimi@intl/kimi-k2.6"},
       "outside required_inference_regions"},
      // Singapore scope runs "worldwide except mainland China": it may still touch HK/MO.
      {"deny PRC inference", "{denied_inference_regions: [PRC]}", "US", {}, {"qwen@us-east-1/qwen-flash", "glm@intl/glm-4.7"},
       {"qwen@cn-hongkong/qwen-flash", "deepseek@global/deepseek-flash", "kimi@intl/kimi-k2.6", "glm@cn/glm-4.7",
        "qwen@ap-southeast-1/qwen-flash"},
       "may touch denied_inference_regions"},
      {"deny mainland inference", "{denied_inference_regions: [CN]}", "US", {}, {"qwen@ap-southeast-1/qwen-flash"},
       {"qwen@cn-beijing/qwen-flash"}, "inference in CN may touch"},
      {"max sanctions low", "{max_sanctions_risk: low}", "US", {}, {"qwen@us-east-1/qwen-flash", "kimi@intl/kimi-k2.6"},
       {"glm@intl/glm-5.2", "deepseek@global/deepseek-flash"}, "sanctions risk high above max_sanctions_risk low"},
      {"deny entity list flag", "{denied_flags: [us_entity_list]}", "US", {}, {"deepseek@global/deepseek-flash"},
       {"glm@intl/glm-4.7-flashx"}, "flag us_entity_list denied"},
      {"required vision", "{required_capabilities: [vision]}", "US", {}, {"qwen@us-east-1/qwen3.7-plus"},
       {"qwen@us-east-1/qwen-flash", "local@local/local"}, "lacks required capabilities vision"},
      {"no training", "{trains_on_customer_data: [\"no\", opt_in]}", "US", {}, {"glm@intl/glm-4.7", "qwen@us-east-1/qwen-flash"},
       {"kimi@intl/kimi-k2.6", "deepseek@global/deepseek-flash"}, "trains_on_customer_data 'opt_out' not allowed"},
      {"us-federal", "{presets: [us-federal]}", "US", {}, {},
       {"qwen@us-east-1/qwen-flash", "local@local/local"}, "us-federal: provider parent jurisdiction CN"},
      {"us-regulated", "{presets: [us-regulated-enterprise]}", "US", {}, {"qwen@us-east-1/qwen-flash", "local@local/local"},
       {"glm@intl/glm-4.7", "deepseek@global/deepseek-flash", "qwen@cn-hongkong/qwen-flash", "kimi@intl/kimi-k2.6"},
       "us-regulated-enterprise: us_entity_list"},
      {"us-regulated DSP data", "{presets: [us-regulated-enterprise]}", "US", {"us_dsp:health"}, {"local@local/local"},
       {"qwen@us-east-1/qwen-flash"}, "DSP/government data to a covered person"},
      {"eu-gdpr general", "{presets: [eu-gdpr]}", "DE", {}, {"qwen@us-east-1/qwen-flash", "local@local/local"},
       {"deepseek@global/deepseek-flash", "glm@intl/glm-4.7"}, "eu-gdpr: inference in CN may touch CN"},
      {"eu-gdpr personal data", "{presets: [eu-gdpr]}", "DE", {"eu_personal"}, {"local@local/local", "qwen@eu-central-1/qwen-flash"},
       {"qwen@us-east-1/qwen-flash", "qwen@ap-southeast-1/qwen-flash"}, "eu-gdpr: eu_personal data"},
      // No CAC filing is recorded in the built-in catalog, so even the mainland endpoints fail until an
      // operator records the filing in YAML (ChinaDomesticNeedsARecordedFiling).
      {"china-domestic CN client", "{presets: [china-domestic]}", "CN", {}, {},
       {"qwen@cn-beijing/qwen-flash", "glm@cn/glm-4.7", "qwen@ap-southeast-1/qwen-flash", "local@local/local"},
       "china-domestic"},
      {"china-domestic non-CN client", "{presets: [china-domestic]}", "SG", {}, {"qwen@ap-southeast-1/qwen-flash"}, {}, ""},
      {"prc-models-local-only", "{presets: [prc-models-local-only]}", "US", {}, {"local@local/local"},
       {"qwen@us-east-1/qwen-flash"}, "prc-models-local-only"},
  };
  core::ManualClock clock(test::utc(0, 12, 0));
  for (const auto& c : cases) {
    auto policy = must_compile(std::string("routes:\n  - name: r\n    constraints: ") + c.constraints + kAllCandidates);
    PolicyRouter router(policy, {.clock = &clock});
    auto f = request("anything", 1000, 100);
    f.client_region = c.client_region;
    f.data_tags = c.tags;
    Decision d = router.decide(f);
    std::map<std::string, const CandidateEval*> by_id;
    for (const auto& e : d.evals) by_id[policy->deployments[e.deployment].deployment.id] = &e;
    for (const auto& id : c.must_include) {
      ASSERT_TRUE(by_id.count(id)) << c.name << ": " << id;
      EXPECT_FALSE(by_id[id]->excluded) << c.name << ": " << id << " excluded: " << by_id[id]->reason;
    }
    for (const auto& id : c.must_exclude) {
      ASSERT_TRUE(by_id.count(id)) << c.name << ": " << id;
      EXPECT_TRUE(by_id[id]->excluded) << c.name << ": " << id << " should be excluded";
    }
    if (!c.must_exclude.empty())
      EXPECT_NE(by_id[c.must_exclude[0]]->reason.find(c.reason_part), std::string::npos)
          << c.name << ": " << by_id[c.must_exclude[0]]->reason;
  }
}

TEST(PolicyRouter, RefusalsFailClosedWithReasons) {
  core::ManualClock clock(test::utc(0, 12, 0));
  auto policy = must_compile(R"(
routes:
  - name: eu-only
    match: {model: auto}
    constraints: {required_inference_regions: [EU]}
    candidates: [deepseek/deepseek-flash, qwen@cn-beijing/qwen-flash, kimi@intl/kimi-k2.6]
  - {name: spare, match: {model: spare}, candidates: [local/*]}
)");
  PolicyRouter router(policy, {.clock = &clock});
  auto r = router.plan(request("auto"));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().kind, core::ErrorKind::forbidden);
  EXPECT_EQ(r.error().http_status(), 403);
  const std::string& m = r.error().message;
  EXPECT_NE(m.find("route 'eu-only'"), std::string::npos) << m;
  EXPECT_NE(m.find("deepseek@global/deepseek-flash excluded: inference in CN outside required_inference_regions"), std::string::npos) << m;
  EXPECT_NE(m.find("qwen@cn-beijing/qwen-flash excluded: inference in CN"), std::string::npos) << m;
  EXPECT_NE(m.find("kimi@intl/kimi-k2.6 excluded: inference in unknown"), std::string::npos) << m;

  // Unknown model: 404.
  auto nf = router.plan(request("gpt-9"));
  ASSERT_FALSE(nf.ok());
  EXPECT_EQ(nf.error().kind, core::ErrorKind::not_found);
  EXPECT_EQ(nf.error().http_status(), 404);
}

TEST(PolicyRouter, NoKeysMeans503WithHint) {
  core::ManualClock clock(test::utc(0, 12, 0));
  auto policy = must_compile("routes:\n  - {name: r, candidates: [deepseek/*, qwen@us-east-1/qwen-flash]}\n",
                             all_providers(/*keys=*/false, /*local=*/false));
  PolicyRouter router(policy, {.clock = &clock});
  auto r = router.plan(request("x"));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().kind, core::ErrorKind::unavailable);
  EXPECT_EQ(r.error().http_status(), 503);
  EXPECT_NE(r.error().message.find("deepseek@global/deepseek-flash excluded: no API key: set DEEPSEEK_API_KEY"), std::string::npos)
      << r.error().message;
}

TEST(PolicyRouter, SanctionedOriginAlwaysBlocked) {
  core::ManualClock clock;
  auto policy = must_compile("routes:\n  - {name: r, candidates: [\"*/*\"]}\n");
  PolicyRouter router(policy, {.clock = &clock});
  for (const char* region : {"IR", "KP", "CU", "UA-43", "ua-14"}) {
    auto f = request("x");
    f.client_region = region;
    auto r = router.plan(f);
    ASSERT_FALSE(r.ok()) << region;
    EXPECT_EQ(r.error().kind, core::ErrorKind::forbidden) << region;
    EXPECT_NE(r.error().message.find("sanctioned-origin-block"), std::string::npos);
  }
  auto f = request("x");
  f.client_region = "UA-23";  // blocked only for EU/UK operators
  EXPECT_TRUE(router.plan(f).ok());
  auto eu = must_compile("operator_region: EU\nroutes:\n  - {name: r, candidates: [\"*/*\"]}\n");
  PolicyRouter eu_router(eu, {.clock = &clock});
  EXPECT_FALSE(eu_router.plan(f).ok());
}

// china-domestic needs a recorded CAC filing; an operator who has verified one records it in YAML.
TEST(PolicyRouter, ChinaDomesticNeedsARecordedFiling) {
  core::ManualClock clock(test::utc(0, 12, 0));
  auto policy = must_compile(R"(
catalog:
  - ref: qwen@cn-beijing/*
    cac_genai_filed: true
    verified_at: 2026-12-01
routes:
  - name: r
    max_attempts: 16
    constraints: {presets: [china-domestic]}
    candidates: ["qwen/qwen-flash", "glm/glm-4.7"]
)");
  PolicyRouter router(policy, {.clock = &clock});
  auto f = request("anything", 1000, 100);
  f.client_region = "CN";
  auto r = router.plan(f);
  ASSERT_TRUE(r.ok()) << r.error().message;
  std::set<std::string> got;
  for (const auto& a : r->attempts) got.insert(a.deployment.id);
  EXPECT_EQ(got, std::set<std::string>{"qwen@cn-beijing/qwen-flash"});
}

TEST(PolicyRouter, TenantDefaultsApply) {
  core::ManualClock clock;
  auto policy = must_compile(R"(
tenants:
  acme: {client_region: DE, data_classification: eu_personal}
routes:
  - name: personal
    match: {data_classification: eu_personal}
    constraints: {presets: [eu-gdpr]}
    candidates: ["*/*"]
  - name: rest
    candidates: [deepseek/*]
)");
  PolicyRouter router(policy, {.clock = &clock});
  auto f = request("x");
  f.tenant = "acme";
  auto r = router.plan(f);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->route, "personal");
  // EU-resident only: the local engine or Alibaba's Frankfurt EU scope.
  const std::string first = r->attempts.at(0).deployment.id;
  EXPECT_TRUE(first == "local@local/local" || first.rfind("qwen@eu-central-1/", 0) == 0) << first;
  for (const auto& a : r->attempts)
    EXPECT_TRUE(a.deployment.id == "local@local/local" || a.deployment.id.rfind("qwen@eu-central-1/", 0) == 0)
        << a.deployment.id;
  f.tenant = "other";
  auto r2 = router.plan(f);
  ASSERT_TRUE(r2.ok());
  EXPECT_EQ(r2->route, "rest");
}

TEST(PolicyRouter, RequestNeedsAndContextFit) {
  core::ManualClock clock;
  auto policy = must_compile("routes:\n  - {name: r, max_attempts: 16, candidates: [\"qwen@us-east-1/*\", local/*]}\n");
  PolicyRouter router(policy, {.clock = &clock});
  auto f = request("x", 300'000, 1000);
  auto r = router.plan(f);
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(ids(*r).count("qwen@us-east-1/qwen3-max"));  // 262K context
  EXPECT_FALSE(ids(*r).count("local@local/local"));
  EXPECT_TRUE(ids(*r).count("qwen@us-east-1/qwen-flash"));
  f = request("x", 1000, 100);
  f.needs_vision = true;
  r = router.plan(f);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(ids(*r), std::set<std::string>{"qwen@us-east-1/qwen3.7-plus"});
  f = request("x", 2'000'000, 100);
  r = router.plan(f);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().kind, core::ErrorKind::context_too_long);
}

TEST(PolicyRouter, WeightedPrefersCheapestAndDefaultPolicyLocalLast) {
  core::ManualClock clock(test::utc(0, 12, 0));
  auto policy = compile_policy_file(std::string(GW_POLICIES_DIR) + "/default.yaml", *builtin_catalog(), all_providers());
  ASSERT_TRUE(policy.ok()) << policy.error().message;
  PolicyRouter router(policy.value(), {.clock = &clock});
  auto r = router.plan(request("auto", 2000, 300));
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_EQ(r->attempts.size(), 3u);
  // Off-peak DeepSeek flash (0.15/0.60) vs qwen-flash (0.05/0.40) vs glm flashx (0.07/0.40): qwen-flash.
  EXPECT_EQ(r->attempts[0].deployment.model, "qwen-flash");
  for (const auto& a : r->attempts) EXPECT_NE(a.deployment.provider, "local");
  EXPECT_GT(r->attempts[0].est_cost_usd, 0);

  // No keys at all: the local engine serves.
  auto nokeys = compile_policy_file(std::string(GW_POLICIES_DIR) + "/default.yaml", *builtin_catalog(), all_providers(false, true));
  ASSERT_TRUE(nokeys.ok());
  PolicyRouter local_router(nokeys.value(), {.clock = &clock});
  for (const char* model : {"auto", "gpt-4o-mini", "local"}) {
    auto l = local_router.plan(request(model));
    ASSERT_TRUE(l.ok()) << model << ": " << l.error().message;
    EXPECT_EQ(l->attempts.at(0).deployment.id, "local@local/local") << model;
  }
  // A catalog alias without a key: 503 naming the key.
  auto q = local_router.plan(request("qwen-flash"));
  ASSERT_FALSE(q.ok());
  EXPECT_EQ(q.error().http_status(), 503);
  EXPECT_NE(q.error().message.find("set DASHSCOPE_API_KEY"), std::string::npos);
  // Model list: aliases for the catalog (configured ones) plus auto.
  auto names = router.model_names();
  EXPECT_NE(std::find(names.begin(), names.end(), "auto"), names.end());
  EXPECT_NE(std::find(names.begin(), names.end(), "kimi-k2.6"), names.end());
}

TEST(PolicyRouter, PeakOffPeakChangesTheChoice) {
  // deepseek-flash vs glm-4.5-air (0.20 in / 1.10 out). Peak DeepSeek: 0.30/1.20 (dearer than GLM);
  // off-peak: 0.15/0.60 (cheaper).
  core::ManualClock clock(test::utc(0, 2, 0));  // Monday 02:00 UTC: peak
  auto policy = must_compile(R"(
routes:
  - name: r
    objective: {type: weighted, weights: {cost: 1, latency: 0, error_risk: 0}}
    candidates: [deepseek/deepseek-flash, glm@intl/glm-4.5-air]
)");
  PolicyRouter router(policy, {.clock = &clock});
  auto r = router.plan(request("x", 10'000, 1000));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->attempts[0].deployment.id, "glm@intl/glm-4.5-air");
  clock.set_wall(test::utc(0, 11, 0));  // off-peak
  r = router.plan(request("x", 10'000, 1000));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->attempts[0].deployment.id, "deepseek@global/deepseek-flash");
  EXPECT_NEAR(r->attempts[0].est_cost_usd, (10'000 * 0.15 + 1000 * 0.60) / 1e6, 1e-12);
}

TEST(PolicyRouter, OrderedKeepsOrderAndTieBreakIsDeterministic) {
  core::ManualClock clock;
  auto policy = must_compile(R"(
routes:
  - name: r
    objective: ordered
    max_attempts: 4
    candidates: [kimi@intl/kimi-k3, glm@intl/glm-4.7-flashx, deepseek/deepseek-flash, qwen@us-east-1/qwen-flash]
)");
  PolicyRouter router(policy, {.clock = &clock});
  auto r = router.plan(request("x"));
  ASSERT_TRUE(r.ok());
  std::vector<std::string> got;
  for (const auto& a : r->attempts) got.push_back(a.deployment.id);
  EXPECT_EQ(got, (std::vector<std::string>{"kimi@intl/kimi-k3", "glm@intl/glm-4.7-flashx", "deepseek@global/deepseek-flash",
                                           "qwen@us-east-1/qwen-flash"}));
  // Same price everywhere (qwen-flash in 4 regions), cost-only: policy order breaks the tie.
  auto tie = must_compile(R"(
routes:
  - name: r
    objective: {type: weighted, weights: {cost: 1, latency: 0, error_risk: 0}}
    candidates: [qwen@cn-hongkong/qwen-flash, qwen@us-east-1/qwen-flash, qwen@ap-southeast-1/qwen-flash]
)");
  PolicyRouter tie_router(tie, {.clock = &clock});
  for (int i = 0; i < 5; ++i) {
    auto t = tie_router.plan(request("x"));
    ASSERT_TRUE(t.ok());
    EXPECT_EQ(t->attempts[0].deployment.id, "qwen@cn-hongkong/qwen-flash");
  }
}

AttemptOutcome ok_outcome(const std::string& id, int ttft_ms, int duration_ms, int64_t out_tokens) {
  AttemptOutcome o;
  o.deployment = id;
  o.ok = true;
  o.ttft = std::chrono::milliseconds(ttft_ms);
  o.duration = std::chrono::milliseconds(duration_ms);
  o.output_tokens = out_tokens;
  return o;
}

AttemptOutcome failure(const std::string& id, core::ErrorKind kind, int retry_after_ms = 0) {
  AttemptOutcome o;
  o.deployment = id;
  o.ok = false;
  o.error = core::make_error(kind, "boom", core::ErrorSource::upstream);
  o.error->retry_after = std::chrono::milliseconds(retry_after_ms);
  return o;
}

TEST(PolicyRouter, LatencySloMovesTrafficAndComesBack) {
  core::ManualClock clock;
  auto policy = must_compile(R"(
routes:
  - name: chat
    objective: {type: cheapest_within_slo, ttft_slo_ms: 1500}
    candidates: [qwen@us-east-1/qwen-flash, glm@intl/glm-4.7-flashx]
)");
  PolicyRouter router(policy, {.clock = &clock});
  const std::string a = "qwen@us-east-1/qwen-flash", b = "glm@intl/glm-4.7-flashx";
  auto first = [&] {
    auto r = router.plan(request("x"));
    EXPECT_TRUE(r.ok());
    return r->attempts.at(0).deployment.id;
  };
  EXPECT_EQ(first(), a);  // cheaper, both meet the SLO on priors
  int moved_after = 0;
  for (int i = 1; i <= 20 && first() == a; ++i) {
    router.record(ok_outcome(a, 4000, 6000, 100));  // a becomes slow
    moved_after = i;
  }
  EXPECT_EQ(first(), b);
  EXPECT_LE(moved_after, 5);
  // After a's figures age (decay toward its prior), it is tried again, and fast answers keep it.
  clock.advance(std::chrono::minutes(30));
  EXPECT_EQ(first(), a);
  router.record(ok_outcome(a, 300, 1000, 100));
  EXPECT_EQ(first(), a);
}

TEST(PolicyRouter, BreakerOpensProbesAndCloses) {
  core::ManualClock clock;
  PolicyRouterOptions opt;
  opt.clock = &clock;
  opt.breaker.failures_to_open = 3;
  opt.breaker.open_cooldown = std::chrono::seconds(10);
  auto policy = must_compile("routes:\n  - {name: r, objective: ordered, candidates: [qwen@us-east-1/qwen-flash, glm@intl/glm-4.7]}\n");
  PolicyRouter router(policy, opt);
  const std::string a = "qwen@us-east-1/qwen-flash", b = "glm@intl/glm-4.7";
  for (int i = 0; i < 3; ++i) router.record(failure(a, core::ErrorKind::server_error));
  auto r = router.plan(request("x"));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->attempts.size(), 1u);
  EXPECT_EQ(r->attempts[0].deployment.id, b);
  ASSERT_EQ(r->exclusions.size(), 1u);
  EXPECT_NE(r->exclusions[0].reason.find("circuit open"), std::string::npos);
  // Half-open after the cooldown: exactly one request probes (and goes first).
  clock.advance(std::chrono::seconds(11));
  auto probe = router.plan(request("x"));
  ASSERT_TRUE(probe.ok());
  EXPECT_EQ(probe->attempts[0].deployment.id, a);
  auto other = router.plan(request("x"));
  ASSERT_TRUE(other.ok());
  EXPECT_EQ(other->attempts[0].deployment.id, b);  // probe slot taken
  // Failed probe: open again, for longer (20 s).
  router.record(failure(a, core::ErrorKind::timeout));
  clock.advance(std::chrono::seconds(15));
  EXPECT_EQ(router.plan(request("x"))->attempts[0].deployment.id, b);
  clock.advance(std::chrono::seconds(6));
  EXPECT_EQ(router.plan(request("x"))->attempts[0].deployment.id, a);  // probe
  router.record(ok_outcome(a, 200, 500, 50));
  EXPECT_EQ(router.plan(request("x"))->attempts[0].deployment.id, a);  // closed
  EXPECT_EQ(router.plan(request("x"))->attempts[0].deployment.id, a);
}

TEST(PolicyRouter, CooldownsHonourRetryAfterAndOutOfBalance) {
  core::ManualClock clock;
  auto policy = must_compile("routes:\n  - {name: r, objective: ordered, candidates: [qwen@us-east-1/qwen-flash, glm@intl/glm-4.7]}\n");
  PolicyRouter router(policy, {.clock = &clock});
  const std::string a = "qwen@us-east-1/qwen-flash";
  router.record(failure(a, core::ErrorKind::rate_limited, 5000));
  EXPECT_NE(router.plan(request("x"))->attempts[0].deployment.id, a);
  clock.advance(std::chrono::milliseconds(5001));
  EXPECT_EQ(router.plan(request("x"))->attempts[0].deployment.id, a);
  router.record(failure(a, core::ErrorKind::out_of_balance));
  clock.advance(std::chrono::minutes(10));
  auto r = router.plan(request("x"));
  EXPECT_NE(r->attempts[0].deployment.id, a);
  EXPECT_NE(r->exclusions.at(0).reason.find("out of balance"), std::string::npos);
  clock.advance(std::chrono::minutes(6));
  EXPECT_EQ(router.plan(request("x"))->attempts[0].deployment.id, a);
  // Everything cooling down after 429s: a 429 with the shortest wait as its Retry-After.
  router.record(failure(a, core::ErrorKind::rate_limited, 2000));
  router.record(failure("glm@intl/glm-4.7", core::ErrorKind::rate_limited, 3000));
  auto none = router.plan(request("x"));
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.error().http_status(), 429);
  EXPECT_EQ(none.error().retry_after.count(), 2000);
  EXPECT_FALSE(none.error().permanent);
  // One of them out of balance instead: not a rate limit any more, a 503 (still with the wait).
  router.record(failure("glm@intl/glm-4.7", core::ErrorKind::out_of_balance));
  auto mixed = router.plan(request("x"));
  ASSERT_FALSE(mixed.ok());
  EXPECT_EQ(mixed.error().http_status(), 503);
  EXPECT_EQ(mixed.error().retry_after.count(), 2000);
  // Client errors say nothing about the deployment.
  clock.advance(std::chrono::seconds(5));
  for (int i = 0; i < 10; ++i) {
    AttemptOutcome o = failure(a, core::ErrorKind::bad_request);
    o.error->source = core::ErrorSource::client;
    router.record(o);
  }
  EXPECT_EQ(router.plan(request("x"))->attempts[0].deployment.id, a);
}

TEST(PolicyRouter, PromptCacheAffinity) {
  core::ManualClock clock;
  // kimi-k2.6 intl vs cn: same prices. With 100K input and a cached-input discount (0.16 vs 0.95),
  // the deployment that served the prefix wins even though it is listed second.
  auto policy = must_compile(R"(
routes:
  - name: r
    objective: {type: weighted, weights: {cost: 1, latency: 0.1, error_risk: 1}}
    candidates: [kimi@intl/kimi-k2.6, kimi@cn/kimi-k2.6]
)");
  PolicyRouter router(policy, {.clock = &clock});
  auto f = request("x", 100'000, 100);
  f.prefix_hash = 0xabcdef;
  f.prefix_tokens = 90'000;
  EXPECT_EQ(router.plan(f)->attempts[0].deployment.id, "kimi@intl/kimi-k2.6");
  // Same latency as the prior (1200 ms TTFT, 45 tokens/s), so only the cache discount differs.
  AttemptOutcome o = ok_outcome("kimi@cn/kimi-k2.6", 1200, 3200, 90);
  o.prefix_hash = 0xabcdef;
  router.record(o);
  auto r = router.plan(f);
  EXPECT_EQ(r->attempts[0].deployment.id, "kimi@cn/kimi-k2.6");
  EXPECT_LT(r->attempts[0].est_cost_usd, r->attempts[1].est_cost_usd);
  // A different prefix is unaffected; and affinity expires.
  f.prefix_hash = 0x1234;
  EXPECT_EQ(router.plan(f)->attempts[0].deployment.id, "kimi@intl/kimi-k2.6");
  f.prefix_hash = 0xabcdef;
  clock.advance(std::chrono::minutes(6));
  EXPECT_EQ(router.plan(f)->attempts[0].deployment.id, "kimi@intl/kimi-k2.6");
}

TEST(PolicyRouter, AffinityDoesNotOverrideALargeScoreGap) {
  core::ManualClock clock;
  // kimi-k3 (3.00 in, 0.30 cached) vs qwen-flash (0.05 in): even fully cached, k3 stays dearer.
  auto policy = must_compile(R"(
routes:
  - name: r
    objective: {type: weighted, weights: {cost: 1, latency: 0, error_risk: 0}}
    candidates: [qwen@us-east-1/qwen-flash, kimi@intl/kimi-k3]
)");
  PolicyRouter router(policy, {.clock = &clock});
  AttemptOutcome o = ok_outcome("kimi@intl/kimi-k3", 500, 2000, 100);
  o.prefix_hash = 77;
  router.record(o);
  auto f = request("x", 50'000, 100);
  f.prefix_hash = 77;
  f.prefix_tokens = 50'000;
  EXPECT_EQ(router.plan(f)->attempts[0].deployment.id, "qwen@us-east-1/qwen-flash");
}

TEST(PolicyRouter, ExternalStatsDriveRouting) {
  core::ManualClock clock;
  auto policy = must_compile(R"(
routes:
  - name: r
    objective: {type: cheapest_within_slo, ttft_slo_ms: 1500}
    candidates: [qwen@us-east-1/qwen-flash, glm@intl/glm-4.7-flashx]
)");
  PolicyRouter router(policy, {.clock = &clock});
  EXPECT_EQ(router.plan(request("x"))->attempts[0].deployment.id, "qwen@us-east-1/qwen-flash");
  ExternalStats slow;
  slow.ttft_ms = 5000;
  router.set_external_stats("qwen@us-east-1/qwen-flash", slow);
  EXPECT_EQ(router.plan(request("x"))->attempts[0].deployment.id, "glm@intl/glm-4.7-flashx");
  clock.advance(std::chrono::seconds(61));  // external figures expire
  EXPECT_EQ(router.plan(request("x"))->attempts[0].deployment.id, "qwen@us-east-1/qwen-flash");
}

TEST(PolicyRouter, ExplainListsEveryCandidate) {
  core::ManualClock clock;
  auto policy = must_compile(R"(
routes:
  - name: r
    constraints: {denied_flags: [us_entity_list]}
    candidates: [qwen@us-east-1/qwen-flash, glm@intl/glm-4.7, deepseek/deepseek-flash]
)");
  PolicyRouter router(policy, {.clock = &clock});
  const std::string j = router.explain_json(request("x"));
  for (const char* part : {"\"route\":\"r\"", "\"objective\":\"weighted\"", "\"deployment\":\"glm@intl/glm-4.7\"",
                           "\"status\":\"excluded\"", "\"reason\":\"flag us_entity_list denied\"", "\"status\":\"primary\"",
                           "\"terms\":{\"cost\":", "\"est_cost_usd\":", "\"expected_latency_ms\":", "\"plan\":[\""})
    EXPECT_NE(j.find(part), std::string::npos) << part << "\n" << j;
  // A refusal explains too.
  auto f = request("x");
  f.client_region = "IR";
  const std::string refused = router.explain_json(f);
  EXPECT_NE(refused.find("\"error\":{\"kind\":\"forbidden\",\"status\":403"), std::string::npos) << refused;
}

TEST(PolicyRouter, ReloadSwapsAndInvalidKeepsOld) {
  core::ManualClock clock;
  PolicyRouter router(must_compile("name: one\nroutes:\n  - {name: r, candidates: [deepseek/*]}\n"), {.clock = &clock});
  EXPECT_EQ(router.plan(request("x"))->attempts[0].deployment.provider, "deepseek");
  router.record(ok_outcome("qwen@us-east-1/qwen-flash", 123, 500, 10));  // unknown yet: ignored, no crash
  auto bad = router.reload("routes:\n  - {name: r, candidates: [deepseak/*]}\n", "p.yaml", all_providers());
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message.find("p.yaml:2:"), std::string::npos);
  EXPECT_EQ(router.policy()->name, "one");
  EXPECT_EQ(router.reloads_failed(), 1u);
  auto good = router.reload("name: two\nroutes:\n  - {name: r, candidates: [qwen@us-east-1/qwen-flash]}\n", "p.yaml", all_providers());
  ASSERT_TRUE(good.ok());
  EXPECT_EQ(router.policy()->name, "two");
  EXPECT_EQ(router.plan(request("x"))->attempts[0].deployment.id, "qwen@us-east-1/qwen-flash");
  EXPECT_EQ(router.reloads_ok(), 1u);
}

TEST(PolicyRouter, ConcurrencyLimitExcludes) {
  core::ManualClock clock;
  auto policy = must_compile(R"(
catalog:
  - {ref: qwen@us-east-1/qwen-flash, concurrency_limit: 2}
routes:
  - {name: r, objective: ordered, candidates: [qwen@us-east-1/qwen-flash, glm@intl/glm-4.7]}
)");
  PolicyRouter router(policy, {.clock = &clock});
  const std::string a = "qwen@us-east-1/qwen-flash";
  router.attempt_started(a);
  EXPECT_EQ(router.plan(request("x"))->attempts[0].deployment.id, a);
  router.attempt_started(a);
  auto r = router.plan(request("x"));
  EXPECT_EQ(r->attempts[0].deployment.id, "glm@intl/glm-4.7");
  EXPECT_NE(r->exclusions.at(0).reason.find("concurrency limit"), std::string::npos);
  router.record(ok_outcome(a, 300, 800, 20));
  EXPECT_EQ(router.plan(request("x"))->attempts[0].deployment.id, a);
}

TEST(PolicyRouter, StatsSamplesExportWhatRoutingSees) {
  core::ManualClock clock;
  PolicyRouter router(must_compile("routes:\n  - {name: r, candidates: [qwen@us-east-1/qwen-flash]}\n"), {.clock = &clock});
  router.attempt_started("qwen@us-east-1/qwen-flash");
  router.record(ok_outcome("qwen@us-east-1/qwen-flash", 400, 1400, 100));
  router.attempt_started("qwen@us-east-1/qwen-flash");
  std::map<std::string, double> m;
  for (const auto& s : router.stats_samples())
    if (s.deployment == "qwen@us-east-1/qwen-flash") m[s.metric] = s.value;
  EXPECT_DOUBLE_EQ(m.at("routing_ttft_seconds_ewma"), 0.4);
  EXPECT_DOUBLE_EQ(m.at("routing_ttft_seconds_p50"), 0.4);
  EXPECT_DOUBLE_EQ(m.at("routing_tokens_per_second_ewma"), 100.0);
  EXPECT_DOUBLE_EQ(m.at("routing_in_flight"), 1.0);
  EXPECT_DOUBLE_EQ(m.at("routing_circuit_state"), 0.0);
  EXPECT_DOUBLE_EQ(m.at("routing_error_rate_ewma"), 0.0);
  EXPECT_DOUBLE_EQ(m.at("routing_attempts_total"), 1.0);
  // And the decision used the same TTFT.
  Decision d = router.decide(request("x"));
  EXPECT_DOUBLE_EQ(d.evals.at(0).ttft_ms, 400.0);
}

// Embedding and chat deployments never serve each other's requests, whatever a route lists; an
// embeddings request is not held to the per-row window (context fit) and excluded chat models say why.
TEST(PolicyRouter, EmbeddingsAndChatKeptApart) {
  auto policy = must_compile("routes:\n  - {name: r, max_attempts: 16, candidates: [\"qwen@ap-southeast-1/*\", \"glm@cn/*\"]}\n");
  PolicyRouter router(policy, {});
  RequestFeatures chat = request("x");
  auto chat_plan = router.plan(chat);
  ASSERT_TRUE(chat_plan.ok()) << chat_plan.error().message;
  for (const auto& a : chat_plan->attempts) EXPECT_FALSE(policy->find(a.deployment.id)->caps.embeddings) << a.deployment.id;
  RequestFeatures emb = request("x", 50000, 0);  // more than one row's window: rows are bounded one by one
  emb.needs_embeddings = true;
  auto emb_plan = router.plan(emb);
  ASSERT_TRUE(emb_plan.ok()) << emb_plan.error().message;
  std::set<std::string> got;
  for (const auto& a : emb_plan->attempts) got.insert(a.deployment.id);
  EXPECT_EQ(got, (std::set<std::string>{"qwen@ap-southeast-1/text-embedding-v4", "glm@cn/embedding-3"}));
  auto d = router.decide(chat);
  bool named = false;
  for (const auto& e : d.evals)
    if (policy->deployments[e.deployment].caps.embeddings) {
      EXPECT_TRUE(e.excluded);
      named = named || e.reason.find("embedding model") != std::string::npos;
    }
  EXPECT_TRUE(named);
}

}  // namespace
}  // namespace routing
