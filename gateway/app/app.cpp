#include "gateway/app/app.h"

#include <algorithm>
#include <array>
#include <boost/asio/thread_pool.hpp>
#include <cstdlib>
#include <cstdio>

#include "core/json_edit.h"
#include "core/json_scan.h"
#include "core/json_writer.h"
#include "providers/dialect.h"
#include "providers/local_provider.h"
#include "gateway/state/limits_redis.h"
#include "gateway/state/redis_client.h"
#include "routing/static_router.h"

namespace gateway {

core::Status build_app(App& app) {
  GatewayConfig& cfg = app.config;
  for (const auto& pc : cfg.providers) {
    auto p = providers::make_openai_compatible(pc);
    if (!p) return std::move(p).error();
    app.providers[pc.name] = std::move(p).value();
  }
  if (cfg.local.enabled) {
    providers::LocalProviderConfig lc;
    lc.model_path = cfg.local.model_path;
    lc.model_name = cfg.local.model_name;
    lc.region = cfg.local.region;
    lc.threads = cfg.local.threads;
    lc.max_queue = cfg.local.max_queue;
    lc.max_context = cfg.local.max_context;
    lc.kv_type = cfg.local.kv_type;
    lc.prefix_cache_mb = cfg.local.prefix_cache_mb;
    auto p = providers::make_local_provider(lc);
    if (p) {
      app.providers["local"] = std::move(p).value();
    } else {
      // A missing or broken model file disables the local provider (clearly, with the reason in
      // every refusal) instead of stopping the gateway: remote providers may still serve.
      const std::string why = p.error().message + " (deploy/start.sh creates a demo model; or set local.model_path to a GGUF file)";
      std::fprintf(stderr, "gateway: local engine not loaded: %s\n", why.c_str());
      app.providers["local"] = providers::make_unavailable_local_provider(lc, why);
    }
  }
  std::vector<routing::ProviderStatus> statuses;
  for (const auto& [name, p] : app.providers) {
    statuses.push_back({name, p->available(), p->unavailable_reason(), p->default_region()});
    app.metrics.provider_available(name, p->available());
  }
  app.provider_instances = provider_instances(app);
  if (!cfg.policy_file.empty()) {
    routing::PolicyRouterOptions options;
    options.reject_unknown_data_tags = cfg.reject_unknown_data_tags;
    auto r = routing::PolicyRouter::from_file(cfg.policy_file, app.provider_instances, options);
    if (!r) return std::move(r).error();
    app.policy_router = std::shared_ptr<routing::PolicyRouter>(std::move(r).value());
    for (const auto& w : app.policy_router->policy()->warnings) std::fprintf(stderr, "gateway: policy warning: %s\n", w.c_str());
    app.metrics.policy_warnings(app.policy_router->policy()->warnings.size());
    app.router.store(app.policy_router);
    app.policy_loads.record({wall_ms_now(), "start", true, ""});
    return core::ok_status();
  }
  std::vector<std::pair<std::string, std::vector<routing::Deployment>>> models;
  for (const auto& [alias, refs] : cfg.models) {
    std::vector<routing::Deployment> list;
    for (const auto& ref : refs) {
      routing::Deployment d;
      std::string err;
      if (!routing::parse_deployment_ref(ref, d, err))
        return core::make_error(core::ErrorKind::bad_request, cfg.file + ": models." + alias + ": " + err);
      auto* p = app.find_provider(d.provider);
      if (!p)
        return core::make_error(core::ErrorKind::bad_request, cfg.file + ": models." + alias + ": deployment '" + ref +
                                                                  "' names provider '" + d.provider +
                                                                  "', which is not in providers:");
      if (d.region.empty()) d.region = p->default_region();
      auto regions = p->regions();
      if (std::find(regions.begin(), regions.end(), d.region) == regions.end()) {
        std::string known;
        for (const auto& r : regions) known += (known.empty() ? "" : ", ") + r;
        return core::make_error(core::ErrorKind::bad_request, cfg.file + ": models." + alias + ": provider '" +
                                                                  d.provider + "' has no region '" + d.region +
                                                                  "' (known: " + known + ")");
      }
      d.id = routing::deployment_id(d.provider, d.region, d.model);
      list.push_back(std::move(d));
    }
    models.emplace_back(alias, std::move(list));
  }
  app.router.store(std::make_shared<routing::StaticRouter>(std::move(models), std::move(statuses)));
  return core::ok_status();
}

}  // namespace gateway

