#pragma once
// Hard constraints: static checks (decided when a policy compiles) and request-dependent checks
// (presets that look at the client's region and data tags). Each returns the reason for an
// exclusion, or "" when the deployment passes. Semantics: policies/README.md, reference/compliance.md.
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "routing/catalog.h"
#include "routing/policy.h"

namespace routing {

// The request as constraints see it, after tenant and policy defaults.
struct RequestContext {
  std::string client_country;      // "DE"; empty if unknown
  std::string client_subdivision;  // "UA-43"; empty if none
  std::string data_classification;
  std::vector<std::string> data_tags;  // request tags + tenant tags + the classification itself
  // Further regions whose rules apply too ({country, subdivision}): a header region that differs
  // from the tenant's own adds its restrictions, it never lifts the tenant's.
  std::vector<std::pair<std::string, std::string>> other_regions;

  bool has_tag(std::string_view tag) const;
  bool in_country(std::string_view country) const;  // the client's or any other region's country
  bool has_tag_prefix(std::string_view prefix) const;
};

// Location helpers over RiskFacts country lists ("*", "self", empty = unknown).
// True only if every location is known and inside `allowed` ("self" counts as inside: the
// operator's own site).
bool runs_only_in(const std::vector<std::string>& where, const std::vector<std::string>& allowed);
// True if any location may be in `denied` (unknown counts as "may": fail closed).
bool may_touch(const std::vector<std::string>& where, const std::vector<std::string>& excluded,
               const std::vector<std::string>& denied);

std::string static_exclusion(const DeploymentFacts& d, const Constraints& c, ExclusionKind& kind);
// The static checks of `presets` alone (also run per request for a tenant's own presets).
std::string preset_exclusion(const DeploymentFacts& d, uint32_t presets);
std::string request_exclusion(const DeploymentFacts& d, const Constraints& c, const RequestContext& r);
std::string request_exclusion(const DeploymentFacts& d, uint32_t presets, const RequestContext& r);
// sanctioned-origin-block: reason to refuse the whole request, or "".
std::string origin_block_reason(const RequestContext& r, std::string_view operator_region);

}  // namespace routing
