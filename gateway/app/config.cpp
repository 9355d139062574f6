#include "gateway/app/config.h"

#include <yaml-cpp/yaml.h>

#include "gateway/state/yaml_checks.h"

#include <cstdlib>
#include <fstream>
#include <set>
#include <sstream>

namespace gateway {
namespace {

using namespace yaml_checks;

std::chrono::milliseconds ms(const std::string& file, const YAML::Node& n, const char* what) {
  auto v = scalar<int64_t>(file, n, what);
  if (v <= 0) fail(file, n, std::string(what) + " must be > 0");
  return std::chrono::milliseconds(v);
}

// A provider's `<key>: {region: URL, ...}` (base_urls, anthropic_base_urls, responses_base_urls).
std::map<std::string, std::string> region_urls(const std::string& file, const YAML::Node& n, const std::string& key) {
  if (!n.IsMap()) fail(file, n, key + " must map region to URL");
  std::map<std::string, std::string> out;
  const std::string what = key + " entry";
  for (auto it = n.begin(); it != n.end(); ++it)
    out[it->first.as<std::string>()] = scalar<std::string>(file, it->second, what);
  return out;
}

void parse_listen(const std::string& file, const YAML::Node& n, ServerConfig& s) {
  std::string v = scalar<std::string>(file, n, "server.listen");
  auto colon = v.rfind(':');
  if (colon == std::string::npos) fail(file, n, "server.listen must be host:port, e.g. 127.0.0.1:8080");
  s.listen_host = v.substr(0, colon);
  s.listen_port = v.substr(colon + 1);
  if (s.listen_host.size() > 2 && s.listen_host.front() == '[') s.listen_host = s.listen_host.substr(1, s.listen_host.size() - 2);
  if (s.listen_port.empty() || s.listen_port.find_first_not_of("0123456789") != std::string::npos)
    fail(file, n, "server.listen port must be a number");
}

// With no providers: the four vendors with their conventional key variables. With no models: an
// alias per well-known model, and "auto" = cheapest-first across vendors.
void add_defaults(GatewayConfig& c) {
  if (c.providers.empty()) {
    for (const char* name : {"deepseek", "qwen", "kimi", "glm", "minimax"}) {
      providers::ProviderConfig pc;
      pc.name = name;
      c.providers.push_back(pc);
    }
  }
  if (c.models.empty() && c.policy_file.empty()) {
    auto has = [&](const std::string& p) {
      for (const auto& pc : c.providers)
        if (pc.name == p) return true;
      return false;
    };
    const std::pair<const char*, const char*> defaults[] = {
        {"deepseek-flash", "deepseek/deepseek-flash"}, {"deepseek-v4-pro", "deepseek/deepseek-v4-pro"},
        {"qwen-flash", "qwen/qwen-flash"},             {"qwen3.7-plus", "qwen/qwen3.7-plus"},
        {"qwen3-max", "qwen/qwen3-max"},               {"qwen3-coder-plus", "qwen/qwen3-coder-plus"},
        {"kimi-k2.6", "kimi/kimi-k2.6"},               {"kimi-k3", "kimi/kimi-k3"},
        {"glm-4.7", "glm/glm-4.7"},                    {"glm-5.2", "glm/glm-5.2"},
        {"glm-4.7-flashx", "glm/glm-4.7-flashx"},
    };
    std::vector<std::string> auto_list;
    for (const auto& [alias, ref] : defaults) {
      std::string r = ref;
      if (!has(r.substr(0, r.find('/')))) continue;
      c.models.emplace_back(alias, std::vector<std::string>{r});
    }
    for (const char* r : {"deepseek/deepseek-flash", "qwen/qwen-flash", "glm/glm-4.7-flashx", "kimi/kimi-k2.5"}) {
      std::string s = r;
      if (has(s.substr(0, s.find('/')))) auto_list.push_back(s);
    }
    if (!auto_list.empty()) c.models.emplace_back("auto", auto_list);
  }
}

// Relative paths in a config file are relative to that file's directory, not to the working
// directory the gateway happens to start in.
void resolve_paths(GatewayConfig& c) {
  auto slash = c.file.rfind('/');
  if (c.file.empty() || c.file[0] == '<') return;
  std::string dir = slash == std::string::npos ? "." : c.file.substr(0, slash);
  auto fix = [&](std::string& p) {
    if (!p.empty() && p[0] != '/') p = dir + "/" + p;
  };
  fix(c.local.model_path);
  fix(c.policy_file);
  fix(c.state.ledger_path);
  fix(c.state.ledger_recovery_path);
  fix(c.state.responses.path);
  fix(c.upstream_tls.ca_file);
  fix(c.server.tls_cert_file);
  fix(c.server.tls_key_file);
  for (auto& pc : c.providers) fix(pc.api_key_file);
  if (c.server.access_log != "off" && c.server.access_log != "stdout" && c.server.access_log != "stderr")
    fix(c.server.access_log);
}

// Tenant routing settings are enforced by the policy engine; plain `models:` lists apply no
// compliance rules, so accepting them there would be a setting that silently does nothing.
void require_policy_for_tenant_rules(const YAML::Node& root, const std::string& file, const GatewayConfig& c) {
  if (!c.policy_file.empty()) return;
  for (const Tenant& t : c.tenants.tenants()) {
    const routing::TenantSettings& r = t.routing;
    if (r.client_region.empty() && r.data_classification.empty() && r.data_tags.empty() && r.presets == 0) continue;
    const YAML::Node tn = root["tenants"][t.name];
    const char* key = "client_region";
    for (const char* k : {"compliance_profiles", "compliance_profile", "data_tags", "data_classification", "client_region"})
      if (tn[k]) key = k;
    fail(file, tn[key], "tenants." + t.name + "." + key +
                       ": tenant routing settings are enforced by the "
                       "policy engine: configure `policy:` (plain `models:` lists apply no compliance rules)");
  }
}

// Keys that only the policy engine reads, or that only matter together with another: accepted alone
// they would look like settings and do nothing.
void refuse_ineffective_routing_keys(const YAML::Node& root, const std::string& file, const GatewayConfig& c) {
  const YAML::Node r = root["routing"];
  if (!r) return;
  if (c.policy_file.empty())
    for (const char* key : {"policy_poll_ms", "prometheus_url", "prometheus_interval_ms", "unknown_data_tags"})
      if (r[key])
        fail(file, r[key], std::string("routing.") + key + " has no effect without `policy:` (plain `models:` lists "
                                                          "do not use it)");
  if (r["prometheus_interval_ms"] && !r["prometheus_url"])
    fail(file, r["prometheus_interval_ms"], "routing.prometheus_interval_ms has no effect without routing.prometheus_url");
}

// The default store of Responses API responses: Redis in Redis mode (any replica continues any
// conversation), else a SQLite file beside the ledger's, else memory.
std::string default_response_store_path(const std::string& ledger_path) {
  const std::string stem = ledger_path.size() > 3 && ledger_path.ends_with(".db")
                               ? ledger_path.substr(0, ledger_path.size() - 3) : ledger_path;
  return stem + "-responses.db";
}

// state.responses: {store: sqlite|redis|memory|off, path: FILE, max_age_days: N, max_mb: N}.
void parse_response_store(const std::string& file, const YAML::Node& st, GatewayConfig::State& s) {
  auto& r = s.responses;
  const bool given = st && st.IsMap() && st["responses"];
  const YAML::Node n = given ? st["responses"] : YAML::Node();
  if (given) {
    if (!n.IsMap()) fail(file, n, "state.responses must be a mapping: {store: sqlite|redis|memory|off, path: FILE}");
    check_keys(file, n, "state.responses", {"store", "path", "max_age_days", "max_mb"});
    if (n["store"]) r.store = scalar<std::string>(file, n["store"], "state.responses.store");
    if (!r.store.empty() && r.store != "sqlite" && r.store != "redis" && r.store != "memory" && r.store != "off")
      fail(file, n["store"], "state.responses.store must be sqlite, redis, memory or off (got '" + r.store + "')");
    if (n["path"]) r.path = scalar<std::string>(file, n["path"], "state.responses.path");
    if (n["max_age_days"]) {
      r.max_age_days = scalar<int>(file, n["max_age_days"], "state.responses.max_age_days");
      if (r.max_age_days < 1 || r.max_age_days > 3650)
        fail(file, n["max_age_days"], "state.responses.max_age_days must be 1..3650");
    }
    if (n["max_mb"]) {
      const int64_t mb = scalar<int64_t>(file, n["max_mb"], "state.responses.max_mb");
      if (mb < 1 || mb > (1 << 20)) fail(file, n["max_mb"], "state.responses.max_mb must be 1..1048576");
      r.max_bytes = static_cast<uint64_t>(mb) << 20;
    }
  }
  if (r.store.empty()) r.store = s.mode == "redis" ? "redis" : (!r.path.empty() || !s.ledger_path.empty()) ? "sqlite" : "memory";
  if (given) {
    if (r.store == "redis" && s.mode != "redis")
      fail(file, n["store"], "state.responses.store redis needs state.mode: redis (and state.redis)");
    if (n["path"] && r.store != "sqlite")
      fail(file, n["path"], "state.responses.path is the SQLite store's file; it has no effect with store " + r.store);
    if (n["max_mb"] && (r.store == "redis" || r.store == "off"))
      fail(file, n["max_mb"], "state.responses.max_mb has no effect with store " + r.store +
                                  (r.store == "redis" ? " (Redis memory is bounded by its maxmemory)" : ""));
  }
  if (r.store == "sqlite" && r.path.empty()) {
    if (s.ledger_path.empty())
      fail(file, n, "state.responses.store sqlite needs state.responses.path (there is no ledger file to put it beside)");
    r.path = default_response_store_path(s.ledger_path);
  }
}

// state.ledger: {backend: sqlite|postgres, url_env: VARIABLE, recovery_path: FILE}. Every
// combination that would leave a setting without effect is an error (url_env or recovery_path with
// sqlite, ledger_path with postgres). The variable is read here; an unset one is refused when the
// ledger is opened (serve, spend), so `gateway check` works without the secret.
void parse_ledger_backend(const std::string& file, const YAML::Node& st, GatewayConfig::State& s) {
  const YAML::Node lg = st["ledger"];
  if (!lg) return;
  if (!lg.IsMap()) fail(file, lg, "state.ledger must be a mapping: {backend: sqlite|postgres, url_env: VARIABLE}");
  check_keys(file, lg, "state.ledger", {"backend", "url_env", "recovery_path"});
  if (lg["backend"]) s.ledger_backend = scalar<std::string>(file, lg["backend"], "state.ledger.backend");
  if (s.ledger_backend != "sqlite" && s.ledger_backend != "postgres")
    fail(file, lg["backend"], "state.ledger.backend must be sqlite or postgres (got '" + s.ledger_backend + "')");
  if (lg["url_env"]) s.ledger_url_env = scalar<std::string>(file, lg["url_env"], "state.ledger.url_env");
  if (s.ledger_backend == "sqlite") {
    if (lg["url_env"])
      fail(file, lg["url_env"], "state.ledger.url_env is for backend postgres; the SQLite ledger's file is state.ledger_path");
    if (lg["recovery_path"])
      fail(file, lg["recovery_path"], "state.ledger.recovery_path is for backend postgres; the SQLite ledger's recovery "
                                      "file is <state.ledger_path>.recovery.jsonl");
    if (!st["ledger_path"]) fail(file, lg, "state.ledger.backend sqlite needs state.ledger_path (the database file)");
    return;
  }
  if (!lg["url_env"])
    fail(file, lg, "state.ledger.backend postgres needs url_env: the environment variable holding the connection URL "
                   "(postgres://user@host:5432/db)");
  if (s.ledger_url_env.empty()) fail(file, lg["url_env"], "state.ledger.url_env must name an environment variable");
  if (st["ledger_path"])
    fail(file, st["ledger_path"], "state.ledger_path is the SQLite ledger's file; it has no effect with state.ledger.backend "
                                  "postgres");
  if (lg["recovery_path"])
    s.ledger_recovery_path = scalar<std::string>(file, lg["recovery_path"], "state.ledger.recovery_path");
  if (const char* v = std::getenv(s.ledger_url_env.c_str()); v && *v) s.ledger_url = v;
}

GatewayConfig parse(const YAML::Node& root, const std::string& file) {
  GatewayConfig c;
  c.file = file;
  if (!root || root.IsNull()) {
    parse_response_store(file, YAML::Node(), c.state);
    add_defaults(c);
    return c;
  }
  check_keys(file, root, "the top level",
             {"server", "upstream", "providers", "models", "local", "policy", "routing", "tenants", "state", "cache"});
  if (auto t = root["tenants"]; t && !t.IsNull()) {
    auto dir = TenantDirectory::from_yaml(t, file);
    if (!dir) throw ConfigError{dir.error().message};
    c.tenants = std::move(dir).value();
  }
  if (auto st = root["state"]) {
    check_keys(file, st, "state",
               {"ledger_path", "ledger", "mode", "redis", "fail_mode", "on_ledger_failure", "ledger_retention_days",
                "responses", "suspensions", "shares"});
    parse_ledger_backend(file, st, c.state);
    if (st["ledger_retention_days"]) {
      int d = scalar<int>(file, st["ledger_retention_days"], "state.ledger_retention_days");
      // Budgets are re-seeded from the ledger after a restart (this month's spend): keep a month.
      if (d != 0 && (d < 32 || d > 36500))
        fail(file, st["ledger_retention_days"],
             "state.ledger_retention_days must be 0 (keep everything) or 32..36500 (monthly budgets are re-seeded "
             "from the ledger)");
      c.state.ledger_retention_days = d;
    }
    if (st["on_ledger_failure"]) {
      std::string v = scalar<std::string>(file, st["on_ledger_failure"], "state.on_ledger_failure");
      if (v != "refuse" && v != "serve")
        fail(file, st["on_ledger_failure"], "state.on_ledger_failure must be refuse or serve");
      c.state.refuse_on_ledger_failure = v == "refuse";
    }
    if (st["ledger_path"]) c.state.ledger_path = scalar<std::string>(file, st["ledger_path"], "state.ledger_path");
    if (st["mode"]) {
      c.state.mode = scalar<std::string>(file, st["mode"], "state.mode");
      if (c.state.mode != "local" && c.state.mode != "redis") fail(file, st["mode"], "state.mode must be local or redis");
    }
    if (st["fail_mode"]) {
      std::string fm = scalar<std::string>(file, st["fail_mode"], "state.fail_mode");
      if (fm != "open" && fm != "closed") fail(file, st["fail_mode"], "state.fail_mode must be open or closed");
      c.state.redis_fail_open = fm == "open";
    }
    if (auto su = st["suspensions"]) {
      check_keys(file, su, "state.suspensions", {"poll_interval_ms"});
      if (c.state.mode != "redis")
        fail(file, su, "state.suspensions is for state.mode redis (a single replica applies a suspension at once)");
      if (su["poll_interval_ms"]) {
        c.state.suspensions_poll = ms(file, su["poll_interval_ms"], "state.suspensions.poll_interval_ms");
        if (c.state.suspensions_poll.count() < 10 || c.state.suspensions_poll.count() > 1000)
          fail(file, su["poll_interval_ms"], "state.suspensions.poll_interval_ms must be 10..1000");
      }
    }
    if (auto sh = st["shares"]) {
      check_keys(file, sh, "state.shares", {"sync_interval_ms"});
      if (c.state.mode != "redis")
        fail(file, sh, "state.shares is for state.mode redis (a single replica's share caps are its own counts)");
      if (sh["sync_interval_ms"]) {
        c.state.shares_sync = ms(file, sh["sync_interval_ms"], "state.shares.sync_interval_ms");
        if (c.state.shares_sync.count() < 10 || c.state.shares_sync.count() > 10000)
          fail(file, sh["sync_interval_ms"], "state.shares.sync_interval_ms must be 10..10000");
      }
    }
    if (auto r = st["redis"]) {
      check_keys(file, r, "state.redis", {"host", "port", "password_env", "timeout_ms"});
      if (r["host"]) c.state.redis_host = scalar<std::string>(file, r["host"], "state.redis.host");
      if (r["port"]) c.state.redis_port = scalar<int>(file, r["port"], "state.redis.port");
      if (r["password_env"]) c.state.redis_password_env = scalar<std::string>(file, r["password_env"], "state.redis.password_env");
      if (r["timeout_ms"]) c.state.redis_timeout = ms(file, r["timeout_ms"], "state.redis.timeout_ms");
    }
  }
  parse_response_store(file, root["state"], c.state);
  if (auto ca = root["cache"]) {
    check_keys(file, ca, "cache", {"enabled", "max_bytes", "ttl_s", "shared"});
    c.cache.enabled = ca["enabled"] ? scalar<bool>(file, ca["enabled"], "cache.enabled") : true;
    if (ca["max_bytes"]) c.cache.max_bytes = scalar<size_t>(file, ca["max_bytes"], "cache.max_bytes");
    if (ca["ttl_s"]) c.cache.ttl = std::chrono::seconds(scalar<int64_t>(file, ca["ttl_s"], "cache.ttl_s"));
    if (ca["shared"]) c.cache.redis = scalar<bool>(file, ca["shared"], "cache.shared");
  }
  if (root["policy"]) c.policy_file = scalar<std::string>(file, root["policy"], "policy");
  if (root["policy"] && root["models"])
    fail(file, root["models"], "use either `policy:` (the policy engine) or `models:` (plain fall-back lists), not both");
  if (auto r = root["routing"]) {
    check_keys(file, r, "routing", {"policy_poll_ms", "trust_routing_headers", "unknown_data_tags", "prometheus_url",
                                    "prometheus_interval_ms"});
    if (r["unknown_data_tags"]) {
      std::string v = scalar<std::string>(file, r["unknown_data_tags"], "routing.unknown_data_tags");
      if (v != "reject" && v != "ignore") fail(file, r["unknown_data_tags"], "routing.unknown_data_tags must be reject or ignore");
      c.reject_unknown_data_tags = v == "reject";
    }
    if (r["policy_poll_ms"]) {
      auto v = scalar<int64_t>(file, r["policy_poll_ms"], "routing.policy_poll_ms");
      if (v < 0) fail(file, r["policy_poll_ms"], "routing.policy_poll_ms must be >= 0");
      c.policy_poll = std::chrono::milliseconds(v);
    }
    if (r["trust_routing_headers"]) c.trust_routing_headers = scalar<bool>(file, r["trust_routing_headers"], "routing.trust_routing_headers");
    if (r["prometheus_url"]) c.prometheus.url = scalar<std::string>(file, r["prometheus_url"], "routing.prometheus_url");
    if (r["prometheus_interval_ms"]) c.prometheus.interval = ms(file, r["prometheus_interval_ms"], "routing.prometheus_interval_ms");
  }
  if (auto s = root["server"]) {
    check_keys(file, s, "server", {"listen", "workers", "max_connections", "max_body_bytes", "header_timeout_ms",
                                   "body_timeout_ms", "keepalive_idle_ms", "write_timeout_ms", "drain_timeout_ms",
                                   "tls", "access_log", "admin_key_env", "max_buffered_body_bytes",
                                   "metrics_key_env", "metrics_tenant_labels"});
    if (s["admin_key_env"]) {
      std::string env = scalar<std::string>(file, s["admin_key_env"], "server.admin_key_env");
      const char* v = std::getenv(env.c_str());
      c.server.admin_key_env = env;
      if (v && *v) c.server.admin_key = v;  // `serve` refuses to start without it (admin would be open)
    }
    if (s["metrics_key_env"]) {
      std::string env = scalar<std::string>(file, s["metrics_key_env"], "server.metrics_key_env");
      const char* v = std::getenv(env.c_str());
      c.server.metrics_key_env = env;
      if (v && *v) c.server.metrics_key = v;  // `serve` refuses to start without it (/metrics would be open)
    }
    if (s["metrics_tenant_labels"])
      c.server.metrics_tenant_labels = scalar<bool>(file, s["metrics_tenant_labels"], "server.metrics_tenant_labels");
    if (s["max_buffered_body_bytes"])
      c.server.max_buffered_body_bytes = scalar<size_t>(file, s["max_buffered_body_bytes"], "server.max_buffered_body_bytes");
    if (s["listen"]) parse_listen(file, s["listen"], c.server);
    if (s["workers"]) c.server.workers = scalar<int>(file, s["workers"], "server.workers");
    if (s["max_connections"]) c.server.max_connections = scalar<size_t>(file, s["max_connections"], "server.max_connections");
    if (s["max_body_bytes"]) c.server.max_body_bytes = scalar<size_t>(file, s["max_body_bytes"], "server.max_body_bytes");
    if (s["header_timeout_ms"]) c.server.header_timeout = ms(file, s["header_timeout_ms"], "server.header_timeout_ms");
    if (s["body_timeout_ms"]) c.server.body_timeout = ms(file, s["body_timeout_ms"], "server.body_timeout_ms");
    if (s["keepalive_idle_ms"]) c.server.keepalive_idle = ms(file, s["keepalive_idle_ms"], "server.keepalive_idle_ms");
    if (s["write_timeout_ms"]) c.server.write_timeout = ms(file, s["write_timeout_ms"], "server.write_timeout_ms");
    if (s["drain_timeout_ms"]) c.server.drain_timeout = ms(file, s["drain_timeout_ms"], "server.drain_timeout_ms");
    if (auto t = s["tls"]) {
      check_keys(file, t, "server.tls", {"cert_file", "key_file"});
      if (!t["cert_file"] || !t["key_file"]) fail(file, t, "server.tls needs cert_file and key_file");
      c.server.tls_cert_file = scalar<std::string>(file, t["cert_file"], "server.tls.cert_file");
      c.server.tls_key_file = scalar<std::string>(file, t["key_file"], "server.tls.key_file");
    }
    if (s["access_log"]) c.server.access_log = scalar<std::string>(file, s["access_log"], "server.access_log");
    if (c.server.workers < 0 || c.server.workers > 256) fail(file, s["workers"], "server.workers must be 0..256");
    if (c.server.max_body_bytes < 1024) fail(file, s["max_body_bytes"], "server.max_body_bytes must be >= 1024");
    if (c.server.max_buffered_body_bytes < c.server.max_body_bytes)
      fail(file, s["max_buffered_body_bytes"] ? s["max_buffered_body_bytes"] : s["max_body_bytes"],
           "server.max_buffered_body_bytes must be >= server.max_body_bytes (else no body of the maximum size could be received)");
  }
  if (auto u = root["upstream"]) {
    check_keys(file, u, "upstream", {"ca_file", "connect_timeout_ms", "tls_timeout_ms", "first_byte_timeout_ms",
                                     "stream_idle_timeout_ms", "total_timeout_ms", "pool_max_idle_per_endpoint",
                                     "pool_max_open_per_endpoint", "max_attempts"});
    if (u["ca_file"]) c.upstream_tls.ca_file = scalar<std::string>(file, u["ca_file"], "upstream.ca_file");
    if (u["connect_timeout_ms"]) c.timeouts.connect = ms(file, u["connect_timeout_ms"], "upstream.connect_timeout_ms");
    if (u["tls_timeout_ms"]) c.timeouts.tls = ms(file, u["tls_timeout_ms"], "upstream.tls_timeout_ms");
    if (u["first_byte_timeout_ms"]) c.timeouts.first_byte = ms(file, u["first_byte_timeout_ms"], "upstream.first_byte_timeout_ms");
    if (u["stream_idle_timeout_ms"]) c.timeouts.idle = ms(file, u["stream_idle_timeout_ms"], "upstream.stream_idle_timeout_ms");
    if (u["total_timeout_ms"]) c.timeouts.total = ms(file, u["total_timeout_ms"], "upstream.total_timeout_ms");
    if (u["pool_max_idle_per_endpoint"]) c.pool_max_idle = scalar<size_t>(file, u["pool_max_idle_per_endpoint"], "upstream.pool_max_idle_per_endpoint");
    if (u["pool_max_open_per_endpoint"]) c.pool_max_open = scalar<size_t>(file, u["pool_max_open_per_endpoint"], "upstream.pool_max_open_per_endpoint");
    if (u["max_attempts"]) c.max_attempts = scalar<int>(file, u["max_attempts"], "upstream.max_attempts");
    if (c.max_attempts < 1 || c.max_attempts > 10) fail(file, u["max_attempts"], "upstream.max_attempts must be 1..10");
  }
  if (auto p = root["providers"]; p && !p.IsNull()) {
    if (!p.IsMap()) fail(file, p, "providers must be a mapping of instance name to settings");
    for (auto it = p.begin(); it != p.end(); ++it) {
      providers::ProviderConfig pc;
      pc.name = it->first.as<std::string>();
      YAML::Node v = it->second;  // a copy: the iterator yields a temporary proxy
      if (v.IsNull()) { c.providers.push_back(pc); continue; }
      if (v.IsMap() && v["api_key"]) fail(file, v["api_key"], "secrets never go in the YAML: use api_key_env or api_key_file");
      check_keys(file, v, "providers." + pc.name,
                 {"type", "base_url", "base_urls", "anthropic_base_url", "anthropic_base_urls", "responses",
                  "responses_base_url", "responses_base_urls", "region", "api_key_env", "api_key_file", "auth", "headers"});
      if (v["base_url"] && v["base_urls"])
        fail(file, v["base_url"], "providers." + pc.name + ": use base_url (the configured region's URL) or base_urls "
                                  "(per region), not both");
      if (v["type"]) pc.type = scalar<std::string>(file, v["type"], "type");
      if (v["base_url"]) pc.base_url = scalar<std::string>(file, v["base_url"], "base_url");
      if (v["anthropic_base_url"]) pc.anthropic_base_url = scalar<std::string>(file, v["anthropic_base_url"], "anthropic_base_url");
      if (auto b = v["anthropic_base_urls"]) pc.anthropic_base_urls = region_urls(file, b, "anthropic_base_urls");
      if (v["responses"]) pc.responses = scalar<bool>(file, v["responses"], "responses");
      if (v["responses_base_url"])
        pc.responses_base_url = scalar<std::string>(file, v["responses_base_url"], "responses_base_url");
      if (auto b = v["responses_base_urls"]) pc.responses_base_urls = region_urls(file, b, "responses_base_urls");
      if (v["region"]) pc.default_region = scalar<std::string>(file, v["region"], "region");
      if (v["api_key_env"]) pc.api_key_env = scalar<std::string>(file, v["api_key_env"], "api_key_env");
      if (v["api_key_file"]) pc.api_key_file = scalar<std::string>(file, v["api_key_file"], "api_key_file");
      if (v["auth"]) pc.auth = scalar<std::string>(file, v["auth"], "auth");
      if (auto b = v["base_urls"]) pc.base_urls = region_urls(file, b, "base_urls");
      if (auto h = v["headers"]) {
        if (!h.IsMap()) fail(file, h, "headers must be a mapping");
        for (auto hi = h.begin(); hi != h.end(); ++hi) {
          std::string k = hi->first.as<std::string>(), val = scalar<std::string>(file, hi->second, "header value");
          if (k.find_first_of("\r\n:") != std::string::npos || val.find_first_of("\r\n") != std::string::npos)
            fail(file, hi->first, "header names/values must not contain CR, LF or ':'");
          pc.extra_headers[k] = val;
        }
      }
      if (auto ok = providers::check_provider_config(pc); !ok) fail(file, v, ok.error().message);
      c.providers.push_back(pc);
    }
  }
  if (auto l = root["local"]) {
    check_keys(file, l, "local", {"enabled", "model_path", "model_name", "threads", "max_queue", "max_context", "region", "kv_type",
                                     "prefix_cache_mb"});
    c.local.enabled = l["enabled"] ? scalar<bool>(file, l["enabled"], "local.enabled") : true;
    if (l["model_path"]) c.local.model_path = scalar<std::string>(file, l["model_path"], "local.model_path");
    if (l["model_name"]) c.local.model_name = scalar<std::string>(file, l["model_name"], "local.model_name");
    if (l["threads"]) c.local.threads = scalar<int>(file, l["threads"], "local.threads");
    if (l["max_queue"]) c.local.max_queue = scalar<int>(file, l["max_queue"], "local.max_queue");
    if (l["max_context"]) c.local.max_context = scalar<int>(file, l["max_context"], "local.max_context");
    if (l["region"]) c.local.region = scalar<std::string>(file, l["region"], "local.region");
    if (l["kv_type"]) {
      c.local.kv_type = scalar<std::string>(file, l["kv_type"], "local.kv_type");
      if (c.local.kv_type != "f16" && c.local.kv_type != "q8_0" && c.local.kv_type != "f32")
        fail(file, l["kv_type"], "local.kv_type must be f16 (the default), q8_0 or f32, not '" + c.local.kv_type + "'");
    }
    if (l["prefix_cache_mb"]) {
      c.local.prefix_cache_mb = scalar<int>(file, l["prefix_cache_mb"], "local.prefix_cache_mb");
      if (c.local.prefix_cache_mb < 0 || c.local.prefix_cache_mb > 1048576)
        fail(file, l["prefix_cache_mb"], "local.prefix_cache_mb must be 0 (off) to 1048576 MiB");
    }
  }
  if (auto m = root["models"]) {
    if (!m.IsMap()) fail(file, m, "models must map an alias to a list of deployments");
    std::set<std::string> seen;
    for (auto it = m.begin(); it != m.end(); ++it) {
      std::string alias = it->first.as<std::string>();
      if (!seen.insert(alias).second) fail(file, it->first, "model alias '" + alias + "' defined twice");
      std::vector<std::string> refs;
      YAML::Node v = it->second;  // a copy: the iterator yields a temporary proxy
      if (v.IsScalar()) refs.push_back(v.as<std::string>());
      else if (v.IsSequence()) for (const auto& e : v) refs.push_back(scalar<std::string>(file, e, "deployment"));
      else fail(file, v, "models." + alias + " must be a deployment or a list of deployments");
      if (refs.empty()) fail(file, v, "models." + alias + " is empty");
      c.models.emplace_back(alias, std::move(refs));
    }
  }
  require_policy_for_tenant_rules(root, file, c);
  refuse_ineffective_routing_keys(root, file, c);
  add_defaults(c);
  resolve_paths(c);
  return c;
}

}  // namespace

core::Result<GatewayConfig> parse_config(const std::string& yaml_text, const std::string& file_name) {
  try {
    YAML::Node root = YAML::Load(yaml_text);
    return parse(root, file_name);
  } catch (const ConfigError& e) {
    return core::make_error(core::ErrorKind::bad_request, e.message);
  } catch (const YAML::Exception& e) {
    return core::make_error(core::ErrorKind::bad_request,
                            file_name + ":" + std::to_string(e.mark.line + 1) + ":" + std::to_string(e.mark.column + 1) +
                                ": " + e.msg);
  }
}

core::Result<GatewayConfig> load_config_file(const std::string& path) {
  std::ifstream f(path);
  if (!f) return core::make_error(core::ErrorKind::bad_request, "cannot read config file '" + path + "'");
  std::stringstream ss;
  ss << f.rdbuf();
  return parse_config(ss.str(), path);
}

}  // namespace gateway
