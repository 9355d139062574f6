// Request inputs that compliance rules test: client regions (ISO 3166 + sanctioned-territory
// aliases), data tags and classifications (one vocabulary), tenant settings over headers, tenant
// presets, self-hosted residency, candidates without a region.
#include <gtest/gtest.h>

#include <set>

#include "routing/constraints.h"
#include "routing/iso3166.h"
#include "routing/static_router.h"
#include "routing/vocabulary.h"
#include "test_util.h"

namespace routing {
namespace {

using test::must_compile;
using test::request;

std::set<std::string> ids(const Plan& p) {
  std::set<std::string> s;
  for (const auto& a : p.attempts) s.insert(a.deployment.id);
  return s;
}

// What eu_personal data may use: the local engine and Alibaba's Frankfurt EU scope (EU-only
// inference, storage in DE).
std::set<std::string> eu_resident_ids(const CompiledPolicy& policy) {
  std::set<std::string> s;
  for (const auto& d : policy.deployments)
    if (d.is_local() || d.deployment.region == "eu-central-1") s.insert(d.deployment.id);
  return s;
}

TEST(ClientRegion, IsoCodesCaseAndWhitespace) {
  EXPECT_TRUE(is_iso3166_country("DE"));
  EXPECT_FALSE(is_iso3166_country("XX"));
  EXPECT_TRUE(is_iso3166_country("XK"));  // Kosovo: user-assigned, but what GeoIP data sends
  EXPECT_TRUE(is_iso3166_subdivision("US-NY"));
  for (const char* s : {"de", " DE ", "\tDe", "dE"}) {
    auto r = parse_region(s);
    ASSERT_TRUE(r) << s;
    EXPECT_EQ(r->country, "DE");
    EXPECT_EQ(r->subdivision, "");
  }
  auto ny = parse_region(" us-ny ");
  ASSERT_TRUE(ny);
  EXPECT_EQ(ny->country, "US");
  EXPECT_EQ(ny->subdivision, "US-NY");
  auto blank = parse_region("   ");
  ASSERT_TRUE(blank);
  EXPECT_TRUE(blank->empty());
}

TEST(ClientRegion, SanctionedTerritoryAliases) {
  const std::pair<const char*, const char*> cases[] = {
      {"RU-CR", "UA-43"},     {"ru-cr", "UA-43"},      {"UA_43", "UA-43"},       {"UA43", "UA-43"},
      {"ua 43", "UA-43"},     {"Crimea", "UA-43"},     {"Republic of Crimea", "UA-43"}, {"Simferopol", "UA-43"},
      {"RU-SEV", "UA-40"},    {"Sevastopol", "UA-40"}, {"UA40", "UA-40"},        {"Donetsk", "UA-14"},
      {"DNR", "UA-14"},       {"Luhansk", "UA-09"},    {"Lugansk", "UA-09"},     {"LPR", "UA-09"},
      {"Zaporizhzhia", "UA-23"}, {"Kherson", "UA-65"}, {" ua-09 ", "UA-09"},
  };
  for (const auto& [in, code] : cases) {
    auto r = parse_region(in);
    ASSERT_TRUE(r) << in;
    EXPECT_EQ(r->subdivision, code) << in;
    EXPECT_EQ(r->country, "UA") << in;
  }
}

TEST(ClientRegion, EverythingElseIsRefusedWithAReason) {
  for (const char* s : {"IRN", "Iran", "XX", "ZZ-1", "UA-433", "DE-XX", "U", "12", "US--NY", "DE\x01", "Deutschland",
                        "\xc3\xa9\xc3\xa9", "US-NY-1"}) {
    std::string why;
    EXPECT_FALSE(parse_region(s, &why)) << s;
    EXPECT_FALSE(why.empty()) << s;
  }
  std::string why;
  parse_region("IRN", &why);
  EXPECT_NE(why.find("alpha-3"), std::string::npos) << why;
  EXPECT_FALSE(parse_region(std::string(65, 'A')));
}

TEST(DataTags, NormalizedAndKnown) {
  EXPECT_EQ(normalize_tag(" EU-Personal "), "eu_personal");
  EXPECT_EQ(normalize_tag("US_DSP:HEALTH"), "us_dsp:health");
  EXPECT_EQ(normalize_tag("EAR-CONTROLLED"), "ear_controlled");
  DataVocabulary v;
  EXPECT_TRUE(v.known_tag("eu_personal"));
  EXPECT_TRUE(v.known_tag("us_dsp:health"));
  EXPECT_FALSE(v.known_tag("eu_personnal"));
  EXPECT_TRUE(v.known_classification("internal"));
  EXPECT_TRUE(v.known_classification("eu_personal"));  // a tag used as classification
  EXPECT_FALSE(v.known_classification("secret"));
  v.add_classification("Secret");
  EXPECT_TRUE(v.known_classification("secret"));
  EXPECT_LT(classification_rank("public"), classification_rank("internal"));
  EXPECT_LT(classification_rank("restricted"), classification_rank("eu_personal"));
}

const char* kGdprPolicy = R"(
routes:
  - name: r
    max_attempts: 16
    constraints: {presets: [eu-gdpr]}
    candidates: ["*/*"]
)";

TEST(RequestInputs, TagSpellingsAllMeanTheTag) {
  core::ManualClock clock;
  auto policy = must_compile(kGdprPolicy);
  PolicyRouter router(policy, {.clock = &clock});
  auto plain = router.plan(request("x"));
  ASSERT_TRUE(plain.ok());
  ASSERT_GT(plain->attempts.size(), 1u);  // non-EU deployments pass eu-gdpr without eu_personal
  for (const char* spelling : {"eu_personal", "EU_PERSONAL", "eu-personal", " Eu-Personal "}) {
    auto f = request("x");
    f.data_tags = {spelling};
    auto r = router.plan(f);
    ASSERT_TRUE(r.ok()) << spelling << ": " << r.error().message;
    EXPECT_EQ(ids(*r), eu_resident_ids(*policy)) << spelling;
  }
  auto f = request("x");
  f.data_classification = "EU-PERSONAL";
  auto r = router.plan(f);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(ids(*r), eu_resident_ids(*policy));
}

TEST(RequestInputs, InvalidHeadersAre400NamingTheHeader) {
  core::ManualClock clock;
  auto policy = must_compile(kGdprPolicy);
  PolicyRouter router(policy, {.clock = &clock});
  struct Case {
    const char* region;
    const char* tag;
    const char* classification;
    const char* code;
    const char* param;
  } cases[] = {
      {"IRN", nullptr, nullptr, "invalid_client_region", "x-gateway-client-region"},
      {"Iran", nullptr, nullptr, "invalid_client_region", "x-gateway-client-region"},
      {"XX", nullptr, nullptr, "invalid_client_region", "x-gateway-client-region"},
      {nullptr, "eu_personnal", nullptr, "invalid_data_tag", "x-gateway-data-tags"},
      {nullptr, nullptr, "secret", "invalid_data_classification", "x-gateway-data-classification"},
  };
  for (const auto& c : cases) {
    auto f = request("x");
    if (c.region) f.client_region = c.region;
    if (c.tag) f.data_tags = {"eu_personal", c.tag};
    if (c.classification) f.data_classification = c.classification;
    auto r = router.plan(f);
    ASSERT_FALSE(r.ok()) << c.code;
    EXPECT_EQ(r.error().kind, core::ErrorKind::bad_request);
    EXPECT_EQ(r.error().http_status(), 400);
    EXPECT_EQ(r.error().code, c.code);
    EXPECT_EQ(r.error().param, c.param);
    EXPECT_NE(r.error().message.find(c.param), std::string::npos) << r.error().message;
  }
  auto many = request("x");
  many.data_tags.assign(65, "eu_personal");
  auto too_many = router.plan(many);
  ASSERT_FALSE(too_many.ok());
  EXPECT_EQ(too_many.error().param, "x-gateway-data-tags");
  many.data_tags.resize(64);
  EXPECT_TRUE(router.plan(many).ok());
  // ignore mode: unknown tags dropped, the known ones still apply; regions are never ignored.
  PolicyRouter lenient(policy, {.clock = &clock, .reject_unknown_data_tags = false});
  auto f = request("x");
  f.data_tags = {"eu_personal", "eu_personnal"};
  auto r = lenient.plan(f);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(ids(*r), eu_resident_ids(*policy));
  f = request("x");
  f.client_region = "IRN";
  EXPECT_EQ(lenient.plan(f).error().code, "invalid_client_region");
}

TEST(RequestInputs, SanctionedAliasesAreBlocked) {
  core::ManualClock clock;
  auto policy = must_compile("routes:\n  - {name: r, candidates: [\"*/*\"]}\n");
  PolicyRouter router(policy, {.clock = &clock});
  for (const char* region : {"RU-CR", "RU-SEV", "UA_43", "UA43", "crimea", " ir ", "Sevastopol", "DNR"}) {
    auto f = request("x");
    f.client_region = region;
    auto r = router.plan(f);
    ASSERT_FALSE(r.ok()) << region;
    EXPECT_EQ(r.error().kind, core::ErrorKind::forbidden) << region;
    EXPECT_NE(r.error().message.find("sanctioned-origin-block"), std::string::npos) << region;
  }
}

TEST(TenantSettings, HeadersOnlyNarrow) {
  core::ManualClock clock;
  auto policy = must_compile(R"(
routes:
  - name: personal
    match: {data_classification: eu_personal}
    max_attempts: 16
    constraints: {presets: [eu-gdpr]}
    candidates: ["*/*"]
  - name: rest
    max_attempts: 16
    candidates: ["*/*"]
)");
  PolicyRouter router(policy, {.clock = &clock});
  TenantSettings iran;
  iran.client_region = "IR";
  auto f = request("x");
  f.tenant = "t";
  f.tenant_settings = &iran;
  f.client_region = "US";  // a header cannot lift the tenant's region
  auto r = router.plan(f);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("sanctioned-origin-block"), std::string::npos);

