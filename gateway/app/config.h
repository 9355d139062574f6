#pragma once
// The gateway's own configuration file (listeners, upstream deadlines, provider instances, models).
// Loaded once at start-up (exceptions allowed there); errors carry file:line:column.
#include <chrono>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "core/result.h"
#include "providers/openai_compatible.h"
#include "providers/upstream_client.h"
#include "gateway/state/tenants.h"

namespace gateway {

struct ServerConfig {
  std::string listen_host = "127.0.0.1";
  std::string listen_port = "8080";
  int workers = 0;  // 0 = hardware threads
  size_t max_connections = 10000;
  size_t max_body_bytes = 4 * 1024 * 1024;
  std::chrono::milliseconds header_timeout{10000};
  std::chrono::milliseconds body_timeout{30000};
  std::chrono::milliseconds keepalive_idle{75000};
  std::chrono::milliseconds write_timeout{30000};
  std::chrono::milliseconds drain_timeout{25000};
  std::string tls_cert_file, tls_key_file;
  std::string access_log = "stdout";  // off | stdout | stderr | path
  std::string admin_key;               // from server.admin_key_env; empty = admin endpoints open
  std::string admin_key_env;           // the variable named in the config (serve fails if it is unset)
  // Request bodies being received, summed over every connection; beyond it new bodies get 503.
  size_t max_buffered_body_bytes = 256 * 1024 * 1024;
  std::string metrics_key;             // from server.metrics_key_env; empty = /metrics open
  std::string metrics_key_env;
  bool metrics_tenant_labels = true;   // false: tenant-labelled series are aggregated / omitted
};

struct LocalConfig {
  bool enabled = false;
  std::string model_path;        // GGUF file
  std::string model_name = "local";
  int threads = 0;
  int max_queue = 64;
  int max_context = 4096;
  std::string region = "self";
  std::string kv_type = "f16";   // KV cache element type: f16 | q8_0 | f32
  int prefix_cache_mb = 256;     // KV of finished sequences kept for prompt reuse; 0 = off
};

struct GatewayConfig {
  std::string file;  // where it came from
  ServerConfig server;
  providers::UpstreamTimeouts timeouts;
  providers::TlsSettings upstream_tls;
  size_t pool_max_idle = 64;
  size_t pool_max_open = 1024;
  int max_attempts = 3;
  std::vector<providers::ProviderConfig> providers;
  std::vector<std::pair<std::string, std::vector<std::string>>> models;  // alias -> deployment refs (simple mode)
  std::string policy_file;  // routing policy (policies/*.yaml); replaces `models`
  std::chrono::milliseconds policy_poll{1000};  // how often the policy file is checked for changes (0 = never)
  bool trust_routing_headers = true;  // x-gateway-client-region / -tenant / -data-classification / -data-tags
  bool reject_unknown_data_tags = true;  // routing.unknown_data_tags: reject (400) | ignore (dropped)
  struct Prometheus {
    std::string url;  // e.g. http://127.0.0.1:9090: fleet-wide live figures for routing
    std::chrono::milliseconds interval{5000};
  } prometheus;
  LocalConfig local;

  // Tenants and their hashed keys. Empty = open mode (no client key needed).
  TenantDirectory tenants;
  struct State {
    std::string ledger_path;        // SQLite spend ledger; empty = no ledger (unless postgres)
    // state.ledger.backend: sqlite (the file ledger_path, one per gateway) | postgres (one database
    // for a fleet, its URL in the environment variable ledger_url_env, never in the YAML).
    std::string ledger_backend = "sqlite";
    std::string ledger_url_env;
    std::string ledger_url;         // the variable's value at load; empty = unset (serve/spend refuse)
    // postgres: where entries the server did not take by shutdown are saved (empty: stderr only);
    // the next start imports them. SQLite's is always <ledger_path>.recovery.jsonl.
    std::string ledger_recovery_path;
    // A ledger that cannot write: refuse new requests with 503 (true, "refuse") or keep serving
    // while the queued entries wait for the disk ("serve").
    bool refuse_on_ledger_failure = true;
    int ledger_retention_days = 0;  // 0 = keep every entry; else >= 32 (monthly budgets seed from it)
    std::string mode = "local";     // local | redis: where budgets and rate limits are counted
    std::string redis_host = "127.0.0.1";
    int redis_port = 6379;
    std::string redis_password_env; // the password comes from the environment, never the YAML
    bool redis_fail_open = true;    // Redis unreachable: admit (open) or refuse with 503 (closed)
    std::chrono::milliseconds redis_timeout{200};
    // Stored responses of the Responses API (state.responses). `store`: sqlite (the file `path`),
    // redis (state.mode redis: every replica continues every conversation), memory (lost at
    // restart), off (store: true is refused). Resolved at load: redis in Redis mode, else sqlite
    // beside the ledger, else memory.
    struct Responses {
      std::string store;
      std::string path;
      int max_age_days = 30;
      uint64_t max_bytes = 256ull << 20;
    } responses;
    // state.suspensions.poll_interval_ms (redis mode): how often a replica reads the fleet's
    // suspensions; a suspension made on one replica is in effect on the others within it.
    std::chrono::milliseconds suspensions_poll{500};
    // state.shares.sync_interval_ms (redis mode): how often a replica adds its share counts to the
    // fleet's in Redis and reads the fleet's totals back (max_share caps hold fleet-wide).
    std::chrono::milliseconds shares_sync{1000};
  } state;
  struct Cache {
    bool enabled = false;
    size_t max_bytes = 64 << 20;
    std::chrono::seconds ttl{300};
    bool redis = false;             // share the cache through Redis (state.mode redis)
  } cache;
};

core::Result<GatewayConfig> load_config_file(const std::string& path);
core::Result<GatewayConfig> parse_config(const std::string& yaml_text, const std::string& file_name);

}  // namespace gateway