namespace gateway {

std::vector<routing::ProviderInstance> provider_instances(const App& app) {
  std::vector<routing::ProviderInstance> out;
  for (const auto& [name, p] : app.providers) {
    routing::ProviderInstance pi;
    pi.name = name;
    pi.type = p->dialect().name;
    pi.regions = p->regions();
    pi.configured_regions.push_back(p->default_region());
    for (const auto& pc : app.config.providers)
      if (pc.name == name)
        for (const auto& [region, url] : pc.base_urls)
          if (region != p->default_region()) pi.configured_regions.push_back(region);
    pi.has_credentials = p->available();
    pi.credential_hint = p->unavailable_reason();
    if (pi.type == "local") pi.models = {app.config.local.model_name};
    pi.context_window = p->context_window();
    out.push_back(std::move(pi));
  }
  return out;
}

core::Status reload_policy(App& app, const char* trigger) {
  if (!app.policy_router) return core::make_error(core::ErrorKind::bad_request, "no policy file is configured");
  auto s = app.policy_router->reload_file(app.config.policy_file, app.provider_instances);
  // Logged before it is counted: whoever sees the counter move can already read why.
  if (s.ok()) {
    std::fprintf(stderr, "gateway: policy %s reloaded (%s)\n", app.config.policy_file.c_str(), trigger);
    const auto& warnings = app.policy_router->policy()->warnings;
    for (const auto& w : warnings) std::fprintf(stderr, "gateway: policy warning: %s\n", w.c_str());
    app.metrics.policy_warnings(warnings.size());
  } else {
    std::fprintf(stderr, "gateway: policy %s NOT reloaded (%s), previous policy keeps serving:\n%s\n",
                 app.config.policy_file.c_str(), trigger, s.error().message.c_str());
  }
  app.metrics.policy_reload(s.ok());
  app.policy_loads.record({wall_ms_now(), trigger, s.ok(), s.ok() ? "" : s.error().message});
  return s;
}

}  // namespace gateway

