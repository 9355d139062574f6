// The built-in catalog as data (routing/catalog/builtin.yaml): the embedded bytes are the file's,
// it compiles with the policy compiler's checks, every fact is tagged, the move from C++ tables
// changed no fact, and a broken edit is refused with a message that points at it.
#include <gtest/gtest.h>

#include <fstream>
#include <set>
#include <sstream>
#include <string>

#include "routing/catalog.h"
#include "routing/catalog_report.h"
#include "routing/policy.h"
#include "test_util.h"

namespace routing {
namespace {

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// The JSON with every deployment's trailing "sources" object cut out (it holds no nested object).
std::string without_sources(std::string json) {
  const std::string key = ",\"sources\":{";
  for (size_t at; (at = json.find(key)) != std::string::npos;) {
    const size_t end = json.find('}', at + key.size());
    if (end == std::string::npos) break;
    json.erase(at, end + 1 - at);
  }
  return json;
}

std::string compile_error(const std::string& yaml) {
  auto r = compile_builtin_catalog(yaml, "t.yaml");
  return r.ok() ? std::string("(compiled)") : r.error().message;
}

// A minimal valid file; tests break one thing at a time.
const char* kMinimal = R"(catalog_date: "2026-11-23"
providers:
  - provider: deepseek
    source: secondary
    company: "Example Co"
    jurisdiction: CN
    regions:
      - region: global
        source: verified
        inference_countries: [CN]
    models:
      - model: m1
        source: verified
        context_window: 1000
        price: {input: 1.0, output: 2.0}
)";

TEST(BuiltinCatalogData, EmbeddedBytesAreTheFile) {
  const std::string file = read_file(std::string(GW_ROUTING_DIR) + "/catalog/builtin.yaml");
  ASSERT_FALSE(file.empty());
  EXPECT_EQ(builtin_catalog_text(), file);
}

TEST(BuiltinCatalogData, CompilesWithoutErrors) {
  auto r = compile_builtin_catalog(builtin_catalog_text(), "builtin.yaml");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r.value().catalog_date, "2026-11-23");
  EXPECT_EQ(builtin_catalog_date(), "2026-11-23");
  EXPECT_EQ(r.value().deployments.size(), builtin_catalog()->size());
}

// Output of `gateway catalog --format json` when the catalog was C++ tables (commit 752360d),
// checked in: the data file must reproduce it byte for byte, the new source tags aside. A deliberate
// fact edit in builtin.yaml fails this test; regenerate the file in the same commit
// (`gateway catalog --format json` with the sources cut), so the diff shows exactly what changed.
TEST(BuiltinCatalogData, SameFactsAsTheTablesItReplaced) {
  const std::string before = read_file(std::string(GW_TESTS_DIR) + "/routing/data/catalog_before_yaml.json");
  ASSERT_FALSE(before.empty());
  const std::string now = render_catalog(builtin_catalog()->deployments(), CatalogFormat::json);
  EXPECT_NE(now, before);  // the tags are there
  EXPECT_EQ(without_sources(now), before);
}

TEST(BuiltinCatalogData, EveryFactHasASourceTag) {
  const std::set<std::string> tags{"verified", "secondary", "unverified"};
  for (const auto& d : builtin_catalog()->deployments()) {
    for (const char* fact : {"price", "context_window", "max_output", "capabilities", "company", "jurisdiction",
                             "contracting_country", "trains_on_customer_data", "doj_dsp_covered_person",
                             "cac_genai_filed", "flags", "latency_prior"})
      EXPECT_TRUE(d.sources.count(fact)) << d.deployment.id << " " << fact;
    for (const auto& [fact, tag] : d.sources) EXPECT_TRUE(tags.count(tag)) << d.deployment.id << " " << fact << "=" << tag;
  }
  const auto* flash = builtin_catalog()->find("deepseek@global/deepseek-flash");
  ASSERT_NE(flash, nullptr);
  EXPECT_EQ(flash->sources.at("price"), "verified");
  EXPECT_EQ(flash->sources.at("price.schedule"), "verified");
  EXPECT_EQ(flash->sources.at("flags"), "secondary");
  const auto* k31 = builtin_catalog()->find("kimi@intl/kimi-k3.1-pro");
  ASSERT_NE(k31, nullptr);
  EXPECT_EQ(k31->sources.at("price"), "unverified");
  EXPECT_EQ(k31->sources.at("context_window"), "secondary");
  // Unknown residency is no fact, so it carries no tag.
  EXPECT_FALSE(k31->sources.count("inference_countries"));
  const auto* glm = builtin_catalog()->find("glm@intl/glm-5.2");
  ASSERT_NE(glm, nullptr);
  EXPECT_EQ(glm->sources.at("flags"), "verified");  // BIS Entity List, 90 FR 4617
}

