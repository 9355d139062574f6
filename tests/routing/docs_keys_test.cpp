// Walks the keys policies/README.md documents (top-level keys, route keys, match keys, hard
// constraints, catalog fact keys, presets) and checks each against the compiler: the key is read
// (a wrong-typed value is an error that names it, never "unknown key"), and every documented
// constraint and preset is exercised by a routing test that shows its effect.
#include <gtest/gtest.h>

#include <fstream>
#include <regex>
#include <set>
#include <sstream>

#include "routing/content_match_parse.h"
#include "test_util.h"

namespace routing {
namespace {

std::string read(const std::string& path) {
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// The `code` spans of the first column of the table under `heading` (up to the next heading).
std::set<std::string> table_keys(const std::string& doc, const std::string& heading) {
  std::set<std::string> out;
  auto at = doc.find(heading);
  if (at == std::string::npos) return out;
  auto end = doc.find("\n#", at + heading.size());
  std::istringstream lines(doc.substr(at, end - at));
  std::string line;
  const std::regex code("`([a-z_-]+)");
  while (std::getline(lines, line)) {
    if (line.rfind("| `", 0) != 0) continue;
    const std::string first = line.substr(0, line.find(" |", 2));
    for (std::sregex_iterator it(first.begin(), first.end(), code), e; it != e; ++it) out.insert((*it)[1]);
  }
  return out;
}

// Keys listed in prose after `marker` up to the next blank line ("Fact keys: `type` (new only), ...").
std::set<std::string> prose_keys(const std::string& doc, const std::string& marker) {
  std::set<std::string> out;
  auto at = doc.find(marker);
  if (at == std::string::npos) return out;
  const std::string para = doc.substr(at, doc.find("\n\n", at) - at);
  const std::regex code("`([a-z_]+)[`:]");
  for (std::sregex_iterator it(para.begin(), para.end(), code), e; it != e; ++it) out.insert((*it)[1]);
  return out;
}

std::string compile_error(const std::string& yaml) {
  auto r = compile_policy(yaml, "doc.yaml", *builtin_catalog(), test::all_providers());
  return r.ok() ? std::string() : r.error().message;
}

const char* kRoute = "routes:\n  - {name: r, candidates: [\"*/*\"]}\n";
const char* kBad = "[[1]]";

TEST(DocumentedPolicyKeys, EveryKeyIsReadByTheCompiler) {
  const std::string doc = read(std::string(GW_POLICIES_DIR) + "/README.md");
  ASSERT_FALSE(doc.empty());
  const auto top = table_keys(doc, "## Top-level keys");
  const auto constraints = table_keys(doc, "## Hard constraints");
  const auto facts = prose_keys(doc, "Fact keys:");
  ASSERT_GE(top.size(), 8u);
  ASSERT_GE(constraints.size(), 12u);
  ASSERT_GE(facts.size(), 15u);
  auto read_not_unknown = [&](const std::string& yaml, const std::string& key) {
    const std::string err = compile_error(yaml);
    EXPECT_FALSE(err.empty()) << key << ": a wrong-typed value was accepted\n" << yaml;
    EXPECT_EQ(err.find("unknown"), std::string::npos) << key << " is documented but not known to the compiler: " << err;
  };
  for (const auto& k : top) {
    if (k == "routes") continue;
    read_not_unknown(k + ": " + kBad + "\n" + kRoute, k);
  }
  // Price keys are documented in the same paragraph; they live under `price:`.
  const std::set<std::string> price_keys{"input", "cached_input", "cache_write", "output", "reasoning_output",
                                         "tiers", "schedule", "as_of", "source", "thinking_bills_all_output"};
  for (const auto& k : constraints)
    read_not_unknown(std::string("routes:\n  - name: r\n    candidates: [\"*/*\"]\n    constraints: {") + k + ": " + kBad + "}\n", k);
  for (const auto& k : facts)
    read_not_unknown(std::string("catalog:\n  - {ref: \"deepseek@global/deepseek-flash\", ") +
                         (price_keys.count(k) ? "price: {" + k + ": " + kBad + "}" : k + ": " + kBad) + "}\n" + kRoute,
                     k);
  std::set<std::string> match_keys{"model", "tenant", "path", "headers", "data_classification"};
  const auto content_keys = table_keys(doc, "## Content-aware match conditions");
  EXPECT_EQ(content_keys, (std::set<std::string>(content_match_keys().begin(), content_match_keys().end())));
  match_keys.insert(content_keys.begin(), content_keys.end());
  for (const std::string& k : match_keys)
    read_not_unknown(std::string("routes:\n  - name: r\n    candidates: [\"*/*\"]\n    match: {") + k + ": " + kBad + "}\n", k);
  for (const std::string k : {"name", "match", "candidates", "constraints", "objective", "max_attempts", "affinity",
                              "baseline", "max_share", "spread", "canary"})
    read_not_unknown(std::string("routes:\n  - {name: r, candidates: [\"*/*\"], ") + (k == "name" || k == "candidates" ? "" : k + ": " + kBad) + "}\n" +
                         (k == "name" || k == "candidates" ? "  - {" + k + ": " + kBad + "}\n" : ""),
                     k);
  // A misspelt key is refused with a hint, in every section.
  EXPECT_NE(compile_error(std::string("operator_regon: US\n") + kRoute).find("did you mean 'operator_region'"), std::string::npos);
  EXPECT_NE(compile_error("routes:\n  - {name: r, candidates: [\"*/*\"], constraints: {max_sanction_risk: low}}\n")
                .find("did you mean 'max_sanctions_risk'"),
            std::string::npos);
}

TEST(DocumentedPolicyKeys, EveryConstraintAndPresetHasATestOfItsEffect) {
  const std::string doc = read(std::string(GW_POLICIES_DIR) + "/README.md");
  std::string tests;
  for (const char* f : {"policy_router_test.cpp", "inputs_test.cpp", "property_test.cpp", "pricing_test.cpp"})
    tests += read(std::string(GW_POLICIES_DIR) + "/../tests/routing/" + f);
  ASSERT_FALSE(tests.empty());
  std::set<std::string> keys = table_keys(doc, "## Hard constraints");
  for (const auto& p : table_keys(doc, "### Presets")) keys.insert(p);
  ASSERT_GE(keys.size(), 18u);
  for (const auto& k : keys) EXPECT_NE(tests.find(k), std::string::npos) << "no routing test mentions '" << k << "'";
  for (const auto& [name, bit] : preset_names()) EXPECT_TRUE(keys.count(name)) << "preset '" << name << "' is not documented";
}

}  // namespace
}  // namespace routing