namespace gateway {

routing::SurfacesOf catalog_surfaces(const App& app) {
  return [&app](const routing::Deployment& d) {
    std::vector<std::string> v{"openai_chat"};
    bool anthropic = false, responses = false;
    if (const providers::Provider* p = app.find_provider(d.provider)) {
      anthropic = p->speaks_anthropic(d.region);
      responses = p->speaks_responses(d.region);
    } else if (const providers::Dialect* dl = providers::find_dialect(d.provider)) {
      for (const auto& r : dl->regions)
        if (r.region == d.region) {
          anthropic = !r.anthropic_base_url.empty();
          responses = r.responses || !r.responses_base_url.empty();
        }
    }
    if (anthropic) v.push_back("anthropic_messages");
    if (responses) v.push_back("openai_responses");
    return v;
  };
}

std::string explain_with_surfaces(const App& app, std::string explain_json) {
  namespace json = core::json;
  std::string_view plan;
  json::for_each_member(explain_json, [&](const json::Member& m) {
    if (json::key_is(m.key, "plan")) plan = m.value;
  });
  const routing::SurfacesOf surfaces = catalog_surfaces(app);
  std::string map = "{";
  json::for_each_element(plan, [&](std::string_view id_json) {
    std::string id, error;
    routing::Deployment d;
    if (!json::decode_string(id_json, id) || !routing::parse_deployment_ref(id, d, error)) return;
    if (map.size() > 1) map.push_back(',');
    core::append_json_string(map, id);
    map += ":[";
    const auto names = surfaces(d);
    for (size_t i = 0; i < names.size(); ++i) {
      if (i) map.push_back(',');
      core::append_json_string(map, names[i]);
    }
    map.push_back(']');
  });
  map.push_back('}');
  const std::array<json::MemberEdit, 1> edit{{{"surfaces", std::string_view(map), true}}};
  auto out = json::edit_members(explain_json, edit);
  return out ? std::move(*out) : explain_json;
}

// The pipeline's view of the App: its settings and the objects it calls.
void wire_pipeline(App& app) {
  PipelineServices& p = app.pipeline;
  p.settings.max_attempts = app.config.max_attempts;
  p.settings.timeouts = app.config.timeouts;
  p.settings.trust_routing_headers = app.config.trust_routing_headers;
  p.settings.refuse_on_ledger_failure = app.config.state.refuse_on_ledger_failure;
  p.settings.cache_ttl = app.config.cache.ttl;
  p.router = &app.router;
  p.providers = &app.providers;
  p.metrics = &app.metrics;
  p.refusals = &app.refusals;
  p.ledger = app.ledger.get();
  p.limits = app.limits.get();
  p.cache = app.cache.get();
  p.blocking = app.blocking.get();
}

core::Result<std::unique_ptr<Ledger>> open_configured_ledger(const GatewayConfig& config) {
  const auto& st = config.state;
  if (st.ledger_backend == "postgres") {
    if (st.ledger_url.empty())
      return core::make_error(core::ErrorKind::bad_request,
                              config.file + ": state.ledger.url_env names '" + st.ledger_url_env +
                                  "', which is not set (the PostgreSQL ledger's connection URL)");
    return Ledger::open_postgres(st.ledger_url, 65536, st.ledger_recovery_path);
  }
  if (st.ledger_path.empty()) return std::unique_ptr<Ledger>();
  return Ledger::open(st.ledger_path);
}

// The Responses API's store (state.responses). Its calls block (a disk, a Redis round trip): they
// run on the blocking pool, made here when nothing else needed one.
core::Status open_response_store(App& app, const std::shared_ptr<RedisClient>& redis) {
  const auto& rc = app.config.state.responses;
  ResponseStoreLimits limits;
  limits.max_age = std::chrono::hours(24) * rc.max_age_days;
  limits.max_bytes = rc.max_bytes;
  if (rc.store == "off") return core::ok_status();
  if (rc.store == "redis") {
    app.responses = make_redis_response_store(redis, limits);
  } else {
    auto s = open_sqlite_response_store(rc.store == "memory" ? ":memory:" : rc.path, limits);
    if (!s) return std::move(s).error();
    app.responses = std::move(s).value();
  }
  if (!app.blocking) app.blocking = std::make_shared<boost::asio::thread_pool>(2);
  return core::ok_status();
}

// The kill switch's audit table lives in the ledger's database; without one, runtime suspensions
// could not be recorded, so the admin API refuses them (the policy file's still apply).
core::Status build_suspensions(App& app, std::shared_ptr<RedisClient> redis) {
  const auto& st = app.config.state;
  if (!app.policy_router || !app.ledger) return core::ok_status();
  auto audit = st.ledger_backend == "postgres" ? open_postgres_suspension_audit(st.ledger_url)
                                               : open_sqlite_suspension_audit(st.ledger_path);
  if (!audit) return std::move(audit).error();
  SuspensionServiceOptions o;
  o.poll_interval = st.suspensions_poll;
  auto router = app.policy_router;
  app.suspensions = std::make_unique<SuspensionService>(
      std::move(audit).value(), std::move(redis), o,
      [router](std::shared_ptr<const routing::SuspensionList> list) { router->set_suspensions(std::move(list)); });
  return app.suspensions->start();
}

// max_share caps hold fleet-wide: the share windows sync through Redis on their own thread.
void build_share_sync(App& app, std::shared_ptr<RedisClient> redis) {
  if (!app.policy_router || !redis) return;
  ShareSyncOptions o;
  o.interval = app.config.state.shares_sync;
  o.redis_timeout = app.config.state.redis_timeout;
  app.share_sync = std::make_unique<ShareSync>(std::move(redis), app.policy_router, o);
  app.share_sync->start();
}

core::Status build_state(App& app) {
  const auto& st = app.config.state;
  auto l = open_configured_ledger(app.config);
  if (!l) return std::move(l).error();
  app.ledger = std::move(l).value();
  if (app.ledger && st.ledger_retention_days > 0)
    app.ledger->set_retention(std::chrono::hours(24) * st.ledger_retention_days);
  std::shared_ptr<RedisClient> redis;
  if (st.mode == "redis" || app.config.cache.redis) {
    RedisOptions ro;
    ro.host = st.redis_host;
    ro.port = st.redis_port;
    ro.connect_timeout = ro.command_timeout = ro.pool_wait = st.redis_timeout;
    if (!st.redis_password_env.empty()) {
      const char* pw = std::getenv(st.redis_password_env.c_str());
      if (pw) ro.password = pw;
    }
    redis = std::make_shared<RedisClient>(ro);
    app.redis = redis;
    app.blocking = std::make_shared<boost::asio::thread_pool>(4);
  }
  // Spend reports from a PostgreSQL ledger are network round trips: off the I/O threads.
  if (app.ledger && st.ledger_backend == "postgres" && !app.blocking)
    app.blocking = std::make_shared<boost::asio::thread_pool>(4);
  if (!app.config.tenants.empty()) {
    if (st.mode == "redis") {
      RedisLimitOptions lo;
      lo.fail_mode = st.redis_fail_open ? FailMode::open : FailMode::closed;
      auto shared = std::make_unique<RedisLimitStore>(redis, app.config.tenants, lo);
      shared->set_ledger(app.ledger.get());  // counters Redis lost are re-seeded from it
      app.limits = std::move(shared);
    } else {
      auto local = std::make_unique<LocalLimitStore>(app.config.tenants);
      if (app.ledger) local->seed_from_ledger(*app.ledger, std::chrono::system_clock::now());
      app.limits = std::move(local);
    }
  }
  if (auto s = build_suspensions(app, st.mode == "redis" ? redis : nullptr); !s) return s;
  build_share_sync(app, st.mode == "redis" ? redis : nullptr);
  if (app.config.cache.enabled) {
    if (app.config.cache.redis) app.cache = std::make_unique<RedisResponseCache>(redis);
    else app.cache = std::make_unique<MemoryResponseCache>(app.config.cache.max_bytes);
  }
  if (auto s = open_response_store(app, redis); !s) return s;
  wire_pipeline(app);
  return core::ok_status();
}

}  // namespace gateway
