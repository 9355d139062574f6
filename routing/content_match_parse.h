#pragma once
// Reading a route's content-aware match keys (`script`, `code`, `input_tokens`, `tools`,
// `reasoning_effort`) for the policy compiler; findings read file:line:column like the others.
#include <yaml-cpp/yaml.h>

#include <string>
#include <vector>

#include "routing/content_match.h"
#include "routing/diversify_parse.h"

namespace routing {

// The `match` keys this file reads, for the compiler's list of allowed match keys.
const std::vector<std::string>& content_match_keys();

// Reads the keys of `match` (a route's match mapping) that content_match_keys() lists into `m`.
void parse_content_match(const YAML::Node& match, ContentMatch& m, const PolicyDiagnostics& diag);

}  // namespace routing
