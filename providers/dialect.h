#pragma once
// Per-vendor differences of the OpenAI-compatible wire format, as data (one table row per vendor).
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace providers {

enum class AuthScheme { bearer, glm_jwt, none };
// How the key goes to an Anthropic-compatible endpoint: the header Claude Code sends for the
// variable the vendor's own instructions name (ANTHROPIC_AUTH_TOKEN -> Bearer, ANTHROPIC_API_KEY ->
// x-api-key). GLM's legacy JWT, when configured, always rides in Authorization.
enum class AnthropicAuth { bearer, x_api_key };

struct RegionEndpoint {
  std::string region;            // region key used in deployment ids ("global", "ap-southeast-1", ...)
  std::string base_url;          // chat path is base_url + "/chat/completions"; "" = operator supplies it (base_urls)
  std::string inference_country; // where requests are processed (ISO code, "global", "global_ex_CN")
  // Anthropic Messages endpoint of the same account and region: POST anthropic_base_url +
  // "/v1/messages". "" = the region has none (requests to it are translated to chat completions).
  std::string anthropic_base_url;
  // The region's OpenAI-compatible base also serves the Responses API (POST base_url + "/responses").
  bool responses = false;
  // A Responses API on a base of its own (same key and auth): POST responses_base_url + "/responses".
  // "" = none besides `responses` above. Like anthropic_base_url, dropped when the region's base URL
  // is overridden (ProviderConfig::responses_base_url(s)).
  std::string responses_base_url;
};

struct Dialect {
  std::string name;                         // "deepseek", "qwen", "kimi", "glm", "minimax", "openai_compatible", "local"
  std::string default_region;
  std::vector<RegionEndpoint> regions;
  std::string default_key_env;              // env var conventionally holding the key
  AuthScheme auth = AuthScheme::bearer;
  bool key_required = true;
  // Where this vendor puts stream usage: Kimi reports it inside choices[0].usage of the last chunk.
  bool usage_in_choice = false;
  // Sends SSE comments (": keep-alive") while the request is queued.
  bool keepalive_comments = false;
  AnthropicAuth anthropic_auth = AnthropicAuth::bearer;
  // OpenAI-shaped embeddings at base_url + "/embeddings": the most input rows one request may carry
  // (larger batches are split). 0 = the vendor has no such API: embeddings are never sent to it.
  size_t embedding_batch_rows = 0;
};

// The built-in table; nullptr for an unknown name.
const Dialect* find_dialect(std::string_view name);
const std::vector<Dialect>& all_dialects();

}  // namespace providers
