#include "gateway/api/model_list.h"

#include <vector>

#include "core/json_writer.h"

namespace gateway {

std::span<const SurfacePath> surface_paths() {
  static const SurfacePath kPaths[] = {
      {"/v1/chat/completions", "chat.completions"},
      {"/v1/responses", "responses"},
      {"/v1/messages", "messages"},
      {"/v1/embeddings", "embeddings", true},
  };
  return kPaths;
}

namespace {

std::string_view surface_of(const std::string& path) {
  for (const auto& s : surface_paths())
    if (s.path == path) return s.surface;
  return path;
}

void append_model(std::string& s, const routing::ModelListing& m, int64_t created) {
  s += "{\"id\":";
  core::append_json_string(s, m.name);
  s += ",\"object\":\"model\",\"created\":" + std::to_string(created) + ",\"owned_by\":\"llm-gateway\",\"surfaces\":[";
  for (size_t i = 0; i < m.paths.size(); ++i) {
    if (i) s.push_back(',');
    core::append_json_string(s, surface_of(m.paths[i]));
  }
  s += "],\"available\":";
  s += m.paths.empty() ? "false" : "true";
  if (m.paths.empty()) {
    s += ",\"unavailable_reason\":";
    core::append_json_string(s, m.unavailable);
  }
  s.push_back('}');
}

}  // namespace

std::string model_list_json(const routing::Router& router, const routing::RequestFeatures& base,
                            const std::function<bool(std::string_view)>& allowed, bool all, int64_t created) {
  std::vector<routing::ListingPath> paths;
  for (const auto& s : surface_paths()) paths.push_back({s.path, s.embeddings});
  std::string s = "{\"object\":\"list\",\"data\":[";
  bool first = true;
  for (const auto& m : router.model_listing(base, paths)) {
    if (!allowed(m.name) || (m.paths.empty() && !all)) continue;
    if (!first) s.push_back(',');
    first = false;
    append_model(s, m, created);
  }
  s += "]}";
  return s;
}

}  // namespace gateway
