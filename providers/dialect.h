#pragma once
// Per-vendor differences of the OpenAI-compatible wire format, as data (one table row per vendor).
#include <string>
#include <string_view>
#include <vector>

namespace providers {

enum class AuthScheme { bearer, glm_jwt, none };

struct RegionEndpoint {
  std::string region;            // region key used in deployment ids ("global", "ap-southeast-1", ...)
  std::string base_url;          // chat path is base_url + "/chat/completions"; "" = operator supplies it (base_urls)
  std::string inference_country; // where requests are processed (ISO code, "global", "global_ex_CN")
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
};

// The built-in table; nullptr for an unknown name.
const Dialect* find_dialect(std::string_view name);
const std::vector<Dialect>& all_dialects();

}  // namespace providers