  TenantSettings us;
  us.client_region = "US";
  f.tenant_settings = &us;
  f.client_region = "RU-CR";  // but it can add a region whose rules apply too
  EXPECT_FALSE(router.plan(f).ok());
  f.client_region = "us";
  EXPECT_TRUE(router.plan(f).ok());

  TenantSettings personal;
  personal.data_classification = "eu_personal";
  f = request("x");
  f.tenant = "t";
  f.tenant_settings = &personal;
  f.data_classification = "public";  // weaker: the tenant's classification stays
  r = router.plan(f);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->route, "personal");
  EXPECT_EQ(ids(*r), eu_resident_ids(*policy));

  TenantSettings internal;
  internal.data_classification = "internal";
  f.tenant_settings = &internal;
  f.data_classification = "eu_personal";  // stricter: the header applies
  r = router.plan(f);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->route, "personal");

  // Tags only accumulate.
  TenantSettings tagged;
  tagged.data_tags = {"eu_personal"};
  f = request("x");
  f.tenant_settings = &tagged;
  f.data_tags = {"us_gov_related"};
  auto d = router.decide(f);
  EXPECT_NE(std::find(d.data_tags.begin(), d.data_tags.end(), "eu_personal"), d.data_tags.end());
  EXPECT_NE(std::find(d.data_tags.begin(), d.data_tags.end(), "us_gov_related"), d.data_tags.end());
}

