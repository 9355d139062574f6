// Diversification (routing/diversify.h): share caps, spread and canary over seeded request streams,
// hard constraints under random draws, explain strings, the sliding window and the policy keys.
//
// Tolerances (each stream is seeded, so a run is exact; the bounds say what any seed must meet):
//   cap 0.5 over 1,000 requests: the capped vendor's share is 0.5 +- 0.03 (the rule keeps it within
//     one request of the cap once 2 x min_requests have been served);
//   spread among 3 over 3,000 requests: each gets 1,000 +- 100 (sigma = sqrt(3000 x 1/3 x 2/3) ~ 26);
//   canary 0.01 over 10,000 requests: each fall-back is primary 100 +- 40 times (sigma ~ 10).
#include <gtest/gtest.h>

#include <map>
#include <set>

#include "routing/diversify.h"
#include "routing/policy_router.h"
#include "test_util.h"

namespace routing {
namespace {

// Four self-hosted vendors with one model each; a, b, c in the US (b and c of one parent), d in CN.
std::vector<ProviderInstance> vendors() {
  std::vector<ProviderInstance> p;
  for (const char* n : {"va", "vb", "vc", "vd"}) p.push_back({n, "openai_compatible", {}, true, "", {"m"}});
  return p;
}

std::string policy(const std::string& route_keys, const char* prices = "1, 2, 3, 4") {
  double price[4] = {};
  std::sscanf(prices, "%lf, %lf, %lf, %lf", &price[0], &price[1], &price[2], &price[3]);
  const char* company[4] = {"Alpha", "Beta Group", "Beta Group", "Delta"};
  const char* juris[4] = {"US", "US", "US", "CN"};
  const char* names[4] = {"va", "vb", "vc", "vd"};
  std::string y = "catalog:\n";
  for (int i = 0; i < 4; ++i) {
    char line[400];
    std::snprintf(line, sizeof line,
                  "  - {ref: %s/m, context_window: 100000, price: {input: %g, output: %g}, company: \"%s\", "
                  "jurisdiction: %s, latency_prior: {ttft_ms: 100, tokens_per_second: 100}}\n",
                  names[i], price[i], price[i], company[i], juris[i]);
    y += line;
  }
  y += "routes:\n  - name: r\n    match: {model: m}\n    candidates: [va/m, vb/m, vc/m, vd/m]\n" + route_keys;
  return y;
}

struct Rig {
  core::ManualClock clock{test::utc(0, 12, 0)};
  SeededRandom random{20261202};
  std::unique_ptr<PolicyRouter> router;
  explicit Rig(const std::string& yaml) {
    PolicyRouterOptions o;
    o.clock = &clock;
    o.random = &random;
    router = std::make_unique<PolicyRouter>(test::must_compile(yaml, vendors()), o);
  }
  // Plans one request and reports its primary as having served it; returns the primary.
  std::string serve(const RequestFeatures& f = test::request("m")) {
    auto plan = router->plan(f);
    EXPECT_TRUE(plan.ok()) << plan.error().message;
    if (!plan.ok()) return {};
    const std::string id = plan.value().attempts.at(0).deployment.id;
    router->served(plan.value(), id, plan.value().attempts[0].est_cost_usd);
    clock.advance(std::chrono::milliseconds(100));
    return id;
  }
};

double sample(const std::vector<LabelledSample>& s, const std::string& metric, const std::string& label_value) {
  for (const auto& x : s)
    if (x.metric == metric)
      for (const auto& [k, v] : x.labels)
        if (v == label_value && k != "route") return x.value;
  return -1;
}

TEST(Diversify, VendorCapHoldsOverAThousandRequests) {
  Rig rig(policy("    max_share: {vendor: 0.5}\n"));
  SeededRandom sizes(7);
  std::map<std::string, int> primary;
  for (int i = 0; i < 1000; ++i) {
    // Varied request sizes: va stays the cheapest whatever the size.
    auto f = test::request("m", 200 + static_cast<int64_t>(sizes.uniform() * 4000), 50 + static_cast<int64_t>(sizes.uniform() * 500));
    ++primary[rig.serve(f)];
  }
  const double share = primary["va@default/m"] / 1000.0;
  EXPECT_NEAR(share, 0.5, 0.03);
  // The rest goes to the next best; the third only when both are exactly at the cap (20 of 40).
  EXPECT_LE(primary["vc@default/m"], 2);
  EXPECT_EQ(primary["vd@default/m"], 0);
  // The gauge shows the same window.
  EXPECT_NEAR(sample(rig.router->diversity_samples(), "gateway_route_share", "va"), share, 1e-9);
}

TEST(Diversify, SpendCapAndParentCap) {
  // By spend: va costs 1, vb 2 per token, so va may take more than half the requests.
  Rig spend(policy("    max_share: {vendor: 0.5, by: spend}\n", "1, 2, 3, 4"));
  std::map<std::string, int> n;
  for (int i = 0; i < 1000; ++i) ++n[spend.serve()];
  // va's spend share 0.5 means va requests x 1 = vb requests x 2: two thirds of the requests.
  EXPECT_NEAR(n["va@default/m"] / 1000.0, 2.0 / 3.0, 0.03);

  // Parent: vb and vc are one company; with vb cheapest the cap moves traffic to va, not vc.
  Rig parent(policy("    max_share: {parent: 0.5}\n", "2, 1, 1.5, 4"));
  std::map<std::string, int> m;
  for (int i = 0; i < 1000; ++i) ++m[parent.serve()];
  EXPECT_NEAR((m["vb@default/m"] + m["vc@default/m"]) / 1000.0, 0.5, 0.03);
  EXPECT_NEAR(m["va@default/m"] / 1000.0, 0.5, 0.03);
}

TEST(Diversify, CapWaitsForMinRequestsAndTheWindowSlides) {
  Rig rig(policy("    max_share: {vendor: 0.5, window: 10m, min_requests: 20}\n"));
  for (int i = 0; i < 20; ++i) EXPECT_EQ(rig.serve(), "va@default/m") << i;  // below min_requests: no cap
  EXPECT_EQ(rig.serve(), "vb@default/m");  // 20 of 20 on va: over the cap
  rig.clock.advance(std::chrono::minutes(11));  // the window forgets everything
  auto t = rig.router->diversity_samples();
  EXPECT_EQ(sample(t, "gateway_route_share", "va"), 0);
  EXPECT_EQ(rig.serve(), "va@default/m");
}

TEST(Diversify, ACapNeverMakesARequestUnservable) {
  // Only vd (CN) satisfies the constraint: it serves every request, however far over its cap.
  Rig rig(policy("    max_share: {vendor: 0.2, min_requests: 1}\n    constraints: {allowed_jurisdictions: [CN]}\n"));
  for (int i = 0; i < 50; ++i) EXPECT_EQ(rig.serve(), "vd@default/m") << i;
  const std::string e = rig.router->explain_json(test::request("m"));
  EXPECT_NE(e.find("vendor vd at 1.00 share over cap 0.2: demoted vd@default/m"), std::string::npos) << e;
  EXPECT_NE(e.find("every candidate of its tier is over a cap: the best of them stays primary"), std::string::npos) << e;
}

TEST(Diversify, SpreadDistributesAmongNearEqualCandidates) {
  // Scores 0.3 + cost/max: 0.80, 0.81, 0.825 (within 0.1 of 0.80) and 1.3 (not).
  Rig rig(policy("    spread: {within: 0.1}\n", "1, 1.02, 1.05, 2"));
  std::map<std::string, int> n;
  for (int i = 0; i < 3000; ++i) ++n[rig.serve()];
  for (const char* id : {"va@default/m", "vb@default/m", "vc@default/m"}) EXPECT_NEAR(n[id], 1000, 100) << id;
  EXPECT_EQ(n["vd@default/m"], 0);
}

TEST(Diversify, CanarySendsItsShareToEachFallBack) {
  Rig rig(policy("    canary: 0.01\n    max_attempts: 4\n"));
  std::map<std::string, int> n;
  for (int i = 0; i < 10000; ++i) {
    auto plan = rig.router->plan(test::request("m"));
    ASSERT_TRUE(plan.ok());
    const auto& a = plan.value().attempts;
    ++n[a[0].deployment.id];
    // A canary still fails over in the normal order: va first among the rest.
    if (a[0].deployment.id != "va@default/m") EXPECT_EQ(a[1].deployment.id, "va@default/m");
    ASSERT_EQ(a.size(), 4u);
  }
  for (const char* id : {"vb@default/m", "vc@default/m", "vd@default/m"}) {
    EXPECT_NEAR(n[id], 100, 40) << id;
    EXPECT_EQ(sample(rig.router->diversity_samples(), "gateway_canary_requests_total", id), n[id]) << id;
  }
}

// Plays back fixed draws, so explain shows a known outcome.
class FixedRandom final : public RandomSource {
 public:
  explicit FixedRandom(double v) : v_(v) {}
  double uniform() override { return v_; }