// Each hostile edit is refused, and the message names the mistake.
TEST(BuiltinCatalogData, BrokenFilesAreRefused) {
  auto edit = [](std::string from, std::string to) {
    std::string s = kMinimal;
    const size_t at = s.find(from);
    EXPECT_NE(at, std::string::npos) << from;
    return s.replace(at, from.size(), to);
  };
  // The minimal file lacks max_output: the whole-catalog checks catch it.
  EXPECT_NE(compile_error(kMinimal).find("needs max_output"), std::string::npos);
  const std::string ok = edit("context_window: 1000", "context_window: 1000\n        max_output: 500");
  ASSERT_EQ(compile_error(ok), "(compiled)");
  auto in_ok = [&](std::string from, std::string to) {
    const size_t at = ok.find(from);
    EXPECT_NE(at, std::string::npos) << from;
    std::string s = ok;
    return compile_error(s.replace(at, from.size(), to));
  };
  auto has = [](const std::string& msg, const std::string& want) {
    return msg.find(want) != std::string::npos ? ::testing::AssertionSuccess()
                                               : ::testing::AssertionFailure() << "'" << want << "' not in: " << msg;
  };
  EXPECT_TRUE(has(in_ok("        source: verified\n        context_window", "        context_window"),
                  "built-in fact 'context_window' needs a source tag"));
  EXPECT_TRUE(has(in_ok("source: secondary", "source: rumour"), "source 'rumour' is not one of verified"));
  EXPECT_TRUE(has(in_ok("    source: secondary\n", "    source: secondary\n    sources: {max_output: verified}\n"),
                  "sources: 'max_output' is not a fact this entry sets"));
  EXPECT_TRUE(has(in_ok("context_window: 1000", "context_windw: 1000"), "unknown model entry key 'context_windw'"));
  EXPECT_TRUE(has(in_ok("context_window: 1000", "context_window: many"), "context_window must be an integer"));
  EXPECT_TRUE(has(in_ok("input: 1.0", "input: -1"), "price.input"));
  EXPECT_TRUE(has(in_ok("provider: deepseek", "provider: local"), "not a built-in provider type"));
  EXPECT_TRUE(has(in_ok("provider: deepseek", "provider: deepsek"), "did you mean 'deepseek'"));
  EXPECT_TRUE(has(in_ok("model: m1", "model: m1/x"), "must be a plain name"));
  EXPECT_TRUE(has(in_ok("model: m1", "model: \"m*\""), "must be a plain name"));
  EXPECT_TRUE(has(in_ok("catalog_date: \"2026-11-23\"", "catalog_date: \"2026-13-01\""), "catalog_date must be a YYYY-MM-DD"));
  EXPECT_TRUE(has(in_ok("catalog_date: \"2026-11-23\"\n", ""), "needs catalog_date"));
  EXPECT_TRUE(has(in_ok("jurisdiction: CN", "jurisdiction: China"), "jurisdiction must be an ISO 3166-1"));
  EXPECT_TRUE(has(in_ok("inference_countries: [CN]", "inference_countries: [CHN]"), "not an ISO 3166-1 alpha-2"));
  EXPECT_TRUE(has(in_ok("        price: {", "        alias_of: nothing\n        price: {"), "alias_of 'nothing' is no model"));
  EXPECT_TRUE(has(in_ok("    models:\n", "    models:\n      - {model: m1, source: verified, context_window: 9, max_output: 9, price: {input: 1, output: 1}}\n"),
                  "model 'm1' is listed twice"));
  EXPECT_TRUE(has(compile_error(""), "empty catalog"));
  EXPECT_TRUE(has(compile_error("[1, 2]"), "built-in catalog must be a mapping"));
  EXPECT_TRUE(has(compile_error("providers: [\n"), "YAML syntax error"));
  EXPECT_TRUE(has(compile_error(std::string("catalog_date: \"2026-11-23\"\nproviders: []\n")), "needs providers"));
  EXPECT_TRUE(has(compile_error(std::string("catalog_date: \"2026-11-23\"\0\x01\xff", 31)), "t.yaml"));
  EXPECT_TRUE(has(in_ok("    regions:\n      - region: global\n        source: verified\n        inference_countries: [CN]\n",
                        "    regions: []\n"),
                  "needs regions"));
}

// An alias must point at a model, not at another alias: one hop, so explain names the real model.
TEST(BuiltinCatalogData, AliasOfAnAliasIsRefused) {
  std::string s = kMinimal;
  s.replace(s.find("context_window: 1000"), 20, "context_window: 1000\n        max_output: 500");
  s += "      - {model: m2, alias_of: m1, source: verified, context_window: 9, max_output: 9, price: {input: 1, output: 1}}\n"
       "      - {model: m3, alias_of: m2, source: verified, context_window: 9, max_output: 9, price: {input: 1, output: 1}}\n";
  EXPECT_NE(compile_error(s).find("m3: alias_of 'm2' is itself an alias"), std::string::npos) << compile_error(s);
}