TEST(TenantSettings, AllowHeaderOverrides) {
  core::ManualClock clock;
  auto policy = must_compile("routes:\n  - {name: r, candidates: [\"*/*\"]}\n");
  PolicyRouter router(policy, {.clock = &clock});
  TenantSettings t;
  t.client_region = "DE";
  t.override_region = true;
  auto f = request("x");
  f.tenant_settings = &t;
  f.client_region = "US";
  auto d = router.decide(f);
  EXPECT_EQ(d.client_country, "US");
  EXPECT_TRUE(d.other_client_regions.empty());
  t.override_region = false;
  d = router.decide(f);
  EXPECT_EQ(d.client_country, "DE");
  ASSERT_EQ(d.other_client_regions.size(), 1u);
  EXPECT_EQ(d.other_client_regions[0].country, "US");
}

TEST(TenantSettings, PolicyTenantsAreAuthoritativeToo) {
  core::ManualClock clock;
  auto policy = must_compile(R"(
tenants:
  acme: {client_region: ir}
routes:
  - {name: r, candidates: ["*/*"]}
)");
  PolicyRouter router(policy, {.clock = &clock});
  auto f = request("x");
  f.tenant = "acme";
  f.client_region = "US";
  EXPECT_FALSE(router.plan(f).ok());
}