 private:
  double v_;
};

TEST(Diversify, ExplainSaysWhyThePrimaryWasChosen) {
  core::ManualClock clock(test::utc(0, 12, 0));
  FixedRandom low(0.015);  // canary 0.01: the second fall-back's slot
  PolicyRouterOptions o;
  o.clock = &clock;
  o.random = &low;
  PolicyRouter canary(test::must_compile(policy("    canary: 0.01\n"), vendors()), o);
  const std::string c = canary.explain_json(test::request("m"));
  EXPECT_NE(c.find("canary to vc@default/m (0.01 of requests to each of 3 fall-backs)"), std::string::npos) << c;
  EXPECT_NE(c.find("\"plan\":[\"vc@default/m\",\"va@default/m\""), std::string::npos) << c;

  FixedRandom high(0.99);
  o.random = &high;
  PolicyRouter spread(test::must_compile(policy("    spread: {within: 0.1}\n", "1, 1.02, 1.05, 2"), vendors()), o);
  const std::string s = spread.explain_json(test::request("m"));
  EXPECT_NE(s.find("spread among 3 within 0.1: vc@default/m"), std::string::npos) << s;

  PolicyRouter capped(test::must_compile(policy("    max_share: {vendor: 0.5, min_requests: 3}\n"), vendors()), o);
  const std::string before = capped.explain_json(test::request("m"));
  EXPECT_NE(before.find("share caps wait for 3 requests in the window (0 so far)"), std::string::npos) << before;
  for (int i = 0; i < 3; ++i) {
    auto plan = capped.plan(test::request("m"));
    capped.served(plan.value(), "va@default/m", 0);
  }
  const std::string after = capped.explain_json(test::request("m"));
  EXPECT_NE(after.find("vendor va at 1.00 share over cap 0.5: demoted va@default/m"), std::string::npos) << after;
  EXPECT_NE(after.find("{\"kind\":\"vendor\",\"key\":\"va\",\"share\":1,\"cap\":0.5}"), std::string::npos) << after;
  EXPECT_NE(after.find("\"plan\":[\"vb@default/m\""), std::string::npos) << after;
}

// Whatever the draws, spread and canary choose among qualified candidates only: every attempt of a
// diversified plan is qualified for the same request under the same policy without diversification.
TEST(Diversify, HardConstraintsHoldUnderRandomDraws) {
  const std::string keys = "    spread: {within: 1}\n    canary: 0.3\n    max_share: {jurisdiction: 0.3, min_requests: 1}\n";
  const std::string route =
      "routes:\n  - name: r\n    match: {model: auto}\n    max_attempts: 16\n"
      "    constraints: {denied_inference_regions: [CN], max_sanctions_risk: medium}\n    candidates: [\"*/*\"]\n";
  core::ManualClock clock(test::utc(0, 12, 0));
  SeededRandom random(99);
  PolicyRouterOptions o;
  o.clock = &clock;
  o.random = &random;
  PolicyRouter diversified(test::must_compile(route + keys), o);
  PolicyRouter plain(test::must_compile(route), o);
  SeededRandom cases(5);
  int checked = 0;
  for (int i = 0; i < 2000; ++i) {
    auto f = test::request("auto", 100 + static_cast<int64_t>(cases.uniform() * 200000), 100);
    f.needs_tools = cases.uniform() < 0.5;
    f.needs_vision = cases.uniform() < 0.3;
    f.needs_reasoning = cases.uniform() < 0.3;
    if (cases.uniform() < 0.5) f.budget_remaining_usd = cases.uniform() * 0.05;
    const Decision ref = plain.decide(f);
    std::set<std::string> qualified;
    for (uint32_t idx : ref.ranked) qualified.insert(ref.policy->deployments[ref.evals[idx].deployment].deployment.id);
    auto plan = diversified.plan(f);
    if (!plan.ok()) {
      EXPECT_TRUE(qualified.empty()) << plan.error().message;
      continue;
    }
    for (const auto& a : plan.value().attempts) {
      EXPECT_TRUE(qualified.count(a.deployment.id)) << a.deployment.id << " is not qualified for case " << i;
      const DeploymentFacts* df = ref.policy->find(a.deployment.id);
      for (const auto& x : plan.value().exclusions) EXPECT_NE(x.deployment, a.deployment.id);
      EXPECT_TRUE(df->caps.covers(Capabilities{f.needs_tools, false, f.needs_vision, f.needs_reasoning}));
      if (f.budget_remaining_usd) EXPECT_LE(a.est_cost_usd, *f.budget_remaining_usd);
      ++checked;
    }
    diversified.served(plan.value(), plan.value().attempts[0].deployment.id, plan.value().attempts[0].est_cost_usd);
    clock.advance(std::chrono::milliseconds(50));
  }
  EXPECT_GT(checked, 2000);
}

TEST(ShareWindow, SlidesBucketByBucket) {
  ShareWindow w(std::chrono::seconds(600));  // 60 buckets of 10 s
  core::SteadyTime t{};
  DeploymentFacts a = test::facts("deepseek@global/deepseek-flash");
  DeploymentFacts b = test::facts("qwen@us-east-1/qwen-flash");
  for (int i = 0; i < 30; ++i) w.add(a, 0.001, t);
  t += std::chrono::seconds(300);
  for (int i = 0; i < 10; ++i) w.add(b, 0.002, t);
  ShareTotals now = w.totals(t);
  EXPECT_EQ(now.requests, 40);
  EXPECT_DOUBLE_EQ(now.share(ShareKind::vendor, "deepseek", false), 0.75);
  EXPECT_DOUBLE_EQ(now.share(ShareKind::vendor, "qwen", true), 0.4);
  EXPECT_DOUBLE_EQ(now.share(ShareKind::jurisdiction, "CN", false), 1.0);
  // 301 s later the first 30 have left the window, the last 10 have not.
  ShareTotals later = w.totals(t + std::chrono::seconds(301));
  EXPECT_EQ(later.requests, 10);
  EXPECT_DOUBLE_EQ(later.share(ShareKind::vendor, "qwen", false), 1.0);
  EXPECT_EQ(w.totals(t + std::chrono::seconds(700)).requests, 0);
}

ShareTotals totals_of(double requests, double spend, std::vector<ShareTotals::Key> keys) {
  ShareTotals t;
  t.requests = requests;
  t.spend_usd = spend;
  t.keys = std::move(keys);
  return t;
}

TEST(FleetShares, MergeAddsUnsyncedCountsKeyByKey) {
  const ShareTotals fleet = totals_of(10, 1.0, {{ShareKind::vendor, "va", 6, 0.7}, {ShareKind::vendor, "vb", 4, 0.3},
                                               {ShareKind::jurisdiction, "US", 10, 1.0}});
  const ShareTotals own = totals_of(2, 0.5, {{ShareKind::vendor, "vc", 1, 0.4}, {ShareKind::vendor, "va", 1, 0.1},
                                            {ShareKind::jurisdiction, "US", 2, 0.5}});
  const ShareTotals m = merge_shares(fleet, own);
  EXPECT_TRUE(m.fleet);
  EXPECT_DOUBLE_EQ(m.requests, 12);
  EXPECT_DOUBLE_EQ(m.spend_usd, 1.5);
  ASSERT_EQ(m.keys.size(), 4u);  // va, vb, US from the fleet, then vc (new) from the replica
  EXPECT_EQ(m.keys[3].key, "vc");
  EXPECT_DOUBLE_EQ(m.share(ShareKind::vendor, "va", false), 7.0 / 12);
  EXPECT_DOUBLE_EQ(m.share(ShareKind::vendor, "vb", false), 4.0 / 12);
  EXPECT_DOUBLE_EQ(m.share(ShareKind::vendor, "vc", true), 0.4 / 1.5);
  EXPECT_DOUBLE_EQ(m.share(ShareKind::jurisdiction, "US", false), 1.0);
  // Same key name under another kind is another key.
  EXPECT_DOUBLE_EQ(m.share(ShareKind::parent, "va", false), 0);
  // Nothing unsynced: the fleet's figures as they are.
  const ShareTotals alone = merge_shares(fleet, ShareTotals{});
  EXPECT_DOUBLE_EQ(alone.share(ShareKind::vendor, "va", false), 0.6);
}

TEST(FleetShares, WindowMergesFleetTotalsWithUnsyncedAndFallsBackToLocal) {
  using std::chrono::milliseconds;
  ShareWindow w(std::chrono::seconds(600), milliseconds(1000));
  core::SteadyTime t{};
  t += std::chrono::hours(1);
  const DeploymentFacts a = test::facts("deepseek@global/deepseek-flash");
  const DeploymentFacts b = test::facts("qwen@us-east-1/qwen-flash");
  for (int i = 0; i < 3; ++i) w.add(a, 0.001, t);
  // Never synced: this replica's own window.
  ShareTotals local = w.totals(t);
  EXPECT_FALSE(local.fleet);
  EXPECT_EQ(local.requests, 3);

  // A sync takes the 3; one more is served while it runs; the fleet answers with 10 (its 3 included).
  const ShareTotals sent = w.take_unsynced();
  EXPECT_EQ(sent.requests, 3);
  EXPECT_DOUBLE_EQ(sent.share(ShareKind::vendor, "deepseek", false), 1.0);
  w.add(b, 0.002, t);
  EXPECT_EQ(w.totals(t).requests, 4);  // in flight still counts, as local
  w.fleet_synced(totals_of(10, 0, {{ShareKind::vendor, "deepseek", 3, 0}, {ShareKind::vendor, "qwen", 7, 0}}), t);
  ShareTotals merged = w.totals(t);
  EXPECT_TRUE(merged.fleet);
  EXPECT_EQ(merged.requests, 11);
  EXPECT_DOUBLE_EQ(merged.share(ShareKind::vendor, "qwen", false), 8.0 / 11);

  // A failed sync: the one in flight is unsynced again (sent next time), caps use local counts.
  EXPECT_EQ(w.take_unsynced().requests, 1);
  w.fleet_failed();
  local = w.totals(t);
  EXPECT_FALSE(local.fleet);
  EXPECT_EQ(local.requests, 4);
  EXPECT_EQ(w.take_unsynced().requests, 1);
  w.fleet_synced(totals_of(11, 0, {{ShareKind::vendor, "qwen", 8, 0}}), t);
  EXPECT_EQ(w.totals(t + milliseconds(1000)).requests, 11);
  // Fleet totals older than the maximum age are not used.
  EXPECT_FALSE(w.totals(t + milliseconds(1001)).fleet);
  EXPECT_EQ(w.totals(t + milliseconds(1001)).requests, 4);
}

TEST(FleetShares, WithoutFleetModeNothingIsKeptForASync) {
  ShareWindow w(std::chrono::seconds(600));
  core::SteadyTime t{};
  w.add(test::facts("deepseek@global/deepseek-flash"), 0.001, t);
  EXPECT_EQ(w.take_unsynced().requests, 0);
  EXPECT_EQ(w.totals(t).requests, 1);
}

std::string compile_error(const std::string& yaml) {
  auto r = compile_policy(yaml, "t.yaml", *builtin_catalog(), vendors());
  return r.ok() ? std::string() : r.error().message;
}

TEST(DiversifyKeys, RefusesWhatItCannotHonour) {
  const std::pair<const char*, const char*> cases[] = {
      {"    max_share: {vendor: 1.5}\n", "max_share.vendor must be a number in (0, 1], got '1.5'"},
      {"    max_share: {vendor: 0}\n", "max_share.vendor must be a number in (0, 1]"},
      {"    max_share: {vendr: 0.5}\n", "unknown max_share key 'vendr' (did you mean 'vendor'?)"},
      {"    max_share: {vendor: 0.5, windw: 10m}\n", "unknown max_share key 'windw' (did you mean 'window'?)"},
      {"    max_share: {vendor: 0.5, window: 10x}\n", "max_share.window must be a duration from 60s to 24h"},
      {"    max_share: {vendor: 0.5, window: 30s}\n", "max_share.window must be a duration from 60s to 24h"},
      {"    max_share: {vendor: 0.5, by: tokens}\n", "max_share.by must be requests or spend, got 'tokens'"},
      {"    max_share: {by: spend}\n", "max_share needs a cap"},
      {"    max_share: {vendor: {vx: 0.5}}\n", "max_share.vendor: no deployment has vendor 'vx' (did you mean 'va'?)"},
      {"    max_share: {jurisdiction: {CN: 2}}\n", "max_share.jurisdiction.CN must be a number in (0, 1]"},
      {"    spread: {within: 2}\n", "spread.within must be a number in [0, 1], got '2'"},
      {"    spread: {}\n", "spread needs 'within'"},
      {"    spread: 0.1\n", "spread must be a mapping"},
      {"    canary: 0.7\n", "canary share must be a number in [0, 0.5], got '0.7'"},
      {"    canary: {shar: 0.01}\n", "unknown canary key 'shar' (did you mean 'share'?)"},
      {"    spread: {within: 0.1}\n    objective: ordered\n", "spread needs a scored objective"},
  };
  for (const auto& [keys, message] : cases) {
    const std::string err = compile_error(policy(keys));
    EXPECT_NE(err.find(message), std::string::npos) << keys << " gave: " << err;
    EXPECT_NE(err.find("t.yaml:"), std::string::npos) << err;  // file:line:column
  }
  EXPECT_NE(compile_error("defaults: {canary: -1}\n" + policy("")).find("canary share must be a number"), std::string::npos);
}

TEST(DiversifyKeys, DefaultsInheritAndNoneSwitchesOff) {
  auto p = test::must_compile("defaults: {max_share: {vendor: 0.6, by: spend, window: 1h}, canary: {share: 0.02}}\n" +
                                  policy("    canary: none\n") +
                                  "  - {name: s, match: {model: s}, candidates: [va/m, vb/m], spread: {within: 0.05}}\n",
                              vendors());
  const Route& r = p->routes[0];
  ASSERT_EQ(r.diversify.caps.size(), 1u);
  EXPECT_EQ(r.diversify.caps[0].cap, 0.6);
  EXPECT_TRUE(r.diversify.by_spend);
  EXPECT_EQ(r.diversify.window, std::chrono::seconds(3600));
  EXPECT_EQ(r.diversify.canary, 0);
  const Route& s = p->routes[1];
  EXPECT_EQ(s.diversify.canary, 0.02);
  EXPECT_EQ(*s.diversify.spread_within, 0.05);
}

TEST(DiversifyKeys, WarnsWhenACapCanNeverBeSatisfied) {
  auto p = test::must_compile(policy("") + "  - {name: one, match: {model: o}, candidates: [va/m], max_share: {vendor: 0.5}}\n"
                                           "  - {name: us, match: {model: u}, candidates: [va/m, vb/m], "
                                           "max_share: {jurisdiction: {US: 0.5}}, canary: 0.01}\n",
                              vendors());
  std::string all;
  for (const auto& w : p->warnings) all += w + "\n";
  EXPECT_NE(all.find("route 'one': max_share.vendor 0.5 can never be satisfied: the candidates have 1 vendor (va), so at "
                     "most 1 x 0.5 of the traffic can stay under it"),
            std::string::npos)
      << all;
  EXPECT_NE(all.find("route 'us': max_share.jurisdiction.US 0.5 can never be satisfied: every candidate has jurisdiction 'US'"),
            std::string::npos)
      << all;
  EXPECT_EQ(all.find("route 'r'"), std::string::npos) << all;
}

}  // namespace
}  // namespace routing
