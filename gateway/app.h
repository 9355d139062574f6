#pragma once
// Process-wide state shared by every worker: configuration, providers, the current routing
// snapshot (swapped atomically), metrics and the access log.
#include <atomic>
#include <map>
#include <memory>
#include <string>

#include "gateway/access_log.h"
#include "gateway/config.h"
#include "gateway/metrics.h"
#include "providers/provider.h"
#include "routing/policy.h"
#include "routing/policy_router.h"
#include "routing/router.h"

namespace gateway {

struct App {
  GatewayConfig config;
  std::map<std::string, std::unique_ptr<providers::Provider>> providers;
  std::atomic<std::shared_ptr<routing::Router>> router;
  // Set when a policy file drives routing (reload, explain, live stats live here).
  std::shared_ptr<routing::PolicyRouter> policy_router;
  std::vector<routing::ProviderInstance> provider_instances;
  Metrics metrics;
  AccessLog access_log;
  std::atomic<bool> draining{false};
  std::shared_ptr<providers::TlsContext> upstream_tls;
  std::chrono::system_clock::time_point started = std::chrono::system_clock::now();

  providers::Provider* find_provider(const std::string& name) const {
    auto it = providers.find(name);
    return it == providers.end() ? nullptr : it->second.get();
  }
};

// Builds providers and the router from the config; start-up errors are returned, not thrown.
core::Status build_app(App& app);
// Re-reads the policy file. On error the current policy keeps serving; the result is counted.
core::Status reload_policy(App& app, const char* trigger);
// Providers as the policy compiler sees them (credentials present, regions, local models).
std::vector<routing::ProviderInstance> provider_instances(const App& app);

}  // namespace gateway
