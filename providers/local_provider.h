#pragma once
// Provider "local": the embedded MoE engine behind the same interface as the remote vendors, so the
// router treats it like any deployment (its queue depth and speed are live figures too).
#include <memory>
#include <string>

#include "core/result.h"
#include "providers/provider.h"

namespace local_backend {
class Engine;
}

namespace providers {

struct LocalProviderConfig {
  std::string name = "local";
  std::string model_path;
  std::string model_name = "local";  // the model id deployments use ("local/<model_name>")
  std::string region = "self";
  int threads = 0;
  int max_queue = 64;
  int max_context = 4096;
  int default_max_tokens = 512;
  std::string kv_type = "f16";  // KV cache element type: f16 | q8_0 | f32
  int prefix_cache_mb = 256;    // prompt prefix cache bound (MiB); 0 = off
};

core::Result<std::unique_ptr<Provider>> make_local_provider(const LocalProviderConfig& config);
// The same provider over an engine already made (config's engine fields are then not read): tests
// wrap the real engine to hold a phase open.
std::unique_ptr<Provider> make_local_provider(const LocalProviderConfig& config, std::unique_ptr<local_backend::Engine> engine);

// A provider that exists in configuration but cannot serve (e.g. its model file is missing); every
// attempt fails with `reason`, and the router excludes it with that reason.
std::unique_ptr<Provider> make_unavailable_local_provider(const LocalProviderConfig& config, std::string reason);

}  // namespace providers
