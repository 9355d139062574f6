#include "routing/constraints.h"

#include <algorithm>

#include "routing/text_util.h"

namespace routing {
namespace {

bool contains(const std::vector<std::string>& v, std::string_view s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

std::string join(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& s : v) {
    if (!out.empty()) out += ',';
    out += s;
  }
  return out.empty() ? "unknown" : out;
}

std::string where_text(const std::vector<std::string>& where, const std::vector<std::string>& excluded) {
  if (where.empty()) return "unknown";
  std::string s = join(where);
  if (contains(where, "*") && !excluded.empty()) s += " except " + join(excluded);
  return s;
}

const std::vector<std::string>& prc() {
  static const std::vector<std::string> v{"CN", "HK", "MO"};
  return v;
}
const std::vector<std::string>& mainland() {
  static const std::vector<std::string> v{"CN"};
  return v;
}
const std::vector<std::string>& eea_or_adequate() {
  static const std::vector<std::string> v = [] {
    auto a = expand_country_group("EEA");
    auto b = expand_country_group("GDPR_ADEQUATE");
    a.insert(a.end(), b.begin(), b.end());
    return a;
  }();
  return v;
}
const std::vector<std::string>& us_federal_countries() {
  static const std::vector<std::string> v{"CN", "HK", "MO", "RU", "IR", "KP"};
  return v;
}

bool self_hosted(const DeploymentFacts& d) { return d.risk.jurisdiction == "self"; }

}  // namespace

bool RequestContext::has_tag(std::string_view tag) const { return contains(data_tags, tag); }

bool RequestContext::in_country(std::string_view country) const {
  if (client_country == country) return true;
  for (const auto& r : other_regions)
    if (r.first == country) return true;
  return false;
}

bool RequestContext::has_tag_prefix(std::string_view prefix) const {
  for (const auto& t : data_tags)
    if (t.compare(0, prefix.size(), prefix) == 0) return true;
  return false;
}

bool runs_only_in(const std::vector<std::string>& where, const std::vector<std::string>& allowed) {
  if (where.empty()) return false;
  for (const auto& w : where) {
    if (w == "self") continue;
    if (w == "*" || !contains(allowed, w)) return false;
  }
  return true;
}

bool may_touch(const std::vector<std::string>& where, const std::vector<std::string>& excluded,
               const std::vector<std::string>& denied) {
  if (where.empty()) return true;
  for (const auto& w : where) {
    if (w == "self") continue;
    if (w == "*") {
      for (const auto& d : denied)
        if (!contains(excluded, d)) return true;
      continue;
    }
    if (contains(denied, w)) return true;
  }
  return false;
}

std::string static_exclusion(const DeploymentFacts& d, const Constraints& c, ExclusionKind& kind) {
  const RiskFacts& r = d.risk;
  kind = ExclusionKind::policy;
  if (d.reference_only) return "reference_only: a price reference for savings baselines, never routed to";
  kind = ExclusionKind::unavailable;
  if (!d.configured) return "provider '" + d.deployment.provider + "' not configured";
  if (!d.has_credentials)
    return "no API key" + (d.credential_hint.empty() ? std::string() : ": " + d.credential_hint);

  kind = ExclusionKind::policy;
  const std::string& j = r.jurisdiction;
  if (!c.allowed_jurisdictions.empty() && (j.empty() || !contains(c.allowed_jurisdictions, j)))
    return "jurisdiction " + (j.empty() ? std::string("unknown") : j) + " not in allowed_jurisdictions";
  if (!c.denied_jurisdictions.empty() && (j.empty() || contains(c.denied_jurisdictions, j)))
    return "jurisdiction " + (j.empty() ? std::string("unknown") : j) + " denied";
  if (c.max_sanctions_risk && r.sanctions_risk() > *c.max_sanctions_risk)
    return std::string("sanctions risk ") + to_string(r.sanctions_risk()) + " above max_sanctions_risk " +
           to_string(*c.max_sanctions_risk);
  for (const auto& f : c.denied_flags)
    if (r.has_flag(f)) return "flag " + f + " denied";
  if (!c.required_inference_regions.empty() && !runs_only_in(r.inference_countries, c.required_inference_regions))
    return "inference in " + where_text(r.inference_countries, r.inference_excluded) +
           " outside required_inference_regions";
  if (!c.denied_inference_regions.empty() &&
      may_touch(r.inference_countries, r.inference_excluded, c.denied_inference_regions))
    return "inference in " + where_text(r.inference_countries, r.inference_excluded) + " may touch denied_inference_regions";
  if (!c.required_storage_regions.empty() && !runs_only_in(r.storage_countries, c.required_storage_regions))
    return "storage in " + where_text(r.storage_countries, {}) + " outside required_storage_regions";
  if (!c.denied_storage_regions.empty() && may_touch(r.storage_countries, {}, c.denied_storage_regions))
    return "storage in " + where_text(r.storage_countries, {}) + " may touch denied_storage_regions";
  if (!c.trains_on_customer_data.empty() && !contains(c.trains_on_customer_data, r.trains_on_customer_data))
    return "trains_on_customer_data '" + r.trains_on_customer_data + "' not allowed";
  if (!d.caps.covers(c.required_capabilities))
    return "lacks required capabilities " + d.caps.missing(c.required_capabilities);

  return preset_exclusion(d, c.presets);
}

std::string preset_exclusion(const DeploymentFacts& d, uint32_t presets) {
  const RiskFacts& r = d.risk;
  const std::string& j = r.jurisdiction;
  if (presets & kPresetUsFederal) {
    if (self_hosted(d) || d.is_local()) {
      if (d.developer_country.empty()) return "us-federal: model developer country unknown";
      if (contains(us_federal_countries(), d.developer_country))
        return "us-federal: model developer country " + d.developer_country;
    } else if (j.empty() || contains(us_federal_countries(), j)) {
      return "us-federal: provider parent jurisdiction " + (j.empty() ? std::string("unknown") : j);
    }
    for (const char* f : {"dod_1260h", "dod_1260h_pending", "ndaa26_1532_covered_ai", "ofac_sdn"})
      if (r.has_flag(f)) return std::string("us-federal: ") + f;
  }
  if (presets & kPresetUsRegulatedEnterprise) {
    for (const char* f : {"us_entity_list", "ofac_sdn"})
      if (r.has_flag(f)) return std::string("us-regulated-enterprise: ") + f;
    if (may_touch(r.inference_countries, r.inference_excluded, prc()))
      return "us-regulated-enterprise: inference in " + where_text(r.inference_countries, r.inference_excluded) +
             " may touch CN/HK/MO";
    if (may_touch(r.storage_countries, {}, prc()))
      return "us-regulated-enterprise: storage in " + where_text(r.storage_countries, {}) + " may touch CN/HK/MO";
    if (r.trains_on_customer_data != "no" && r.trains_on_customer_data != "opt_in")
      return "us-regulated-enterprise: trains_on_customer_data '" + r.trains_on_customer_data + "'";
  }
  if (presets & kPresetEuGdpr) {
    // Declared countries decide for every deployment, self-hosted ones included: a box the
    // operator runs in CN is a transfer to CN. The local engine declares "self".
    if (may_touch(r.inference_countries, r.inference_excluded, mainland()))
      return "eu-gdpr: inference in " + where_text(r.inference_countries, r.inference_excluded) + " may touch CN";
    if (may_touch(r.storage_countries, {}, mainland()))
      return "eu-gdpr: storage in " + where_text(r.storage_countries, {}) + " may touch CN";
    if (r.trains_on_customer_data != "no")
      return "eu-gdpr: trains_on_customer_data '" + r.trains_on_customer_data + "'";
  }
  if (presets & kPresetPrcModelsLocalOnly) {
    if (!self_hosted(d) && !d.is_local() && (j.empty() || contains(prc(), j)))
      return "prc-models-local-only: provider jurisdiction " + (j.empty() ? std::string("unknown") : j);
  }
  return {};
}

std::string request_exclusion(const DeploymentFacts& d, const Constraints& c, const RequestContext& q) {
  return request_exclusion(d, c.presets, q);
}

std::string request_exclusion(const DeploymentFacts& d, uint32_t presets, const RequestContext& q) {
  const RiskFacts& r = d.risk;
  const bool self = self_hosted(d) || d.is_local();
  if (presets & kPresetUsRegulatedEnterprise) {
    if ((q.has_tag_prefix("us_dsp:") || q.has_tag("us_gov_related")) &&
        (r.doj_dsp_covered_person == "yes" || r.doj_dsp_covered_person == "likely"))
      return "us-regulated-enterprise: DSP/government data to a covered person (" + r.doj_dsp_covered_person + ")";
    if (q.has_tag("ear_controlled") && !self) return "us-regulated-enterprise: ear_controlled data to a foreign endpoint";
  }
  // Declared countries decide for self-hosted deployments too ("self" = the operator's own site
  // counts as inside; unknown fails).
  if ((presets & kPresetEuGdpr) && q.has_tag("eu_personal")) {
    if (!runs_only_in(r.inference_countries, eea_or_adequate()))
      return "eu-gdpr: eu_personal data, inference in " + where_text(r.inference_countries, r.inference_excluded) +
             " not EEA/adequate";
    if (!runs_only_in(r.storage_countries, eea_or_adequate()))
      return "eu-gdpr: eu_personal data, storage in " + where_text(r.storage_countries, {}) + " not EEA/adequate";
  }
  if ((presets & kPresetChinaDomestic) && q.in_country("CN")) {
    if (!runs_only_in(r.inference_countries, mainland()) || !runs_only_in(r.storage_countries, mainland()))
      return "china-domestic: client in CN, inference/storage not only in CN";
    if (!r.cac_genai_filed) return "china-domestic: client in CN, service not CAC-filed";
  }
  return {};
}

std::string origin_block_reason(const RequestContext& r, std::string_view operator_region) {
  static const std::vector<std::string> countries{"CU", "IR", "KP"};
  static const std::vector<std::string> subdivisions{"UA-43", "UA-40", "UA-14", "UA-09"};
  static const std::vector<std::string> eu_extra{"UA-23", "UA-65"};
  const bool eu = operator_region == "EU" || operator_region == "UK";
  auto check = [&](const std::string& country, const std::string& subdivision) -> std::string {
    if (contains(countries, country))
      return "client region " + country + " is under comprehensive sanctions (sanctioned-origin-block)";
    if (!subdivision.empty() && (contains(subdivisions, subdivision) || (eu && contains(eu_extra, subdivision))))
      return "client region " + subdivision + " is a sanctioned territory (sanctioned-origin-block)";
    return {};
  };
  if (auto why = check(r.client_country, r.client_subdivision); !why.empty()) return why;
  for (const auto& [country, subdivision] : r.other_regions)
    if (auto why = check(country, subdivision); !why.empty()) return why;
  return {};
}

}  // namespace routing
