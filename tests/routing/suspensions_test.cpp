// The kill switch in routing: the policy's `suspended:` list, selectors, exclusion from plans (and
// the refusal when nothing is left), runtime suspensions swapped in, and what-if arithmetic.
#include <gtest/gtest.h>

#include "routing/suspensions.h"
#include "routing/what_if.h"
#include "test_util.h"

namespace routing {
namespace {

using test::must_compile;
using test::request;

const std::string kRoutes = R"(
routes:
  - name: cheap
    match: {model: auto}
    candidates: [deepseek@global/deepseek-flash, qwen@ap-southeast-1/qwen-flash, glm@intl/glm-4.7]
    objective: ordered
  - {name: qwen-only, match: {model: qwen-flash}, candidates: [qwen@ap-southeast-1/qwen-flash]}
)";

std::string compile_error(const std::string& yaml) {
  auto r = compile_policy(yaml, "s.yaml", *builtin_catalog(), test::all_providers());
  return r.ok() ? std::string() : r.error().message;
}

const CandidateEval* eval_of(const Decision& d, const std::string& id) {
  for (const auto& e : d.evals)
    if (d.policy->deployments[e.deployment].deployment.id == id) return &e;
  return nullptr;
}

TEST(SuspendedList, CompilesEverySelectorKind) {
  auto p = must_compile(R"(
suspended:
  - {vendor: zhipu, reason: "Entity List", since: 2026-12-01, by: ops}
  - {parent: alibaba, reason: "OFAC designation", since: 2026-12-02}
  - {jurisdiction: cn, reason: "board decision", since: 2026-12-03}
  - {deployment: "kimi@intl/kimi-k2.6", reason: "out of money", since: 2026-12-04}
)" + kRoutes);
  ASSERT_EQ(p->suspended.size(), 4u);
  EXPECT_EQ(p->suspended[0].selector.text(), "vendor:zhipu");
  EXPECT_EQ(p->suspended[1].selector.text(), "parent:alibaba");
  EXPECT_EQ(p->suspended[2].selector.text(), "jurisdiction:CN");  // canonical spelling
  EXPECT_EQ(p->suspended[3].selector.target, "kimi@intl/kimi-k2.6");
  EXPECT_TRUE(p->suspended[0].from_policy);
  EXPECT_EQ(suspension_reason(p->suspended[0]), "suspended since 2026-12-01 by ops: 'Entity List'");
}

TEST(SuspendedList, RefusesWhatItCannotRead) {
  const std::pair<const char*, const char*> cases[] = {
      {"- {vendor: zhipuu, reason: x, since: 2026-12-01}", "unknown vendor 'zhipuu' (did you mean 'zhipu'?)"},
      {"- {parent: acme, reason: x, since: 2026-12-01}", "unknown parent 'acme'"},
      {"- {jurisdiction: XX, reason: x, since: 2026-12-01}", "unknown jurisdiction 'XX'"},
      {"- {deployment: qwen/nope, reason: x, since: 2026-12-01}", "unknown deployment 'qwen/nope'"},
      {"- {vendor: qwen, parent: alibaba, reason: x, since: 2026-12-01}", "exactly one of vendor"},
      {"- {reason: x, since: 2026-12-01}", "exactly one of vendor"},
      {"- {vendor: qwen, since: 2026-12-01}", "needs 'reason'"},
      {"- {vendor: qwen, reason: x}", "needs 'since'"},
      {"- {vendor: qwen, reason: x, since: tomorrow}", "must be a date YYYY-MM-DD"},
      {"- {vendor: qwen, reason: x, since: 2026-12-01, until: 2027-01-01}", "unknown suspended key 'until'"},
  };
  for (const auto& [entry, want] : cases) {
    const std::string err = compile_error(std::string("suspended:\n  ") + entry + kRoutes);
    EXPECT_NE(err.find(want), std::string::npos) << entry << " -> " << err;
  }
  EXPECT_NE(compile_error("suspended: {vendor: qwen}\n" + kRoutes).find("suspended must be a list"), std::string::npos);
}

TEST(Selectors, BareNamesAndKinds) {
  const auto& deps = builtin_catalog()->deployments();
  auto sel = [&](const char* t) {
    auto r = parse_suspension_selector(t, deps);
    return r ? r->text() : "error: " + r.error().message;
  };
  EXPECT_EQ(sel("alibaba"), "vendor:alibaba");  // a company short name names its vendor
  EXPECT_EQ(sel("qwen"), "vendor:qwen");
  EXPECT_EQ(sel("jurisdiction:CN"), "jurisdiction:CN");
  EXPECT_EQ(sel("CN"), "jurisdiction:CN");
  EXPECT_EQ(sel("parent:moonshot"), "parent:moonshot");
  EXPECT_EQ(sel("deployment:qwen@ap-southeast-1/qwen-flash"), "deployment:qwen@ap-southeast-1/qwen-flash");
  EXPECT_EQ(sel("qwen@ap-southeast-1/qwen-flash"), "deployment:qwen@ap-southeast-1/qwen-flash");
  EXPECT_NE(sel("country:CN").find("unknown selector kind 'country'"), std::string::npos);
  EXPECT_NE(sel("nobody").find("unknown selector 'nobody'"), std::string::npos);
  EXPECT_NE(sel("vendor:").find("needs a name"), std::string::npos);

  const DeploymentFacts& glm = test::facts("glm@intl/glm-4.7");
  EXPECT_TRUE(suspension_matches({SuspensionKind::vendor, "zhipu"}, glm));
  EXPECT_TRUE(suspension_matches({SuspensionKind::vendor, "glm"}, glm));
  EXPECT_TRUE(suspension_matches({SuspensionKind::parent, "zhipu"}, glm));
  EXPECT_TRUE(suspension_matches({SuspensionKind::jurisdiction, "PRC"}, glm));  // a group covers its members
  EXPECT_FALSE(suspension_matches({SuspensionKind::vendor, "qwen"}, glm));
  EXPECT_FALSE(suspension_matches({SuspensionKind::jurisdiction, "US"}, glm));
}

TEST(SuspendedPlans, PolicySuspensionExcludesWithItsReasonFirst) {
  PolicyRouter r(must_compile("suspended:\n  - {vendor: deepseek, reason: \"out of money\", since: 2026-12-01, by: ops}\n" +
                              kRoutes));
  auto plan = r.plan(request("auto"));
  ASSERT_TRUE(plan.ok()) << plan.error().message;
  EXPECT_EQ(plan->attempts[0].deployment.id, "qwen@ap-southeast-1/qwen-flash");
  Decision d = r.decide(request("auto"));
  const CandidateEval* e = eval_of(d, "deepseek@global/deepseek-flash");
  ASSERT_NE(e, nullptr);
  EXPECT_TRUE(e->excluded);
  EXPECT_EQ(e->kind, ExclusionKind::suspended);
  EXPECT_EQ(e->reason, "suspended since 2026-12-01 by ops: 'out of money'");
  const std::string j = r.explain_json(request("auto"));
  EXPECT_NE(j.find("\"exclusion\":\"suspended\""), std::string::npos) << j;
  EXPECT_EQ(r.suspension_exclusions().at("deepseek"), 1u);  // plan() counted it, decide() did not
}

TEST(SuspendedPlans, EveryCandidateSuspendedIsAPermanent503NamingIt) {
  PolicyRouter r(must_compile(kRoutes));
  r.set_suspensions(test::one_suspension(SuspensionKind::parent, "alibaba", "OFAC designation"));
  auto plan = r.plan(request("qwen-flash"));
  ASSERT_FALSE(plan.ok());
  EXPECT_EQ(plan.error().http_status(), 503);
  EXPECT_TRUE(plan.error().permanent);
  EXPECT_EQ(plan.error().code, "deployment_suspended");
  EXPECT_NE(plan.error().message.find("suspended since 2026-12-02T10:00:00Z by ops: 'OFAC designation'"),
            std::string::npos)
      << plan.error().message;

  // The runtime set survives a policy swap; lifting it brings the vendor back at once.
  r.swap_policy(must_compile(kRoutes));
  EXPECT_FALSE(r.plan(request("qwen-flash")).ok());
  r.set_suspensions(std::make_shared<SuspensionList>());
  EXPECT_TRUE(r.plan(request("qwen-flash")).ok());
}

WhatIfRow row(const char* before_vendor, double before_cost, const char* after_vendor, double after_cost) {
  WhatIfRow r;
  if (before_vendor) r.before = {true, std::string(before_vendor) + "@x/m", before_vendor, {}, before_cost, {}};
  if (after_vendor) r.after = {true, std::string(after_vendor) + "@x/m", after_vendor, {}, after_cost, {}};
  return r;
}

TEST(WhatIf, ArithmeticOverAFixedRequestSet) {
  // 10 requests: 6 on qwen move to deepseek (each +0.5 cost), 2 stay on deepseek, 1 on qwen
  // becomes unservable, 1 was unservable already.
  std::vector<WhatIfRow> rows;
  for (int i = 0; i < 6; ++i) rows.push_back(row("qwen", 1.0, "deepseek", 1.5));
  for (int i = 0; i < 2; ++i) rows.push_back(row("deepseek", 2.0, "deepseek", 2.0));
  rows.push_back(row("qwen", 1.0, nullptr, 0));
  rows.push_back(row(nullptr, 0, nullptr, 0));
  const WhatIfSummary s = summarize_what_if(rows, "vendor:qwen");
  EXPECT_EQ(s.requests, 10u);
  EXPECT_EQ(s.unservable_before, 1u);
  EXPECT_EQ(s.unservable_after, 2u);
  EXPECT_EQ(s.became_unservable, 1u);
  EXPECT_EQ(s.moved, 6u);
  EXPECT_DOUBLE_EQ(s.cost_before_usd, 10.0);  // 6 x 1 + 2 x 2, over the 8 served both times
  EXPECT_DOUBLE_EQ(s.cost_after_usd, 13.0);
  EXPECT_DOUBLE_EQ(s.cost_change_pct, 30.0);
  EXPECT_DOUBLE_EQ(s.share_before_pct.at("qwen"), 70.0);
  EXPECT_DOUBLE_EQ(s.share_before_pct.at("deepseek"), 20.0);
  EXPECT_DOUBLE_EQ(s.share_after_pct.at("deepseek"), 80.0);
  EXPECT_EQ(s.share_after_pct.count("qwen"), 0u);
  EXPECT_EQ(s.text, "suspending vendor:qwen moves 60 % of traffic to deepseek, cost +30 %; 1 of 10 requests become unservable");
}

TEST(WhatIf, PlansBeforeAndAfterWithoutTouchingTheLiveSet) {
  PolicyRouter r(must_compile(kRoutes));
  auto what_if = what_if_suspensions({"deepseek"}, r.policy()->deployments);
  ASSERT_TRUE(what_if.ok());
  const auto rows = plan_what_if(r, {request("auto"), request("qwen-flash")}, *what_if);
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0].before.vendor, "deepseek");
  EXPECT_EQ(rows[0].after.vendor, "qwen");
  EXPECT_EQ(rows[1].before.vendor, "qwen");
  EXPECT_EQ(rows[1].after.vendor, "qwen");
  EXPECT_TRUE(r.suspensions()->empty());
  EXPECT_TRUE(r.suspension_exclusions().empty());
  const std::string j = what_if_json(r, {request("auto")}, *what_if);
  EXPECT_NE(j.find("\"what_if\":[\"vendor:deepseek\"]"), std::string::npos) << j;
  EXPECT_NE(j.find("\"explain_after\""), std::string::npos);
  EXPECT_FALSE(what_if_suspensions({"nobody"}, r.policy()->deployments).ok());
}

}  // namespace
}  // namespace routing
