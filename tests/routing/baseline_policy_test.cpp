// Savings baselines in the policy language: `baseline: {price: ...}` / `{ref: ...}` per route and
// under defaults, `reference_only` catalog entries (never candidates), and the router pricing a
// plan's usage at its route's baseline.
#include <gtest/gtest.h>

#include "routing/policy.h"
#include "routing/savings.h"
#include "test_util.h"

namespace routing {
namespace {

using test::must_compile;
using test::usage;

std::string compile_error(const std::string& yaml) {
  auto r = compile_policy(yaml, "b.yaml", *builtin_catalog(), test::all_providers());
  return r.ok() ? std::string() : r.error().message;
}

int64_t usd(double v) { return core::Money::from_usd(v).pico; }

// A frontier reference model at dated list prices, never routed to.
const char* kReference = R"(catalog:
  - ref: frontier@us/gpt-class
    reference_only: true
    context_window: 400000
    price: {input: 1.25, cached_input: 0.125, output: 10}
)";

const Route& route(const CompiledPolicy& p, const std::string& name) {
  for (const auto& r : p.routes)
    if (r.name == name) return r;
  throw std::runtime_error("no route " + name);
}

TEST(BaselinePolicy, RoutePriceAndDefaultRef) {
  auto p = must_compile(std::string(kReference) + R"(defaults:
  baseline: {ref: frontier@us/gpt-class}
routes:
  - {name: own, match: {model: own}, candidates: [deepseek/deepseek-flash], baseline: {price: {input: 3, output: 15}}}
  - {name: inherits, match: {model: auto}, candidates: [deepseek/deepseek-flash]}
)");
  const Route& own = route(*p, "own");
  ASSERT_TRUE(own.baseline);
  EXPECT_EQ(own.baseline_source, "price");
  // cached_input defaults to input: 1M uncached + 1M cached at 3, 1M output at 15.
  EXPECT_EQ(baseline_cost(*own.baseline, usage(2'000'000, 1'000'000, 1'000'000)).pico, usd(3 + 3 + 15));
  const Route& inh = route(*p, "inherits");
  ASSERT_TRUE(inh.baseline);
  EXPECT_EQ(inh.baseline_source, "frontier@us/gpt-class");
  EXPECT_EQ(baseline_cost(*inh.baseline, usage(2'000'000, 1'000'000, 1'000'000)).pico, usd(1.25 + 0.125 + 10));
}

TEST(BaselinePolicy, NoBaselineMeansNone) {
  auto p = must_compile("routes:\n  - {name: r, candidates: [deepseek/deepseek-flash]}\n");
  EXPECT_FALSE(route(*p, "r").baseline);
  core::ManualClock clock(test::utc(0, 12, 0));
  PolicyRouter router(p, {.clock = &clock});
  auto plan = router.plan(test::request("auto"));
  ASSERT_TRUE(plan.ok()) << plan.error().message;
  EXPECT_FALSE(router.baseline_cost(*plan, usage(1000, 0, 100)));
}

TEST(BaselinePolicy, RouterPricesThePlansRouteAtItsBaseline) {
  auto p = must_compile(R"(routes:
  - {name: a, match: {model: a}, candidates: [deepseek/deepseek-flash], baseline: {price: {input: 2, output: 8}}}
  - {name: b, match: {model: b}, candidates: [deepseek/deepseek-flash], baseline: {price: {input: 1, output: 4}}}
)");
  core::ManualClock clock(test::utc(0, 12, 0));
  PolicyRouter router(p, {.clock = &clock});
  auto pa = router.plan(test::request("a"));
  auto pb = router.plan(test::request("b"));
  ASSERT_TRUE(pa.ok() && pb.ok());
  const auto u = usage(1'000'000, 0, 1'000'000);
  EXPECT_EQ(router.baseline_cost(*pa, u)->pico, usd(10));
  EXPECT_EQ(router.baseline_cost(*pb, u)->pico, usd(5));
  // A reload keeps pricing an in-flight plan at the policy that made it.
  router.swap_policy(must_compile(
      "routes:\n  - {name: a, match: {model: a}, candidates: [deepseek/deepseek-flash], baseline: {price: {input: 100, output: 100}}}\n"));
  EXPECT_EQ(router.baseline_cost(*pa, u)->pico, usd(10));
}

TEST(BaselinePolicy, ReferenceOnlyIsNeverACandidateAndExplainSaysWhy) {
  auto p = must_compile(std::string(kReference) + R"(routes:
  - {name: r, candidates: ["*/*"]}
)");
  core::ManualClock clock(test::utc(0, 12, 0));
  PolicyRouter router(p, {.clock = &clock});
  Decision d = router.decide(test::request("gpt-class"));
  bool seen = false;
  for (const auto& e : d.evals) {
    if (p->deployments[e.deployment].deployment.id != "frontier@us/gpt-class") continue;
    seen = true;
    EXPECT_TRUE(e.excluded);
    EXPECT_NE(e.reason.find("reference_only"), std::string::npos) << e.reason;
  }
  EXPECT_TRUE(seen);
  auto any = router.plan(test::request("anything"));
  ASSERT_TRUE(any.ok());
  for (const auto& a : any->attempts) EXPECT_NE(a.deployment.id, "frontier@us/gpt-class");
  // Not offered as a model.
  for (const auto& m : p->catalog_models) EXPECT_NE(m, "gpt-class");
}

TEST(BaselinePolicy, HostileBaselinesAreRefused) {
  const std::string r = "routes:\n  - name: r\n    candidates: [deepseek/deepseek-flash]\n    baseline: ";
  EXPECT_NE(compile_error(r + "{price: {input: -1, output: 10}}\n").find("baseline.price.input (USD per 1M tokens) must be between 0"),
            std::string::npos);
  EXPECT_NE(compile_error(r + "{price: {input: 1, output: 10, cached_input: -0.1}}\n").find("cached_input"),
            std::string::npos);
  EXPECT_NE(compile_error(r + "{price: {input: 1, output: 10, reasoning: 3}}\n").find("unknown baseline price key 'reasoning'"),
            std::string::npos);
  EXPECT_NE(compile_error(r + "{price: {input: 1}}\n").find("needs 'input' and 'output'"), std::string::npos);
  EXPECT_NE(compile_error(r + "{prices: {input: 1, output: 2}}\n").find("unknown baseline key 'prices' (did you mean 'price'?)"),
            std::string::npos);
  EXPECT_NE(compile_error(r + "{price: {input: 1, output: 2}, ref: deepseek/deepseek-flash}\n").find("exactly one of"),
            std::string::npos);
  EXPECT_NE(compile_error(r + "{}\n").find("exactly one of"), std::string::npos);
  EXPECT_NE(compile_error(r + "{ref: nobody@x/none}\n").find("names no catalog deployment"), std::string::npos);
  EXPECT_NE(compile_error(r + "{price: {input: abc, output: 2}}\n").find("must be a number"), std::string::npos);
  EXPECT_NE(compile_error(r + "cheap\n").find("baseline must be a mapping"), std::string::npos);
  EXPECT_NE(compile_error("defaults: {baseline: {price: {input: 1, output: -2}}}\nroutes:\n  - {name: r, candidates: [deepseek/deepseek-flash]}\n")
                .find("baseline.price.output"),
            std::string::npos);
  EXPECT_NE(compile_error(std::string("catalog:\n  - {ref: \"deepseek@global/deepseek-flash\", reference_only: maybe}\n") +
                          "routes:\n  - {name: r, candidates: [qwen/*]}\n")
                .find("reference_only must be true or false"),
            std::string::npos);
}

TEST(BaselinePolicy, RouteOfOnlyReferencesIsRefused) {
  const std::string err = compile_error(std::string(kReference) + R"(routes:
  - {name: ok, match: {model: auto}, candidates: [deepseek/deepseek-flash]}
  - {name: refs, match: {model: ref}, candidates: [frontier/gpt-class]}
)");
  EXPECT_NE(err.find("route 'refs': its only candidates are reference_only deployments"), std::string::npos) << err;
  // A reference beside a real candidate is fine: it is only excluded.
  EXPECT_EQ(compile_error(std::string(kReference) +
                          "routes:\n  - {name: mixed, candidates: [frontier/gpt-class, deepseek/deepseek-flash]}\n"),
            "");
}

}  // namespace
}  // namespace routing
