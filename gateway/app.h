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
#include "routing/router.h"

namespace gateway {

struct App {
  GatewayConfig config;
  std::map<std::string, std::unique_ptr<providers::Provider>> providers;
  std::atomic<std::shared_ptr<routing::Router>> router;
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

}  // namespace gateway