// A policy's override carries its own tag, or "policy"; the facts it leaves alone keep theirs.
TEST(BuiltinCatalogData, PolicyOverridesAreTagged) {
  auto p = test::must_compile(R"(
catalog:
  - ref: deepseek@global/deepseek-flash
    price: {input: 0.31, cached_input: 0.006, output: 1.2}
  - ref: deepseek@global/deepseek-v4-pro
    source: verified
    context_window: 500000
  - ref: qwen@eu-central-1/*
    inference_countries: [DE, FR, DE]
routes:
  - name: r
    candidates: [deepseek/*]
)");
  const auto* flash = p->find("deepseek@global/deepseek-flash");
  ASSERT_NE(flash, nullptr);
  EXPECT_EQ(flash->sources.at("price"), "policy");
  EXPECT_EQ(flash->sources.at("price.schedule"), "verified");
  EXPECT_EQ(flash->sources.at("context_window"), "verified");
  EXPECT_EQ(p->find("deepseek@global/deepseek-v4-pro")->sources.at("context_window"), "verified");
  // Written order kept, each country once.
  EXPECT_EQ(p->find("qwen@eu-central-1/qwen-flash")->risk.inference_countries, (std::vector<std::string>{"DE", "FR"}));
}

// A policy's alias_of is held to the built-in file's rule: a real model, one hop.
TEST(BuiltinCatalogData, PolicyAliasesAreChecked) {
  const std::string routes = "routes:\n  - {name: r, candidates: [deepseek/*]}\n";
  auto bad = compile_policy("catalog:\n  - {ref: deepseek@global/deepseek-v4-pro, alias_of: nope}\n" + routes, "t.yaml",
                            *builtin_catalog(), test::all_providers());
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message.find("alias_of 'nope' is no model of deepseek@global"), std::string::npos) << bad.error().message;
  auto chain = compile_policy("catalog:\n  - {ref: deepseek@global/deepseek-v4-pro, alias_of: deepseek-v4-flash}\n" + routes,
                              "t.yaml", *builtin_catalog(), test::all_providers());
  ASSERT_FALSE(chain.ok());
  EXPECT_NE(chain.error().message.find("is itself an alias"), std::string::npos) << chain.error().message;
  // Removing a model leaves its legacy IDs pointing nowhere: said, with the two ways out.
  auto removed = compile_policy("catalog:\n  - {ref: deepseek@global/deepseek-flash, remove: true}\n" + routes, "t.yaml",
                                *builtin_catalog(), test::all_providers());
  ASSERT_FALSE(removed.ok());
  EXPECT_NE(removed.error().message.find("deepseek@global/deepseek-v4-flash: alias_of 'deepseek-flash' is no model"),
            std::string::npos) << removed.error().message;
  test::must_compile("catalog:\n  - {ref: deepseek@global/deepseek-flash, remove: true}\n"
                     "  - {ref: \"deepseek@global/deepseek-v4-flash*\", remove: true}\n" + routes);
  auto kept = test::must_compile("catalog:\n  - {ref: deepseek@global/deepseek-flash, remove: true}\n"
                                 "  - {ref: \"deepseek@global/deepseek-v4-flash*\", alias_of: \"\"}\n" + routes);
  EXPECT_TRUE(kept->find("deepseek@global/deepseek-v4-flash")->alias_of.empty());
  auto good = test::must_compile("catalog:\n  - {ref: deepseek@global/deepseek-v4-pro, alias_of: deepseek-flash}\n" + routes);
  EXPECT_EQ(good->find("deepseek@global/deepseek-v4-pro")->alias_of, "deepseek-flash");
}

// A model a policy adds to a built-in provider inherits the region's facts, not the last model's
// alias or model tags.
TEST(BuiltinCatalogData, NewModelOnABuiltinProviderIsNoAlias) {
  auto p = test::must_compile(R"(
catalog:
  - ref: deepseek@global/deepseek-next
    context_window: 100000
    price: {input: 1, output: 2}
routes:
  - name: r
    candidates: [deepseek/*]
)");
  const auto* f = p->find("deepseek@global/deepseek-next");
  ASSERT_NE(f, nullptr);
  EXPECT_TRUE(f->alias_of.empty());
  EXPECT_EQ(f->sources.at("price"), "policy");
  EXPECT_EQ(f->sources.at("flags"), "secondary");
  EXPECT_FALSE(f->sources.count("capabilities"));
}

}  // namespace
}  // namespace routing
