#pragma once
// The one adapter for every OpenAI-compatible vendor; per-vendor differences come from the Dialect table.
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "core/result.h"
#include "providers/dialect.h"
#include "providers/provider.h"

namespace providers {

struct ProviderConfig {
  std::string name;                           // instance name ("deepseek", "qwen-us", "my-vllm")
  std::string type;                           // dialect name; defaults to name
  std::map<std::string, std::string> base_urls;  // region -> base URL override (tests, egress proxies)
  std::string base_url;                       // openai_compatible: the single base URL
  // Anthropic Messages endpoints (POST <url>/v1/messages), like base_url / base_urls: for the
  // default region, and per region. A region whose OpenAI URL is overridden (base_url, base_urls)
  // loses the dialect's built-in Anthropic URL unless one is given here: an egress proxy or a test
  // fake must see every request, and the key must not go to the vendor's public host around it.
  std::string anthropic_base_url;
  std::map<std::string, std::string> anthropic_base_urls;
  // Whether every region's base URL also serves the Responses API (POST <base>/responses): unset =
  // the dialect's built-in fact per region (Qwen, DeepSeek); true turns it on (Kimi's [S] listing,
  // a self-hosted server that has it), false off (built-in Responses bases included).
  std::optional<bool> responses;
  // A Responses API on a base of its own (POST <url>/responses, same key), like anthropic_base_url(s):
  // for the default region, and per region. A region whose OpenAI URL is overridden loses the
  // dialect's built-in one (GLM intl-coding) unless one is given here. Refused with responses: false.
  std::string responses_base_url;
  std::map<std::string, std::string> responses_base_urls;
  std::string default_region;                 // overrides the dialect's default
  std::string api_key_env;                    // env var holding the key
  std::string api_key_file;                   // or a file holding the key (trailing newline trimmed)
  std::string auth;                           // "bearer" (default) | "jwt" (GLM legacy) | "none"
  std::map<std::string, std::string> extra_headers;
};

core::Result<std::unique_ptr<Provider>> make_openai_compatible(const ProviderConfig& config);
// The same checks without building anything or reading credentials: for configuration parsing.
core::Status check_provider_config(const ProviderConfig& config);
// Region -> the base URL ("scheme://host:port/path") its Responses API is relayed to, for the
// regions that speak it: the endpoint choice, without building anything or reading credentials.
core::Result<std::map<std::string, std::string>> responses_bases(const ProviderConfig& config);

}  // namespace providers
