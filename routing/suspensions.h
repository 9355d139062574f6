#pragma once
// The kill switch: suspensions of a vendor, a parent company, a jurisdiction or one deployment.
// A suspended deployment is excluded from every plan, whatever the route says, with a reason that
// names who suspended it, since when and why. Suspensions come from two places: the policy file's
// `suspended:` list (read-only at runtime) and the admin API (gateway/state/suspension_store.h);
// the router sees both as one immutable SuspensionList swapped atomically.
//
// Vocabulary (what a selector may name, all lower-case except jurisdictions):
//   vendor       a provider type (deepseek, qwen, kimi, glm, minimax, openai_compatible, local), a
//                configured provider instance name, or a built-in vendor's company short name
//                (alibaba = qwen, moonshot = kimi, zhipu = glm)
//   parent       the parent company of a built-in vendor: deepseek, alibaba, moonshot, zhipu, minimax
//   jurisdiction the company's jurisdiction: an ISO 3166-1 alpha-2 code (CN), a country group
//                (PRC, EU, ...) or `self` (the operator's own local engine)
//   deployment   a deployment id of the policy ("qwen@ap-southeast-1/qwen-plus")
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"
#include "routing/catalog.h"

namespace routing {

enum class SuspensionKind : uint8_t { vendor, parent, jurisdiction, deployment };
const char* to_string(SuspensionKind k);
std::optional<SuspensionKind> parse_suspension_kind(std::string_view s);
const std::vector<std::string>& suspension_kind_names();

struct SuspensionSelector {
  SuspensionKind kind = SuspensionKind::vendor;
  std::string target;  // canonical spelling: lower-case names, upper-case jurisdiction codes

  std::string text() const { return std::string(to_string(kind)) + ":" + target; }
  bool operator==(const SuspensionSelector&) const = default;
};

struct Suspension {
  std::string id;  // runtime: "s-<hex>"; policy file: "policy:<line>"
  SuspensionSelector selector;
  std::string reason;
  std::string since;  // "YYYY-MM-DD" (policy file) or an RFC 3339 UTC time (runtime)
  std::string by;
  bool from_policy = false;
};

// What the exclusion reason says: "suspended since 2026-12-01 by ops: 'Entity List'".
std::string suspension_reason(const Suspension& s);

// The parent company's short name of a built-in vendor (provider type); "" when it has none.
std::string_view parent_of(std::string_view provider_type);
bool suspension_matches(const SuspensionSelector& sel, const DeploymentFacts& d);

// Reads a selector against the deployments a policy knows. Accepts "kind:target" or a bare name,
// which is read as a vendor, then a parent, then a jurisdiction, then a deployment. An unknown kind
// or a target no deployment of `deployments` has is an error (bad_request, code
// "invalid_suspension") whose message names the known spellings.
core::Result<SuspensionSelector> parse_suspension_selector(std::string_view text,
                                                            const std::vector<DeploymentFacts>& deployments);
// The same with the kind given apart ({vendor: zhipu}).
core::Result<SuspensionSelector> make_suspension_selector(SuspensionKind kind, std::string_view target,
                                                           const std::vector<DeploymentFacts>& deployments);

// Every suspension in effect (policy file first, then runtime), immutable once built.
using SuspensionList = std::vector<Suspension>;

// The first suspension of `list` that covers `d`, or nullptr.
const Suspension* find_suspension(const SuspensionList& list, const DeploymentFacts& d);

}  // namespace routing
