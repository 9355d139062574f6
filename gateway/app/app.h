#pragma once
// Process-wide state shared by every worker: configuration, providers, the current routing
// snapshot (swapped atomically), metrics and the access log.
#include <atomic>
#include <map>
#include <memory>
#include <string>

#include "gateway/observe/access_log.h"
#include "gateway/app/config.h"
#include "gateway/state/ledger.h"
#include "gateway/state/limits.h"
#include "gateway/observe/metrics.h"
#include "gateway/observe/recent_events.h"
#include "gateway/pipeline/services.h"
#include "gateway/state/response_cache.h"
#include "gateway/state/response_store.h"
#include "gateway/state/share_sync.h"
#include "gateway/state/suspension_service.h"
#include "providers/provider.h"
#include "routing/catalog_report.h"
#include "routing/policy.h"
#include "routing/policy_router.h"
#include "routing/router.h"

namespace boost::asio {
class thread_pool;
}

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
  // For the status page: the pipeline's last refusals and the last policy load's outcome.
  RefusalLog refusals;
  PolicyLoadLog policy_loads;
  std::atomic<bool> draining{false};
  std::shared_ptr<providers::TlsContext> upstream_tls;
  // Spend ledger, budgets and rate limits (in process or Redis), response cache.
  std::unique_ptr<Ledger> ledger;
  std::unique_ptr<LimitStore> limits;
  std::unique_ptr<ResponseCache> cache;
  std::unique_ptr<ResponseStore> responses;  // stored Responses API responses; null: state.responses.store off
  std::shared_ptr<void> redis;  // gateway::RedisClient when state.mode is redis
  // The runtime kill switch (admin API); null without a policy or without a ledger database.
  std::unique_ptr<SuspensionService> suspensions;
  // Fleet-wide share caps (state.mode redis with a policy): syncs the share windows through Redis.
  std::unique_ptr<ShareSync> share_sync;
  // Threads for calls that may block (Redis), so the I/O threads never wait on them.
  std::shared_ptr<boost::asio::thread_pool> blocking;
  std::chrono::system_clock::time_point started = std::chrono::system_clock::now();
  // What the request pipeline sees of all this (filled in by build_app and build_state).
  PipelineServices pipeline;

  providers::Provider* find_provider(const std::string& name) const {
    auto it = providers.find(name);
    return it == providers.end() ? nullptr : it->second.get();
  }
};

// Builds providers and the router from the config; start-up errors are returned, not thrown.
core::Status build_app(App& app);
// Opens the ledger, limit store and cache the config asks for (start-up; errors are returned).
core::Status build_state(App& app);
// The API surfaces each deployment speaks natively, from its provider (for `gateway catalog` and
// GET /admin/catalog): every deployment speaks OpenAI chat; Anthropic Messages where the provider
// has an Anthropic-compatible endpoint for the region; OpenAI Responses where its base serves it.
// Without the provider, its built-in dialect.
routing::SurfacesOf catalog_surfaces(const App& app);
// An explain document (routing's explain_json) with a "surfaces" member: for each deployment of its
// plan, the API surfaces it speaks natively (a request on another surface is translated there).
std::string explain_with_surfaces(const App& app, std::string explain_json);
// Fills app.pipeline from the rest of the App (build_state ends with it).
void wire_pipeline(App& app);
// The spend ledger the configuration names (state.ledger_path, or state.ledger backend postgres),
// or nullptr when none is configured. A postgres backend whose url_env variable is unset is an error.
core::Result<std::unique_ptr<Ledger>> open_configured_ledger(const GatewayConfig& config);
// Re-reads the policy file. On error the current policy keeps serving; the result is counted.
core::Status reload_policy(App& app, const char* trigger);
// Providers as the policy compiler sees them (credentials present, regions, local models).
std::vector<routing::ProviderInstance> provider_instances(const App& app);

}  // namespace gateway
