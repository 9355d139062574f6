#pragma once
// GET /v1/models in OpenAI's list shape, with two members SDKs ignore: `surfaces`, the gateway APIs
// that serve the model for this caller (chat.completions, responses, messages, embeddings), and
// `available`.
// A model that no configured deployment can serve (no key, provider not configured, suspended, or
// refused by the caller's policy) is left out unless the caller asks for ?all=true; then it is
// listed with "available": false and `unavailable_reason` (e.g. the variable that enables it).
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>

#include "routing/router.h"

namespace gateway {

// The API paths a model may be served on, as routes match them, and their names in `surfaces`.
struct SurfacePath {
  std::string path;
  std::string_view surface;
  bool embeddings = false;
};
std::span<const SurfacePath> surface_paths();

// The body of GET /v1/models for a caller whose requests look like `base` (tenant, region, tags).
// `allowed`: the tenant's model allow-list (names it refuses are never listed).
std::string model_list_json(const routing::Router& router, const routing::RequestFeatures& base,
                            const std::function<bool(std::string_view)>& allowed, bool all, int64_t created);

}  // namespace gateway
