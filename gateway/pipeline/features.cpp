#include "gateway/pipeline/features.h"

#include <string>

namespace gateway {
namespace {

// FNV-1a over the leading prompt bytes: requests sharing a long prefix share the hash.
constexpr size_t kPrefixBytes = 4096;
constexpr size_t kMinPrefixBytes = 1024;  // shorter prompts gain nothing from provider caches

void prefix_of(const core::ChatRequest& req, routing::RequestFeatures& f) {
  // A short prompt is not hashed at all (hashing is a byte at a time).
  size_t total = 0;
  for (const auto& m : req.messages) total += m.role.size() + 1 + m.content.size();
  if (total < kMinPrefixBytes) return;
  uint64_t h = 1469598103934665603ull;
  size_t n = 0;
  for (const auto& m : req.messages) {
    for (std::string_view part : {std::string_view(m.role), std::string_view("\n"), std::string_view(m.content)}) {
      for (char c : part) {
        if (n == kPrefixBytes) break;
        h = (h ^ static_cast<unsigned char>(c)) * 1099511628211ull;
        ++n;
      }
    }
    if (n == kPrefixBytes) break;
  }
  if (n < kMinPrefixBytes) return;
  f.prefix_hash = h ? h : 1;
  f.prefix_tokens = static_cast<int64_t>(n / 4);
}

void add_data_tags(std::string_view v, std::vector<std::string>& tags) {
  size_t start = 0;
  while (start <= v.size()) {
    size_t comma = v.find(',', start);
    std::string tag(v.substr(start, comma == std::string_view::npos ? std::string_view::npos : comma - start));
    while (!tag.empty() && tag.front() == ' ') tag.erase(tag.begin());
    while (!tag.empty() && tag.back() == ' ') tag.pop_back();
    if (!tag.empty()) tags.push_back(tag);
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
}

}  // namespace

routing::RequestFeatures features_of(const core::ChatRequest& req, const RequestHeaders& headers, bool trust_headers) {
  routing::RequestFeatures f;
  f.model = req.model;
  f.est_input_tokens = core::estimate_prompt_tokens(req);
  f.max_tokens = req.max_tokens;
  f.needs_tools = req.has_tools;
  f.needs_json = req.wants_json;
  f.needs_vision = req.has_images;
  f.needs_reasoning = req.wants_reasoning;
  f.stream = req.stream;
  f.reasoning_effort = req.reasoning_effort;
  f.messages = req.messages;
  if (req.embedding) {
    f.needs_embeddings = true;
    f.est_input_tokens = req.embedding->est_tokens;
  }
  prefix_of(req, f);
  f.headers = headers;
  if (!trust_headers) return f;
  for (const auto& [k, v] : f.headers) {
    if (k == "x-gateway-tenant") f.tenant = v;
    else if (k == "x-gateway-client-region") f.client_region = v;
    else if (k == "x-gateway-data-classification") f.data_classification = v;
    else if (k == "x-gateway-data-tags") add_data_tags(v, f.data_tags);
  }
  return f;
}

}  // namespace gateway
