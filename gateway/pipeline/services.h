#pragma once
// What the request pipeline uses of the process: the settings it reads and the shared objects it
// calls, each one named. The composition root (app/) fills it in; nothing in pipeline/ sees the App.
#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <string>

#include "gateway/observe/metrics.h"
#include "gateway/observe/recent_events.h"
#include "gateway/state/ledger.h"
#include "gateway/state/limits.h"
#include "gateway/state/response_cache.h"
#include "providers/provider.h"
#include "routing/router.h"

namespace boost::asio {
class thread_pool;
}

namespace gateway {

struct PipelineSettings {
  int max_attempts = 3;
  providers::UpstreamTimeouts timeouts;
  bool trust_routing_headers = true;
  bool refuse_on_ledger_failure = true;
  std::chrono::seconds cache_ttl{300};
};

struct PipelineServices {
  PipelineSettings settings;
  std::atomic<std::shared_ptr<routing::Router>>* router = nullptr;  // the current routing snapshot
  const std::map<std::string, std::unique_ptr<providers::Provider>>* providers = nullptr;
  Metrics* metrics = nullptr;
  RefusalLog* refusals = nullptr;
  Ledger* ledger = nullptr;             // null: no ledger
  LimitStore* limits = nullptr;         // null: no budgets or rate limits
  ResponseCache* cache = nullptr;       // null: no response cache
  boost::asio::thread_pool* blocking = nullptr;  // for blocking calls (Redis); null: run inline

  providers::Provider* find_provider(const std::string& name) const {
    auto it = providers->find(name);
    return it == providers->end() ? nullptr : it->second.get();
  }
};

}  // namespace gateway
