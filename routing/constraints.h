#pragma once
// Hard constraints: static checks (decided when a policy compiles) and request-dependent checks
// (presets that look at the client's region and data tags). Each returns the reason for an
// exclusion, or "" when the deployment passes. Semantics: policies/README.md, reference/compliance.md.
#include <string>
#include <string_view>
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

  bool has_tag(std::string_view tag) const;
  bool has_tag_prefix(std::string_view prefix) const;
};

// Splits "UA-43" into country "UA" and subdivision "UA-43"; upper-cases.
void parse_client_region(std::string_view region, std::string& country, std::string& subdivision);

// Location helpers over RiskFacts country lists ("*", "self", empty = unknown).
// True only if every location is known and inside `allowed` ("self" counts as inside: the
// operator's own site).
bool runs_only_in(const std::vector<std::string>& where, const std::vector<std::string>& allowed);
// True if any location may be in `denied` (unknown counts as "may": fail closed).
bool may_touch(const std::vector<std::string>& where, const std::vector<std::string>& excluded,
               const std::vector<std::string>& denied);

std::string static_exclusion(const DeploymentFacts& d, const Constraints& c, ExclusionKind& kind);
std::string request_exclusion(const DeploymentFacts& d, const Constraints& c, const RequestContext& r);
// sanctioned-origin-block: reason to refuse the whole request, or "".
std::string origin_block_reason(const RequestContext& r, std::string_view operator_region);

}  // namespace routing