TEST(TenantSettings, TenantPresetsApplyOnEveryRoute) {
  core::ManualClock clock;
  auto policy = must_compile("routes:\n  - {name: r, max_attempts: 16, candidates: [\"*/*\"]}\n");
  PolicyRouter router(policy, {.clock = &clock});
  auto f = request("x");
  auto open = router.plan(f);
  ASSERT_TRUE(open.ok());
  EXPECT_TRUE(ids(*open).count("qwen@us-east-1/qwen-flash") || ids(*open).count("deepseek@global/deepseek-flash"));
  TenantSettings federal;
  federal.presets = kPresetUsFederal;
  f.tenant_settings = &federal;
  auto r = router.decide(f);
  size_t excluded = 0;
  for (const auto& e : r.evals) {
    const auto& dep = policy->deployments[e.deployment];
    if (dep.risk.jurisdiction == "CN") {
      EXPECT_TRUE(e.excluded) << dep.deployment.id;
      EXPECT_NE(e.reason.find("us-federal"), std::string::npos) << e.reason;
      ++excluded;
    }
  }
  EXPECT_GT(excluded, 0u);
  auto plan = router.plan(f);
  if (plan.ok())
    for (const auto& a : plan->attempts) EXPECT_NE(policy->find(a.deployment.id)->risk.jurisdiction, "CN");
}

