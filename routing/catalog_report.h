#pragma once
// The catalog as an operator reads it: every deployment's facts (prices by token kind and tier,
// peak schedule, limits, capabilities, jurisdiction, residency, list flags) with the overrides of a
// policy already applied. Used by `gateway catalog` and `GET /admin/catalog`.
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "routing/catalog.h"

namespace routing {

enum class CatalogFormat { table, json, yaml };
std::optional<CatalogFormat> parse_catalog_format(std::string_view s);

// The API surfaces a deployment's endpoint speaks natively ("openai_chat", "anthropic_messages"):
// known to the providers (their dialects and configured endpoints), not to routing, so the caller
// passes it in.
using SurfacesOf = std::function<std::vector<std::string>(const Deployment&)>;

// {"catalog_date": ..., "deployments": [...]} as JSON or YAML; one line per deployment as a table.
// With `surfaces`, each deployment also lists the API surfaces it speaks.
std::string render_catalog(const std::vector<DeploymentFacts>& deployments, CatalogFormat format,
                           const SurfacesOf& surfaces = {});

}  // namespace routing
