// Property test: thousands of random policies x random requests. Whatever the policy says:
//  - no planned attempt violates a hard constraint (checked by an independent oracle below),
//  - the route used is the first that matches,
//  - every refusal is a clean 403/404/400/503 and names a reason for every candidate.
#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <set>

#include "routing/policy_router.h"
#include "routing/vocabulary.h"
#include "test_util.h"

namespace routing {
namespace {

template <class T>
const T& pick(std::mt19937_64& rng, const std::vector<T>& v) {
  return v[std::uniform_int_distribution<size_t>(0, v.size() - 1)(rng)];
}
bool coin(std::mt19937_64& rng, double p = 0.5) { return std::bernoulli_distribution(p)(rng); }
template <class T>
std::vector<T> subset(std::mt19937_64& rng, const std::vector<T>& v, double p) {
  std::vector<T> out;
  for (const auto& x : v)
    if (coin(rng, p)) out.push_back(x);
  return out;
}
bool has(const std::vector<std::string>& v, const std::string& s) { return std::find(v.begin(), v.end(), s) != v.end(); }

std::string yaml_list(const std::vector<std::string>& v) {
  std::string s = "[";
  for (size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + std::string("\"") + v[i] + "\"";
  return s + "]";
}

struct GenRoute {
  std::string name;
  std::vector<std::string> models;
  std::vector<std::string> selectors;  // YAML flow items
  std::vector<std::string> allowed_j, denied_j, req_inf, den_inf, req_sto, den_sto, denied_flags, caps, trains, presets;
  std::optional<std::string> max_risk;
  std::optional<double> max_cost;
  std::string objective;
  int max_attempts = 3;
};

const std::vector<std::string> kModels{"auto", "fast", "qwen-flash", "glm-4.7", "kimi-k3", "deepseek-flash", "local", "nope"};
const std::vector<std::string> kSelectors{
    "\"*/*\"", "deepseek/*", "\"qwen@*/*\"", "\"qwen@us-east-1/*\"", "\"qwen@ap-southeast-1/qwen-flash\"", "\"kimi@intl/*\"",
    "glm/*", "local/*", "\"*/qwen-flash\"", "{model: $request}", "{provider: \"*\", model: $request, fallback: true}",
    "{type: glm, region: cn, model: \"*\"}", "{provider: local, model: \"*\", fallback: true}"};
const std::vector<std::string> kJurisdictions{"CN", "US", "self", "SG"};
const std::vector<std::string> kRegions{"US", "DE", "SG", "CN", "HK"};
const std::vector<std::string> kGroups{"EEA", "PRC", "US", "SG", "CN"};
const std::vector<std::string> kFlags{"us_entity_list", "us_entity_list_pending", "dod_1260h_pending", "gov_device_bans",
                                      "distillation_allegation", "ndaa26_1532_covered_ai"};
const std::vector<std::string> kCaps{"tools", "json", "vision", "reasoning"};
const std::vector<std::string> kTrains{"no", "opt_in", "opt_out", "yes", "unknown"};
const std::vector<std::string> kPresets{"us-federal", "us-regulated-enterprise", "eu-gdpr", "china-domestic",
                                        "prc-models-local-only"};
const std::vector<std::string> kRisks{"none", "low", "medium", "high"};

GenRoute gen_route(std::mt19937_64& rng, int i) {
  GenRoute r;
  r.name = "r" + std::to_string(i);
  if (coin(rng, 0.7)) r.models = subset(rng, kModels, 0.3);
  if (coin(rng, 0.2)) r.models.push_back("$catalog");
  int n = std::uniform_int_distribution<int>(1, 4)(rng);
  for (int k = 0; k < n; ++k) r.selectors.push_back(pick(rng, kSelectors));
  if (coin(rng, 0.2)) r.allowed_j = subset(rng, kJurisdictions, 0.5);
  if (coin(rng, 0.2)) r.denied_j = subset(rng, kJurisdictions, 0.3);
  auto regions = [&](std::vector<std::string>& dst) {
    if (coin(rng, 0.15)) dst = subset(rng, kGroups, 0.4);
  };
  regions(r.req_inf);
  regions(r.den_inf);
  regions(r.req_sto);
  regions(r.den_sto);
  if (coin(rng, 0.25)) r.denied_flags = subset(rng, kFlags, 0.3);
  if (coin(rng, 0.2)) r.caps = subset(rng, kCaps, 0.3);
  if (coin(rng, 0.15)) r.trains = subset(rng, kTrains, 0.6);
  if (coin(rng, 0.3)) r.presets = subset(rng, kPresets, 0.3);
  if (coin(rng, 0.25)) r.max_risk = pick(rng, kRisks);
  if (coin(rng, 0.1)) r.max_cost = std::uniform_real_distribution<double>(0, 0.01)(rng);
  r.objective = pick(rng, std::vector<std::string>{"weighted", "ordered", "slo"});
  r.max_attempts = std::uniform_int_distribution<int>(1, 5)(rng);
  return r;
}

std::string to_yaml(const std::vector<GenRoute>& routes, bool eu_operator) {
  std::string y = "version: 1\nname: random\n";
  if (eu_operator) y += "operator_region: EU\n";
  y += "routes:\n";
  for (const auto& r : routes) {
    y += "  - name: " + r.name + "\n";
    if (!r.models.empty()) y += "    match: {model: " + yaml_list(r.models) + "}\n";
    y += "    candidates: [";
    for (size_t i = 0; i < r.selectors.size(); ++i) y += (i ? ", " : "") + r.selectors[i];
    y += "]\n    max_attempts: " + std::to_string(r.max_attempts) + "\n";
    if (r.objective == "ordered") y += "    objective: ordered\n";
    if (r.objective == "slo") y += "    objective: {type: cheapest_within_slo, ttft_slo_ms: 1100}\n";
    y += "    constraints:\n      context_fit: true\n";
    auto list = [&](const char* key, const std::vector<std::string>& v) {
      if (!v.empty()) y += std::string("      ") + key + ": " + yaml_list(v) + "\n";
    };
    list("allowed_jurisdictions", r.allowed_j);
    list("denied_jurisdictions", r.denied_j);
    list("required_inference_regions", r.req_inf);
    list("denied_inference_regions", r.den_inf);
    list("required_storage_regions", r.req_sto);
    list("denied_storage_regions", r.den_sto);
    list("denied_flags", r.denied_flags);
    list("required_capabilities", r.caps);
    list("trains_on_customer_data", r.trains);
    list("presets", r.presets);
    if (r.max_risk) y += "      max_sanctions_risk: " + *r.max_risk + "\n";
    if (r.max_cost) y += "      max_cost_usd: " + std::to_string(*r.max_cost) + "\n";
  }
  return y;
}

// ---- The oracle: hard constraints restated from policies/README.md, independently. ----
std::vector<std::string> expand(const std::vector<std::string>& groups) {
  std::vector<std::string> out;
  for (const auto& g : groups)
    for (const auto& c : expand_country_group(g)) out.push_back(c);
  return out;
}
// All locations known and inside `allowed` ("self" = operator's site, always inside).
bool inside(const std::vector<std::string>& where, const std::vector<std::string>& allowed) {
  if (where.empty()) return false;
  return std::all_of(where.begin(), where.end(), [&](const std::string& w) { return w == "self" || (w != "*" && has(allowed, w)); });
}
// Could any location be in `denied`? Unknown = yes.
bool touches(const std::vector<std::string>& where, const std::vector<std::string>& except, const std::vector<std::string>& denied) {
  if (where.empty()) return true;
  for (const auto& w : where) {
    if (w == "self") continue;
    if (w == "*") {
      if (std::any_of(denied.begin(), denied.end(), [&](const std::string& d) { return !has(except, d); })) return true;
    } else if (has(denied, w)) {
      return true;
    }
  }
  return false;
}
int risk_rank(const RiskFacts& r) {
  auto f = [&](const char* x) { return has(r.flags, x); };
  if (r.sanctions_risk_override) return static_cast<int>(*r.sanctions_risk_override);
  if (f("ofac_sdn")) return 4;
  if (f("us_entity_list")) return 3;
  if (f("us_entity_list_pending") || f("dod_1260h") || f("ndaa26_1532_covered_ai")) return 2;
  if (f("dod_1260h_pending") || !r.gov_device_bans.empty() || f("gov_device_bans")) return 1;
  return 0;
}

std::string violation(const DeploymentFacts& d, const GenRoute& r, const RequestFeatures& q, double est_cost) {
  const RiskFacts& k = d.risk;
  const bool self = k.jurisdiction == "self" || d.provider_type == "local";
  if (!d.configured) return "not configured";
  if (!d.has_credentials) return "no credentials";
  if (!r.allowed_j.empty() && !has(r.allowed_j, k.jurisdiction)) return "allowed_jurisdictions";
  if (!r.denied_j.empty() && (k.jurisdiction.empty() || has(r.denied_j, k.jurisdiction))) return "denied_jurisdictions";
  if (!r.req_inf.empty() && !inside(k.inference_countries, expand(r.req_inf))) return "required_inference_regions";
  if (!r.den_inf.empty() && touches(k.inference_countries, k.inference_excluded, expand(r.den_inf))) return "denied_inference_regions";
  if (!r.req_sto.empty() && !inside(k.storage_countries, expand(r.req_sto))) return "required_storage_regions";
  if (!r.den_sto.empty() && touches(k.storage_countries, {}, expand(r.den_sto))) return "denied_storage_regions";
  for (const auto& f : r.denied_flags)
    if (has(k.flags, f) || (f == "gov_device_bans" && !k.gov_device_bans.empty())) return "denied_flags " + f;
  if (r.max_risk && risk_rank(k) > static_cast<int>(*parse_sanctions_risk(*r.max_risk))) return "max_sanctions_risk";
  if (!r.trains.empty() && !has(r.trains, k.trains_on_customer_data)) return "trains_on_customer_data";
  Capabilities need;
  for (const auto& c : r.caps) need.set(c);
  need.tools |= q.needs_tools;
  need.json |= q.needs_json;
  need.vision |= q.needs_vision;
  need.reasoning |= q.needs_reasoning;
  if ((need.tools && !d.caps.tools) || (need.json && !d.caps.json) || (need.vision && !d.caps.vision) ||
      (need.reasoning && !d.caps.reasoning))
    return "capabilities";
  if (q.est_input_tokens + q.max_tokens.value_or(0) > d.context_window) return "context window";
  if (q.max_tokens && *q.max_tokens > d.max_output) return "max output";
  if (r.max_cost && est_cost > *r.max_cost + 1e-15) return "max_cost_usd";
  std::string country = q.client_region.substr(0, q.client_region.find('-'));
  const std::vector<std::string> us_adversary{"CN", "HK", "MO", "RU", "IR", "KP"};
  const std::vector<std::string> prc{"CN", "HK", "MO"};
  for (const auto& p : r.presets) {
    if (p == "us-federal") {
      if (!self && (k.jurisdiction.empty() || has(us_adversary, k.jurisdiction))) return p + " parent";
      if (self && (d.developer_country.empty() || has(us_adversary, d.developer_country))) return p + " developer";
      for (const char* f : {"dod_1260h", "dod_1260h_pending", "ndaa26_1532_covered_ai", "ofac_sdn"})
        if (has(k.flags, f)) return p + " flag";
    } else if (p == "us-regulated-enterprise") {
      if (has(k.flags, "us_entity_list") || has(k.flags, "ofac_sdn")) return p + " list";
      if (touches(k.inference_countries, k.inference_excluded, prc) || touches(k.storage_countries, {}, prc)) return p + " PRC";
      if (k.trains_on_customer_data != "no" && k.trains_on_customer_data != "opt_in") return p + " training";
      const bool dsp = std::any_of(q.data_tags.begin(), q.data_tags.end(),
                                   [](const std::string& t) { return t.rfind("us_dsp:", 0) == 0 || t == "us_gov_related"; });
      if (dsp && (k.doj_dsp_covered_person == "yes" || k.doj_dsp_covered_person == "likely")) return p + " DSP";
      if (has(q.data_tags, "ear_controlled") && !self) return p + " EAR";
    } else if (p == "eu-gdpr") {
      // Declared countries decide for self-hosted deployments too ("self" counts as inside).
      if (touches(k.inference_countries, k.inference_excluded, {"CN"}) || touches(k.storage_countries, {}, {"CN"}))
        return p + " CN";
      if (k.trains_on_customer_data != "no") return p + " training";
      if (has(q.data_tags, "eu_personal")) {
        auto ok = expand({"EEA", "GDPR_ADEQUATE"});
        if (!inside(k.inference_countries, ok) || !inside(k.storage_countries, ok)) return p + " eu_personal";
      }
    } else if (p == "china-domestic") {
      if (country == "CN" && (!inside(k.inference_countries, {"CN"}) || !inside(k.storage_countries, {"CN"}) || !k.cac_genai_filed))
        return p;
    } else if (p == "prc-models-local-only") {
      if (!self && (k.jurisdiction.empty() || has(prc, k.jurisdiction))) return p;
    }
  }
  return "";
}

bool origin_blocked(const std::string& region, bool eu) {
  std::string r = region;
  for (auto& c : r) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  std::string country = r.substr(0, r.find('-'));
  if (has({"CU", "IR", "KP"}, country)) return true;
  if (has({"UA-43", "UA-40", "UA-14", "UA-09"}, r)) return true;
  return eu && has({"UA-23", "UA-65"}, r);
}

TEST(RoutingProperty, RandomPoliciesNeverViolateHardConstraints) {
  std::mt19937_64 rng(20261123);
  const int kPolicies = 1500, kRequests = 12;
  int plans = 0, refusals = 0, attempts_checked = 0, dead_policies = 0;
  std::set<std::string> refusal_kinds;
  for (int pi = 0; pi < kPolicies; ++pi) {
    std::vector<ProviderInstance> providers;
    for (const char* t : {"deepseek", "qwen", "kimi", "glm"})
      if (coin(rng, 0.85)) providers.push_back({t, t, {}, coin(rng, 0.8), std::string("set ") + t + "_KEY", {}});
    if (coin(rng, 0.6)) providers.push_back({"local", "local", {}, true, "", {}});
    std::vector<GenRoute> routes;
    const int nr = std::uniform_int_distribution<int>(1, 3)(rng);
    for (int i = 0; i < nr; ++i) routes.push_back(gen_route(rng, i));
    const bool eu = coin(rng, 0.2);
    const std::string yaml = to_yaml(routes, eu);
    auto compiled = compile_policy(yaml, "random.yaml", *builtin_catalog(), providers);
    if (!compiled.ok() && compiled.error().message.find("excludes every candidate of every route") != std::string::npos) {
      ++dead_policies;  // refused at load: it could serve nothing (the per-request refusals are tested below)
      continue;
    }
    ASSERT_TRUE(compiled.ok()) << compiled.error().message << "\n" << yaml;
    const CompiledPolicy& policy = *compiled.value();
    core::ManualClock clock(test::utc(std::uniform_int_distribution<int>(0, 6)(rng), std::uniform_int_distribution<int>(0, 23)(rng), 0));
    PolicyRouter router(compiled.value(), {.clock = &clock});
    // Some live history: failures open a few circuits, 429s start cooldowns.
    for (const auto& d : policy.deployments) {
      if (coin(rng, 0.1))
        for (int k = 0; k < 5; ++k) {
          AttemptOutcome o;
          o.deployment = d.deployment.id;
          o.error = core::make_error(coin(rng) ? core::ErrorKind::server_error : core::ErrorKind::rate_limited, "x",
                                     core::ErrorSource::upstream);
          router.record(o);
        }
    }
    for (int qi = 0; qi < kRequests; ++qi) {
      RequestFeatures f;
      f.model = pick(rng, kModels);
      f.client_region = pick(rng, std::vector<std::string>{"US", "DE", "CN", "SG", "IR", "UA-43", "UA-23", "", "us-ny"});
      f.data_tags = subset(rng, std::vector<std::string>{"eu_personal", "us_dsp:health", "ear_controlled", "us_gov_related"}, 0.15);
      f.est_input_tokens = coin(rng, 0.1) ? std::uniform_int_distribution<int64_t>(100'000, 1'500'000)(rng)
                                          : std::uniform_int_distribution<int64_t>(1, 20'000)(rng);
      if (coin(rng, 0.7)) f.max_tokens = std::uniform_int_distribution<int64_t>(1, coin(rng, 0.1) ? 500'000 : 4000)(rng);
      f.needs_tools = coin(rng, 0.2);
      f.needs_json = coin(rng, 0.1);
      f.needs_vision = coin(rng, 0.1);
      f.needs_reasoning = coin(rng, 0.1);
      f.prefix_hash = coin(rng, 0.3) ? rng() : 0;

      // Which route should apply: the first whose model list matches.
      const GenRoute* expected = nullptr;
      for (const auto& r : routes) {
        const bool in_catalog =
            std::any_of(policy.deployments.begin(), policy.deployments.end(), [&](const DeploymentFacts& d) { return d.deployment.model == f.model; });
        if (r.models.empty() || has(r.models, f.model) || (has(r.models, "$catalog") && in_catalog)) {
          expected = &r;
          break;
        }
      }
      auto result = router.plan(f);
      if (result.ok()) {
        ++plans;
        const Plan& plan = result.value();
        ASSERT_NE(expected, nullptr);
        ASSERT_EQ(plan.route, expected->name);
        ASSERT_FALSE(plan.attempts.empty());
        ASSERT_LE(static_cast<int>(plan.attempts.size()), expected->max_attempts);
        ASSERT_FALSE(origin_blocked(f.client_region, eu)) << f.client_region;
        std::set<std::string> seen;
        for (const auto& a : plan.attempts) {
          ASSERT_TRUE(seen.insert(a.deployment.id).second) << "duplicate " << a.deployment.id;
          const DeploymentFacts* d = policy.find(a.deployment.id);
          ASSERT_NE(d, nullptr);
          const std::string why = violation(*d, *expected, f, a.est_cost_usd);
          ASSERT_EQ(why, "") << a.deployment.id << " violates " << why << "\n" << yaml << "\nregion " << f.client_region;
          ++attempts_checked;
        }
      } else {
        ++refusals;
        const core::Error& e = result.error();
        refusal_kinds.insert(core::to_string(e.kind));
        const int status = e.http_status();
        // 429: every candidate cooling down after 429s.
        ASSERT_TRUE(status == 403 || status == 404 || status == 400 || status == 503 || status == 429)
            << status << " " << e.message;
        ASSERT_FALSE(e.message.empty());
        if (!expected) {
          ASSERT_EQ(e.kind, core::ErrorKind::not_found) << e.message;
          continue;
        }
        if (e.code == "routing_refused") {
          Decision d = router.decide(f);
          ASSERT_TRUE(d.ranked.empty()) << e.message;
          for (const auto& ev : d.evals) {
            ASSERT_TRUE(ev.excluded);
            ASSERT_FALSE(ev.reason.empty());
            const std::string& id = policy.deployments[ev.deployment].deployment.id;
            if (d.evals.size() <= 64)
              ASSERT_NE(e.message.find(id + " excluded: " + ev.reason), std::string::npos) << id << "\n" << e.message;
          }
          if (origin_blocked(f.client_region, eu)) ASSERT_EQ(e.kind, core::ErrorKind::forbidden);
        }
      }
    }
  }
  // The generator must exercise both outcomes substantially, or the test proves little.
  EXPECT_GT(plans, kPolicies * kRequests / 10);
  EXPECT_GT(refusals, kPolicies * kRequests / 10);
  EXPECT_GT(attempts_checked, plans);
  EXPECT_GE(refusal_kinds.size(), 3u);
  EXPECT_LT(dead_policies, kPolicies / 4);
  std::printf("property: %d plans (%d attempts checked), %d refusals, %d policies refused as dead\n", plans,
              attempts_checked, refusals, dead_policies);
}

// ---- Adversarial inputs: region and tag spellings, tenant settings against headers, candidates
// without a region. Ground truth comes from how each input was generated, not from the parser. ----

struct Spelled {
  std::string text;       // what the client sends
  std::string canonical;  // what it means ("" = invalid)
};

std::string decorate(std::mt19937_64& rng, std::string s) {
  for (auto& c : s)
    if (coin(rng)) c = static_cast<char>(coin(rng) ? std::toupper(static_cast<unsigned char>(c)) : std::tolower(static_cast<unsigned char>(c)));
  if (coin(rng, 0.3)) s = std::string(std::uniform_int_distribution<int>(1, 3)(rng), coin(rng) ? ' ' : '\t') + s;
  if (coin(rng, 0.3)) s += std::string(std::uniform_int_distribution<int>(1, 3)(rng), ' ');
  return s;
}

Spelled gen_region(std::mt19937_64& rng) {
  static const std::vector<std::pair<std::string, std::string>> valid{
      {"US", "US"}, {"DE", "DE"}, {"CN", "CN"}, {"SG", "SG"}, {"FR", "FR"}, {"US-NY", "US-NY"}, {"IR", "IR"},
      {"KP", "KP"}, {"CU", "CU"}, {"UA", "UA"}, {"UA-30", "UA-30"}, {"UA-43", "UA-43"}, {"UA_43", "UA-43"},
      {"UA43", "UA-43"}, {"RU-CR", "UA-43"}, {"Crimea", "UA-43"}, {"Simferopol", "UA-43"}, {"UA-40", "UA-40"},
      {"RU-SEV", "UA-40"}, {"Sevastopol", "UA-40"}, {"UA-14", "UA-14"}, {"Donetsk", "UA-14"}, {"DNR", "UA-14"},
      {"UA-09", "UA-09"}, {"Luhansk", "UA-09"}, {"LNR", "UA-09"}, {"UA-23", "UA-23"}, {"Zaporizhzhia", "UA-23"},
      {"UA-65", "UA-65"}, {"Kherson", "UA-65"}, {"RU", "RU"}, {"HK", "HK"}};
  static const std::vector<std::string> invalid{"IRN", "Iran", "XX", "ZZ", "UA-433", "U", "USA", "DEU", "Crimeaa",
                                                "UA-4", "US--NY", "12", "North Korea", "UA/43", "D E"};
  if (coin(rng, 0.15)) return {"", ""};
  if (coin(rng, 0.25)) return {decorate(rng, pick(rng, invalid)), ""};
  const auto& [text, canonical] = pick(rng, valid);
  return {decorate(rng, text), canonical};
}

Spelled gen_tag(std::mt19937_64& rng) {
  static const std::vector<std::string> valid{"eu_personal", "us_dsp:health", "ear_controlled", "us_gov_related",
                                              "prc_personal", "us_dsp:biometric"};
  static const std::vector<std::string> invalid{"eu_personnal", "eu personal", "us_dsp", "ear", "pii", "us_dsp:healt"};
  if (coin(rng, 0.2)) return {decorate(rng, pick(rng, invalid)), ""};
  std::string t = pick(rng, valid);
  const std::string canonical = t;
  for (auto& c : t)
    if (c == '_' && coin(rng)) c = '-';
  return {decorate(rng, t), canonical};
}

bool origin_blocked_canonical(const std::string& r, bool eu) {
  const std::string country = r.substr(0, 2);
  if (has({"CU", "IR", "KP"}, country)) return true;
  if (has({"UA-43", "UA-40", "UA-14", "UA-09"}, r)) return true;
  return eu && has({"UA-23", "UA-65"}, r);
}

TEST(RoutingProperty, AdversarialInputsNeverLoosenTheRules) {
  std::mt19937_64 rng(20261202);
  const int kPolicies = 300, kRequests = 20;
  int plans = 0, invalid = 0, refused = 0, attempts_checked = 0;
  const std::vector<std::string> qwen_regions{"cn-beijing", "ap-southeast-1", "us-east-1", "cn-hongkong"};
  for (int pi = 0; pi < kPolicies; ++pi) {
    std::vector<ProviderInstance> providers;
    for (const char* t : {"deepseek", "qwen", "kimi", "glm"}) providers.push_back({t, t, {}, true, "", {}});
    providers[1].regions = qwen_regions;
    providers[1].configured_regions = subset(rng, qwen_regions, 0.4);
    if (providers[1].configured_regions.empty()) providers[1].configured_regions = {pick(rng, qwen_regions)};
    providers[2].configured_regions = {pick(rng, std::vector<std::string>{"intl", "cn"})};
    providers[3].configured_regions = {pick(rng, std::vector<std::string>{"intl", "cn"})};
    providers.push_back({"local", "local", {}, true, "", {}});
    GenRoute route;
    route.name = "r";
    route.selectors = {"deepseek/*", "qwen/*", "kimi/*", "glm/*", "local/*"};
    if (coin(rng, 0.5)) route.presets = subset(rng, kPresets, 0.3);
    route.max_attempts = 16;
    route.objective = "weighted";
    const bool eu = coin(rng, 0.3);
    // The spare route (never asked for) keeps a policy whose one route the presets kill loadable.
    const std::string yaml = to_yaml({route}, eu) + "  - {name: spare, match: {model: spare}, candidates: [local/*]}\n";
    auto compiled = compile_policy(yaml, "adversarial.yaml", *builtin_catalog(), providers);
    ASSERT_TRUE(compiled.ok()) << compiled.error().message << "\n" << yaml;
    const CompiledPolicy& policy = *compiled.value();
    core::ManualClock clock(test::utc(0, 12, 0));
    PolicyRouter router(compiled.value(), {.clock = &clock});

    for (int qi = 0; qi < kRequests; ++qi) {
      // The tenant: canonical settings (validated at load in real life), random override list.
      TenantSettings tenant;
      std::vector<std::string> tenant_presets;
      if (coin(rng, 0.5)) tenant.client_region = pick(rng, std::vector<std::string>{"US", "DE", "CN", "IR", "UA-43", "UA-23", "SG"});
      if (coin(rng, 0.4)) tenant.data_classification = pick(rng, std::vector<std::string>{"public", "internal", "eu_personal", "restricted"});
      if (coin(rng, 0.3)) tenant.data_tags = subset(rng, std::vector<std::string>{"eu_personal", "us_dsp:health", "ear_controlled"}, 0.5);
      if (coin(rng, 0.3)) tenant_presets = subset(rng, kPresets, 0.4);
      for (const auto& p : tenant_presets) tenant.presets |= *preset_bit(p);
      tenant.override_region = coin(rng, 0.2);
      tenant.override_classification = coin(rng, 0.2);
      tenant.override_tags = coin(rng, 0.2);
      const bool has_tenant = coin(rng, 0.7);

      RequestFeatures f;
      f.model = "auto";
      f.est_input_tokens = 100;
      f.max_tokens = 100;
      if (has_tenant) {
        f.tenant = "t";
        f.tenant_settings = &tenant;
      }
      const Spelled region = gen_region(rng);
      f.client_region = region.text;
      const bool region_invalid = !region.text.empty() && region.canonical.empty();
      Spelled cls{"", ""};
      if (coin(rng, 0.3)) {
        if (coin(rng, 0.2)) cls = {decorate(rng, "secret"), ""};
        else {
          std::string c = pick(rng, std::vector<std::string>{"public", "internal", "eu_personal", "confidential", "us-dsp:health"});
          cls = {decorate(rng, c), normalize_tag(c)};
        }
      }
      f.data_classification = cls.text;
      const bool class_invalid = !cls.text.empty() && cls.canonical.empty();
      std::vector<std::string> header_tags;
      bool tag_invalid = false;
      for (int k = std::uniform_int_distribution<int>(0, 3)(rng); k > 0; --k) {
        Spelled t = gen_tag(rng);
        f.data_tags.push_back(t.text);
        if (t.canonical.empty()) tag_invalid = true;
        else header_tags.push_back(t.canonical);
      }

      auto result = router.plan(f);
      if (region_invalid || class_invalid || tag_invalid) {
        ++invalid;
        ASSERT_FALSE(result.ok()) << "accepted invalid input: region '" << f.client_region << "' class '"
                                  << f.data_classification << "'";
        const core::Error& e = result.error();
        ASSERT_EQ(e.http_status(), 400) << e.message;
        const std::string field = region_invalid  ? "x-gateway-client-region"
                                  : class_invalid ? "x-gateway-data-classification"
                                                  : "x-gateway-data-tags";
        ASSERT_EQ(e.param, field) << e.message;
        ASSERT_NE(e.message.find(field), std::string::npos) << e.message;
        continue;
      }

      // What must apply whatever the headers say: every region someone asserted (the tenant's
      // unless it lets the header override; the header's always), every tag, every preset.
      std::vector<std::string> regions;
      if (has_tenant && !tenant.client_region.empty() && !(tenant.override_region && !region.canonical.empty()))
        regions.push_back(tenant.client_region);
      if (!region.canonical.empty()) regions.push_back(region.canonical);
      std::vector<std::string> tags = header_tags;
      if (has_tenant && !(tenant.override_tags && !f.data_tags.empty()))
        tags.insert(tags.end(), tenant.data_tags.begin(), tenant.data_tags.end());
      if (has_tenant && !tenant.data_classification.empty() && !(tenant.override_classification && !cls.canonical.empty()))
        tags.push_back(tenant.data_classification);
      if (!cls.canonical.empty()) tags.push_back(cls.canonical);
      GenRoute oracle_route = route;
      if (has_tenant) oracle_route.presets.insert(oracle_route.presets.end(), tenant_presets.begin(), tenant_presets.end());
      const bool blocked =
          std::any_of(regions.begin(), regions.end(), [&](const std::string& r) { return origin_blocked_canonical(r, eu); });

      if (!result.ok()) {
        ++refused;
        const int status = result.error().http_status();
        ASSERT_TRUE(status == 403 || status == 503) << status << " " << result.error().message;
        continue;
      }
      ++plans;
      ASSERT_FALSE(blocked) << "served a client from a sanctioned region: tenant '" << tenant.client_region
                            << "' header '" << f.client_region << "'";
      for (const auto& a : result->attempts) {
        const DeploymentFacts* d = policy.find(a.deployment.id);
        ASSERT_NE(d, nullptr);
        for (const auto& inst : providers)
          if (inst.name == d->deployment.provider && !inst.configured_regions.empty())
            ASSERT_TRUE(has(inst.configured_regions, d->deployment.region))
                << a.deployment.id << " is outside the instance's configured regions";
        RequestFeatures q = f;
        q.data_tags = tags;
        for (const auto& r : regions.empty() ? std::vector<std::string>{""} : regions) {
          q.client_region = r;
          const std::string why = violation(*d, oracle_route, q, a.est_cost_usd);
          ASSERT_EQ(why, "") << a.deployment.id << " violates " << why << " (region " << r << ")\n" << yaml;
        }
        ++attempts_checked;
      }
    }
  }
  EXPECT_GT(plans, kPolicies * kRequests / 10);
  EXPECT_GT(invalid, kPolicies * kRequests / 10);
  EXPECT_GT(refused, kPolicies * kRequests / 20);
  EXPECT_GT(attempts_checked, plans);
  std::printf("adversarial: %d plans (%d attempts checked), %d invalid inputs refused, %d refusals\n", plans,
              attempts_checked, invalid, refused);
}

}  // namespace
}  // namespace routing