TEST(Residency, SelfHostedDeclaredCountriesCount) {
  core::ManualClock clock;
  std::vector<ProviderInstance> providers = test::all_providers();
  providers.push_back({"box", "openai_compatible", {"default"}, true, "", {"llama"}});
  auto policy = must_compile(R"(
catalog:
  - ref: box@default/llama
    jurisdiction: self
    inference_countries: [CN]
    storage_countries: [CN]
    trains_on_customer_data: "no"
    context_window: 131072
routes:
  - name: r
    max_attempts: 16
    constraints: {presets: [eu-gdpr]}
    candidates: [box/*, local/*]
)", providers);
  PolicyRouter router(policy, {.clock = &clock});
  auto f = request("x");
  f.data_tags = {"eu_personal"};
  auto r = router.plan(f);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(ids(*r), std::set<std::string>{"local@local/local"});
  auto d = router.decide(f);
  for (const auto& e : d.evals)
    if (policy->deployments[e.deployment].deployment.provider == "box") {
      EXPECT_TRUE(e.excluded);
      EXPECT_NE(e.reason.find("CN"), std::string::npos) << e.reason;
    }
}

TEST(Candidates, NoRegionMeansTheConfiguredRegion) {
  std::vector<ProviderInstance> providers = test::all_providers();
  providers[1].regions = {"cn-beijing", "ap-southeast-1", "us-east-1", "cn-hongkong"};
  providers[1].configured_regions = {"ap-southeast-1"};
  auto policy = must_compile(R"(
routes:
  - {name: r, max_attempts: 16, candidates: [qwen/qwen-flash]}
  - {name: s, match: {model: all}, max_attempts: 16, candidates: ["qwen@*/qwen-flash", {provider: qwen, region: us-east-1, model: qwen-flash}]}
)", providers);
  const auto& r = policy->routes[0].candidates.at("");
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(policy->deployments[r[0].deployment].deployment.id, "qwen@ap-southeast-1/qwen-flash");
  EXPECT_EQ(policy->routes[1].candidates.at("").size(), 4u);  // an explicit glob still means every region
}

TEST(PolicyVocabulary, MisspeltTagsAreErrorsWithPosition) {
  auto r = compile_policy(R"(
defaults:
  data_tags: [eu_personal, EU-Personnal]
routes:
  - name: r
    match: {data_classification: [internal, confidental]}
    candidates: ["*/*"]
)", "p.yaml", *builtin_catalog(), test::all_providers());
  ASSERT_FALSE(r.ok());
  const std::string& m = r.error().message;
  EXPECT_NE(m.find("p.yaml:3:28: defaults.data_tags: unknown data tag 'EU-Personnal' (did you mean 'eu_personal'?)"),
            std::string::npos) << m;
  EXPECT_NE(m.find("p.yaml:6:45: match.data_classification: unknown data classification 'confidental'"),
            std::string::npos) << m;
  auto bad_region = compile_policy("tenants:\n  a: {client_region: IRN}\nroutes:\n  - {name: r, candidates: [\"*/*\"]}\n",
                                   "p.yaml", *builtin_catalog(), test::all_providers());
  ASSERT_FALSE(bad_region.ok());
  EXPECT_NE(bad_region.error().message.find("p.yaml:2:22: tenants.a.client_region"), std::string::npos)
      << bad_region.error().message;
}

TEST(PolicyVocabulary, DeclaredTagsAreKnown) {
  core::ManualClock clock;
  auto policy = must_compile(R"(
vocabulary: {data_tags: [acme-secret], data_classifications: [top-secret]}
tenants:
  acme: {data_tags: [ACME_SECRET], data_classification: top_secret}
routes:
  - {name: secret, match: {data_classification: top-secret}, candidates: [local/*]}
  - {name: r, candidates: ["*/*"]}
)");
  PolicyRouter router(policy, {.clock = &clock});
  auto f = request("x");
  f.data_tags = {"Acme-Secret"};
  f.data_classification = "TOP-SECRET";
  auto r = router.plan(f);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->route, "secret");
}

TEST(StaticRouter, ValidatesTheRegionAndBlocksSanctionedOrigins) {
  Deployment d;
  d.provider = "deepseek";
  d.region = "global";
  d.model = "deepseek-flash";
  d.id = "deepseek@global/deepseek-flash";
  StaticRouter router({{"auto", {d}}}, {{"deepseek", true, "", "global"}});
  auto f = request("auto");
  EXPECT_TRUE(router.plan(f).ok());
  f.client_region = " de ";
  EXPECT_TRUE(router.plan(f).ok());
  f.client_region = "IRN";
  auto bad = router.plan(f);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().code, "invalid_client_region");
  EXPECT_EQ(bad.error().param, "x-gateway-client-region");
  for (const char* region : {"RU-CR", "ir", "UA43"}) {
    f.client_region = region;
    auto r = router.plan(f);
    ASSERT_FALSE(r.ok()) << region;
    EXPECT_EQ(r.error().kind, core::ErrorKind::forbidden) << region;
  }
}

TEST(DeadRoutes, WarnedWhenOneRouteCanNeverServeRefusedWhenNoneCan) {
  const char* one_dead = R"(
routes:
  - name: nowhere
    match: {model: x}
    constraints: {allowed_jurisdictions: [US]}
    candidates: [deepseek/*, qwen/*]
  - {name: rest, candidates: ["*/*"]}
)";
  auto p = must_compile(one_dead);
  ASSERT_EQ(p->warnings.size(), 1u);
  EXPECT_NE(p->warnings[0].find("test.yaml:3:5: warning: route 'nowhere' can never serve"), std::string::npos)
      << p->warnings[0];
  auto all_dead = compile_policy(R"(
routes:
  - name: nowhere
    constraints: {allowed_jurisdictions: [US]}
    candidates: [deepseek/*, qwen/*]
)", "test.yaml", *builtin_catalog(), test::all_providers());
  ASSERT_FALSE(all_dead.ok());
  EXPECT_NE(all_dead.error().message.find("excludes every candidate of every route"), std::string::npos)
      << all_dead.error().message;
  // Candidates that are only unavailable here (no API key) could serve once configured: not dead.
  auto no_keys = compile_policy("routes:\n  - {name: r, candidates: [deepseek/*]}\n", "test.yaml", *builtin_catalog(),
                                test::all_providers(false));
  ASSERT_TRUE(no_keys.ok()) << no_keys.error().message;
  EXPECT_TRUE(no_keys.value()->warnings.empty());
  // A reload of a dead policy is refused; the previous one keeps serving.
  PolicyRouter router(p);
  auto s = router.reload(R"(
routes:
  - name: nowhere
    constraints: {allowed_jurisdictions: [US]}
    candidates: [deepseek/*]
)", "test.yaml", test::all_providers());
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(router.policy(), p);
}

}  // namespace
}  // namespace routing
