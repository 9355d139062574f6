#include "routing/catalog.h"

#include <algorithm>

#include "routing/text_util.h"

namespace routing {

std::string Capabilities::missing(const Capabilities& need) const {
  std::string out;
  auto add = [&](bool needed, bool have, const char* name) {
    if (needed && !have) {
      if (!out.empty()) out += ',';
      out += name;
    }
  };
  add(need.tools, tools, "tools");
  add(need.json, json, "json");
  add(need.vision, vision, "vision");
  add(need.reasoning, reasoning, "reasoning");
  add(need.embeddings, embeddings, "embeddings");
  return out;
}

std::string Capabilities::to_string() const {
  // The capabilities an empty set lacks when asked for ours are exactly ours.
  return Capabilities{}.missing(*this);
}

bool Capabilities::set(std::string_view name) {
  if (name == "tools") tools = true;
  else if (name == "json") json = true;
  else if (name == "vision") vision = true;
  else if (name == "reasoning") reasoning = true;
  else if (name == "embeddings") embeddings = true;
  else return false;
  return true;
}

const PriceTier& Pricing::tier_for(int64_t input_tokens) const {
  static const PriceTier kFree{};
  if (tiers.empty()) return kFree;
  for (const auto& t : tiers)
    if (input_tokens <= t.up_to_input_tokens) return t;
  return tiers.back();
}

const char* to_string(SanctionsRisk r) {
  switch (r) {
    case SanctionsRisk::none: return "none";
    case SanctionsRisk::low: return "low";
    case SanctionsRisk::medium: return "medium";
    case SanctionsRisk::high: return "high";
    case SanctionsRisk::blocked: return "blocked";
  }
  return "blocked";
}

std::optional<SanctionsRisk> parse_sanctions_risk(std::string_view s) {
  if (s == "none") return SanctionsRisk::none;
  if (s == "low") return SanctionsRisk::low;
  if (s == "medium") return SanctionsRisk::medium;
  if (s == "high") return SanctionsRisk::high;
  if (s == "blocked") return SanctionsRisk::blocked;
  return std::nullopt;
}

bool RiskFacts::has_flag(std::string_view f) const {
  if (f == "gov_device_bans" && !gov_device_bans.empty()) return true;
  return std::find(flags.begin(), flags.end(), f) != flags.end();
}

SanctionsRisk RiskFacts::sanctions_risk() const {
  if (sanctions_risk_override) return *sanctions_risk_override;
  if (has_flag("ofac_sdn")) return SanctionsRisk::blocked;
  if (has_flag("us_entity_list")) return SanctionsRisk::high;
  if (has_flag("us_entity_list_pending") || has_flag("dod_1260h") || has_flag("ndaa26_1532_covered_ai"))
    return SanctionsRisk::medium;
  if (has_flag("dod_1260h_pending") || has_flag("gov_device_bans")) return SanctionsRisk::low;
  return SanctionsRisk::none;
}

Catalog::Catalog(std::vector<DeploymentFacts> deployments) : deployments_(std::move(deployments)) {
  index_.reserve(deployments_.size());
  for (size_t i = 0; i < deployments_.size(); ++i) index_.emplace(deployments_[i].deployment.id, i);
}

const DeploymentFacts* Catalog::find(std::string_view id) const {
  auto it = index_.find(id);
  return it == index_.end() ? nullptr : &deployments_[it->second];
}

namespace {
const std::vector<std::string> kEu{"AT", "BE", "BG", "HR", "CY", "CZ", "DK", "EE", "FI", "FR", "DE", "GR", "HU", "IE",
                                   "IT", "LV", "LT", "LU", "MT", "NL", "PL", "PT", "RO", "SK", "SI", "ES", "SE"};
// EU adequacy decisions (reference/compliance.md, GDPR Chapter V). The US counts only for
// DPF-certified recipients, so it is deliberately not in the group.
const std::vector<std::string> kAdequate{"AD", "AR", "BR", "CA", "CH", "FO", "GB", "GG", "IL", "IM",
                                         "JE", "JP", "KR", "NZ", "UY"};
}  // namespace

bool is_country_group(std::string_view code) {
  std::string c = to_upper(code);
  return c == "EU" || c == "EEA" || c == "PRC" || c == "GDPR_ADEQUATE" || c == "OFAC_COMPREHENSIVE";
}

std::vector<std::string> expand_country_group(std::string_view code) {
  std::string c = to_upper(code);
  if (c == "EU") return kEu;
  if (c == "EEA") {
    auto v = kEu;
    v.insert(v.end(), {"IS", "LI", "NO"});
    return v;
  }
  if (c == "PRC") return {"CN", "HK", "MO"};
  if (c == "GDPR_ADEQUATE") return kAdequate;
  if (c == "OFAC_COMPREHENSIVE") return {"CU", "IR", "KP"};
  if (c == "SELF") return {"self"};
  if (c == "*") return {"*"};
  return {c};
}

}  // namespace routing
