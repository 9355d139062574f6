#pragma once
// Reading and checking a policy's diversification keys (`max_share`, `spread`, `canary` in a route
// or in `defaults`), for the policy compiler. Errors and warnings go through the compiler's own
// diagnostics, so they read file:line:column like every other policy finding.
#include <yaml-cpp/yaml.h>

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "routing/diversify.h"
#include "routing/policy.h"

namespace routing {

struct PolicyDiagnostics {
  std::function<void(const YAML::Node&, const std::string&)> error;
  std::function<void(const YAML::Node&, const std::string&)> warn;
};

// Helpers for key parsers that report through PolicyDiagnostics. Keys of a mapping outside
// `allowed` are errors ("unknown <what> key 'x' (did you mean 'y'?)"); false if `n` is no mapping.
bool keys_known(const YAML::Node& n, const std::string& what, const std::vector<std::string>& allowed,
                const PolicyDiagnostics& diag);
// A number in [lo, hi] (or (lo, hi] when `open_low`), else an error naming the range.
std::optional<double> fraction(const YAML::Node& n, const std::string& what, double lo, double hi, bool open_low,
                               const PolicyDiagnostics& diag);

// The keys this file reads, for the compiler's lists of allowed route and defaults keys.
const std::vector<std::string>& diversify_keys();

// Reads the keys present in `n` (a route or the defaults mapping) into `s`; absent keys keep what
// `s` holds, so a route inherits the defaults key by key, and `none` switches a key off.
// `deployments`: every deployment of the policy, to check the names a per-key cap uses.
void parse_diversify(const YAML::Node& n, const std::vector<DeploymentFacts>& deployments, DiversifySettings& s,
                     const PolicyDiagnostics& diag);

// Once the route's candidates are known: `spread` on an `ordered` objective is an error (positions
// are never within a fraction of each other); a cap no mix of the candidates can satisfy and a
// canary with no fall-back (or one taking a large share) are warnings.
void check_diversify(const Route& route, const std::vector<DeploymentFacts>& deployments, const YAML::Node& n,
                     const PolicyDiagnostics& diag);

}  // namespace routing
