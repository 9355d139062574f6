#include "gateway/app/config.h"

#include <gtest/gtest.h>

#include <cstdlib>

using gateway::parse_config;

TEST(Config, DefaultsWithoutAFile) {
  auto c = parse_config("", "<defaults>");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->providers.size(), 5u);
  bool has_auto = false;
  for (const auto& [alias, refs] : c->models) has_auto |= alias == "auto";
  EXPECT_TRUE(has_auto);
}

TEST(Config, ErrorsCarryFileLineColumn) {
  auto c = parse_config("server:\n  listen: \"127.0.0.1:0\"\n  wokers: 2\n", "gw.yaml");
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.error().message.find("gw.yaml:3:3"), std::string::npos) << c.error().message;
  EXPECT_NE(c.error().message.find("wokers"), std::string::npos);

  auto bad_yaml = parse_config("server: [\n", "x.yaml");
  ASSERT_FALSE(bad_yaml.ok());
  EXPECT_EQ(bad_yaml.error().message.rfind("x.yaml:", 0), 0u) << bad_yaml.error().message;

  auto secret = parse_config("providers:\n  deepseek:\n    api_key: sk-123\n", "s.yaml");
  ASSERT_FALSE(secret.ok());
  EXPECT_NE(secret.error().message.find("never go in the YAML"), std::string::npos);
  EXPECT_EQ(secret.error().message.find("sk-123"), std::string::npos);

  auto bad_url = parse_config("providers:\n  v:\n    type: openai_compatible\n    base_url: ftp://x\n", "u.yaml");
  ASSERT_FALSE(bad_url.ok());
  EXPECT_NE(bad_url.error().message.find("http"), std::string::npos);

  auto bad_type = parse_config("upstream:\n  connect_timeout_ms: soon\n", "t.yaml");
  ASSERT_FALSE(bad_type.ok());
  EXPECT_NE(bad_type.error().message.find("t.yaml:2:23"), std::string::npos) << bad_type.error().message;
}

TEST(Config, ProvidersAndModels) {
  auto c = parse_config(R"(
upstream: {first_byte_timeout_ms: 1500, max_attempts: 2}
providers:
  qwen: {region: us-east-1, base_urls: {us-east-1: "http://127.0.0.1:9/compatible-mode/v1"}}
  vllm: {type: openai_compatible, base_url: "http://127.0.0.1:8000/v1"}
models:
  chat: [qwen/qwen-flash, vllm/Qwen/Qwen3-30B-A3B]
  one: vllm/m
)", "p.yaml");
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ(c->timeouts.first_byte.count(), 1500);
  EXPECT_EQ(c->max_attempts, 2);
  ASSERT_EQ(c->models.size(), 2u);
  EXPECT_EQ(c->models[0].second[1], "vllm/Qwen/Qwen3-30B-A3B");
  EXPECT_EQ(c->models[1].second.size(), 1u);
}

TEST(Config, LedgerFailureModeAndRetention) {
  auto d = parse_config("state:\n  ledger_path: /tmp/x.db\n", "s.yaml");
  ASSERT_TRUE(d.ok()) << d.error().message;
  EXPECT_TRUE(d->state.refuse_on_ledger_failure) << "fail closed by default";
  EXPECT_EQ(d->state.ledger_retention_days, 0);
  auto c = parse_config("state:\n  on_ledger_failure: serve\n  ledger_retention_days: 400\n", "s.yaml");
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_FALSE(c->state.refuse_on_ledger_failure);
  EXPECT_EQ(c->state.ledger_retention_days, 400);
  auto bad_mode = parse_config("state:\n  on_ledger_failure: ignore\n", "s.yaml");
  ASSERT_FALSE(bad_mode.ok());
  EXPECT_NE(bad_mode.error().message.find("refuse or serve"), std::string::npos) << bad_mode.error().message;
  auto short_keep = parse_config("state:\n  ledger_retention_days: 7\n", "s.yaml");
  ASSERT_FALSE(short_keep.ok());
  EXPECT_NE(short_keep.error().message.find("32..36500"), std::string::npos) << short_keep.error().message;
}

// state.shares: the fleet share sync's interval, redis mode only, bounded, no other key.
TEST(Config, SharesSyncInterval) {
  auto d = parse_config("state:\n  mode: redis\n", "s.yaml");
  ASSERT_TRUE(d.ok()) << d.error().message;
  EXPECT_EQ(d->state.shares_sync.count(), 1000);
  auto c = parse_config("state:\n  mode: redis\n  shares: {sync_interval_ms: 50}\n", "s.yaml");
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ(c->state.shares_sync.count(), 50);
  auto error_of = [](const char* yaml) {
    auto r = parse_config(yaml, "s.yaml");
    return r.ok() ? std::string() : r.error().message;
  };
  EXPECT_NE(error_of("state:\n  shares: {sync_interval_ms: 50}\n").find("for state.mode redis"), std::string::npos);
  EXPECT_NE(error_of("state:\n  mode: redis\n  shares: {sync_interval_ms: 5}\n").find("10..10000"), std::string::npos);
  EXPECT_NE(error_of("state:\n  mode: redis\n  shares: {sync_interval_ms: 20000}\n").find("10..10000"), std::string::npos);
  EXPECT_NE(error_of("state:\n  mode: redis\n  shares: {sync_interval_ms: soon}\n"), "");
  EXPECT_NE(error_of("state:\n  mode: redis\n  shares: {interval_ms: 50}\n").find("unknown key 'interval_ms'"),
            std::string::npos);
}

// state.responses: where Responses API responses are stored; defaults follow the state mode.
TEST(Config, ResponseStore) {
  auto none = parse_config("", "<defaults>");
  ASSERT_TRUE(none.ok());
  EXPECT_EQ(none->state.responses.store, "memory");
  auto beside = parse_config("state:\n  ledger_path: /var/lib/gw/spend.db\n", "s.yaml");
  ASSERT_TRUE(beside.ok()) << beside.error().message;
  EXPECT_EQ(beside->state.responses.store, "sqlite");
  EXPECT_EQ(beside->state.responses.path, "/var/lib/gw/spend-responses.db");
  auto redis = parse_config("state:\n  mode: redis\n  responses: {max_age_days: 7}\n", "s.yaml");
  ASSERT_TRUE(redis.ok()) << redis.error().message;
  EXPECT_EQ(redis->state.responses.store, "redis");
  EXPECT_EQ(redis->state.responses.max_age_days, 7);
  auto own = parse_config("state:\n  responses: {store: sqlite, path: r.db, max_mb: 10}\n", "/etc/gw/s.yaml");
  ASSERT_TRUE(own.ok()) << own.error().message;
  EXPECT_EQ(own->state.responses.path, "/etc/gw/r.db");
  EXPECT_EQ(own->state.responses.max_bytes, 10ull << 20);
  auto error_of = [](const std::string& yaml) {
    auto c = parse_config(yaml, "r.yaml");
    return c.ok() ? std::string("accepted") : c.error().message;
  };
  EXPECT_NE(error_of("state:\n  responses: {store: disk}\n").find("sqlite, redis, memory or off"), std::string::npos);
  EXPECT_NE(error_of("state:\n  responses: {store: redis}\n").find("needs state.mode: redis"), std::string::npos);
  EXPECT_NE(error_of("state:\n  responses: {store: sqlite}\n").find("needs state.responses.path"), std::string::npos);
  EXPECT_NE(error_of("state:\n  responses: {store: memory, path: x.db}\n").find("no effect"), std::string::npos);
  EXPECT_NE(error_of("state:\n  mode: redis\n  responses: {max_mb: 5}\n").find("maxmemory"), std::string::npos);
  EXPECT_NE(error_of("state:\n  responses: {max_age_days: 0}\n").find("1..3650"), std::string::npos);
  EXPECT_NE(error_of("state:\n  responses: {ttl: 5}\n").find("ttl"), std::string::npos);
  EXPECT_NE(error_of("state:\n  responses: off\n").find("mapping"), std::string::npos);
}

// state.ledger: {backend, url_env, recovery_path}; every setting that would do nothing is refused.
TEST(Config, LedgerBackend) {
  auto error_of = [](const std::string& yaml) {
    auto c = parse_config(yaml, "l.yaml");
    return c.ok() ? std::string("(accepted)") : c.error().message;
  };
  auto has = [](const std::string& msg, const char* part) { return msg.find(part) != std::string::npos; };

  auto sqlite_default = parse_config("state:\n  ledger_path: /tmp/x.db\n", "l.yaml");
  ASSERT_TRUE(sqlite_default.ok());
  EXPECT_EQ(sqlite_default->state.ledger_backend, "sqlite");
  auto sqlite = parse_config("state:\n  ledger_path: /tmp/x.db\n  ledger: {backend: sqlite}\n", "l.yaml");
  ASSERT_TRUE(sqlite.ok()) << sqlite.error().message;
  EXPECT_EQ(sqlite->state.ledger_path, "/tmp/x.db");

  ::setenv("GW_TEST_LEDGER_URL", "postgres://u@127.0.0.1:1/db", 1);
  auto pg = parse_config("state:\n  ledger: {backend: postgres, url_env: GW_TEST_LEDGER_URL, recovery_path: r.jsonl}\n",
                         "/etc/gw/l.yaml");
  ASSERT_TRUE(pg.ok()) << pg.error().message;
  EXPECT_EQ(pg->state.ledger_backend, "postgres");
  EXPECT_EQ(pg->state.ledger_url_env, "GW_TEST_LEDGER_URL");
  EXPECT_EQ(pg->state.ledger_url, "postgres://u@127.0.0.1:1/db");
  EXPECT_EQ(pg->state.ledger_recovery_path, "/etc/gw/r.jsonl") << "relative to the config file";
  EXPECT_TRUE(pg->state.ledger_path.empty());
  ::unsetenv("GW_TEST_LEDGER_URL");
  // An unset variable parses (like server.admin_key_env: `gateway check` runs without secrets);
  // opening the ledger refuses it (open_configured_ledger, tested end to end in the Node suite).
  auto unset = parse_config("state:\n  ledger: {backend: postgres, url_env: GW_TEST_LEDGER_URL}\n", "l.yaml");
  ASSERT_TRUE(unset.ok()) << unset.error().message;
  EXPECT_TRUE(unset->state.ledger_url.empty());

  std::string e = error_of("state:\n  ledger: {backend: mysql, url_env: X}\n");
  EXPECT_TRUE(has(e, "l.yaml:2:") && has(e, "sqlite or postgres") && has(e, "mysql")) << e;
  e = error_of("state:\n  ledger: {backend: Postgres, url_env: X}\n");
  EXPECT_TRUE(has(e, "sqlite or postgres")) << "backends are not case-folded: " << e;
  e = error_of("state:\n  ledger: {backend: postgres}\n");
  EXPECT_TRUE(has(e, "needs url_env")) << e;
  e = error_of("state:\n  ledger: {backend: postgres, url_env: ''}\n");
  EXPECT_TRUE(has(e, "must name an environment variable")) << e;
  e = error_of("state:\n  ledger_path: /tmp/x.db\n  ledger: {backend: sqlite, url_env: X}\n");
  EXPECT_TRUE(has(e, "url_env is for backend postgres")) << e;
  e = error_of("state:\n  ledger_path: /tmp/x.db\n  ledger: {url_env: X}\n");
  EXPECT_TRUE(has(e, "url_env is for backend postgres")) << "sqlite is the default backend: " << e;
  e = error_of("state:\n  ledger_path: /tmp/x.db\n  ledger: {backend: postgres, url_env: X}\n");
  EXPECT_TRUE(has(e, "state.ledger_path is the SQLite ledger's file")) << e;
  e = error_of("state:\n  ledger: {backend: sqlite}\n");
  EXPECT_TRUE(has(e, "needs state.ledger_path")) << e;
  e = error_of("state:\n  ledger_path: /tmp/x.db\n  ledger: {backend: sqlite, recovery_path: r}\n");
  EXPECT_TRUE(has(e, "recovery_path is for backend postgres")) << e;
  e = error_of("state:\n  ledger: {backend: postgres, url_env: X, url: postgres://u:pw@h/db}\n");
  EXPECT_TRUE(has(e, "unknown key 'url' in state.ledger")) << "a URL in the YAML is refused: " << e;
  EXPECT_FALSE(has(e, "pw")) << "the value is not echoed: " << e;
  EXPECT_NE(e, "(accepted)");
  e = error_of("state:\n  ledger: postgres\n");
  EXPECT_TRUE(has(e, "must be a mapping")) << e;
  e = error_of("state:\n  ledger: {backend: [postgres], url_env: X}\n");
  EXPECT_NE(e, "(accepted)");
}

TEST(Config, IsolationKeys) {
  auto d = parse_config("", "<defaults>");
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->server.max_buffered_body_bytes, size_t(256) << 20);
  EXPECT_TRUE(d->server.metrics_tenant_labels);
  EXPECT_TRUE(d->server.metrics_key_env.empty());

  ::setenv("GW_CONFIG_TEST_METRICS_KEY", "metrics-key-123", 1);
  auto c = parse_config("server:\n  max_buffered_body_bytes: 8388608\n  metrics_key_env: GW_CONFIG_TEST_METRICS_KEY\n"
                        "  metrics_tenant_labels: false\n",
                        "i.yaml");
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ(c->server.max_buffered_body_bytes, 8388608u);
  EXPECT_EQ(c->server.metrics_key, "metrics-key-123");
  EXPECT_FALSE(c->server.metrics_tenant_labels);

  // A budget smaller than one maximal body could never admit it.
  auto small = parse_config("server:\n  max_body_bytes: 4194304\n  max_buffered_body_bytes: 1048576\n", "b.yaml");
  ASSERT_FALSE(small.ok());
  EXPECT_NE(small.error().message.find("b.yaml:3:"), std::string::npos) << small.error().message;
  EXPECT_NE(small.error().message.find("max_buffered_body_bytes"), std::string::npos);
}

TEST(Config, AnthropicEndpointsPerProvider) {
  auto c = parse_config(R"(
providers:
  deepseek: {base_url: "http://127.0.0.1:9", anthropic_base_url: "http://127.0.0.1:9/anthropic"}
  glm: {region: intl-coding, anthropic_base_urls: {intl-coding: "http://127.0.0.1:9/api/anthropic"}}
)", "a.yaml");
  ASSERT_TRUE(c.ok()) << c.error().message;
  ASSERT_EQ(c->providers.size(), 2u);
  EXPECT_EQ(c->providers[0].anthropic_base_url, "http://127.0.0.1:9/anthropic");
  EXPECT_EQ(c->providers[1].anthropic_base_urls.at("intl-coding"), "http://127.0.0.1:9/api/anthropic");

  auto not_a_map = parse_config("providers:\n  glm:\n    anthropic_base_urls: http://x\n", "m.yaml");
  ASSERT_FALSE(not_a_map.ok());
  EXPECT_NE(not_a_map.error().message.find("anthropic_base_urls must map region to URL"), std::string::npos)
      << not_a_map.error().message;
  auto unknown_region = parse_config("providers:\n  kimi:\n    anthropic_base_urls: {mars: \"http://x\"}\n", "r.yaml");
  ASSERT_FALSE(unknown_region.ok());
  EXPECT_NE(unknown_region.error().message.find("mars"), std::string::npos) << unknown_region.error().message;
  auto bad_url = parse_config("providers:\n  kimi:\n    anthropic_base_url: ftp://x\n", "u.yaml");
  ASSERT_FALSE(bad_url.ok());
}

TEST(Config, ResponsesEndpointsPerProvider) {
  auto c = parse_config(R"(
providers:
  vllm: {type: openai_compatible, base_url: "http://127.0.0.1:9/v1", responses_base_url: "http://127.0.0.1:8/r"}
  glm: {region: intl-coding, base_urls: {intl-coding: "http://127.0.0.1:9/c"}, responses_base_urls: {intl-coding: "http://127.0.0.1:9/api/v1"}}
)", "a.yaml");
  ASSERT_TRUE(c.ok()) << c.error().message;
  ASSERT_EQ(c->providers.size(), 2u);
  EXPECT_EQ(c->providers[0].responses_base_url, "http://127.0.0.1:8/r");
  EXPECT_EQ(c->providers[1].responses_base_urls.at("intl-coding"), "http://127.0.0.1:9/api/v1");

  auto not_a_map = parse_config("providers:\n  glm:\n    responses_base_urls: http://x\n", "m.yaml");
  ASSERT_FALSE(not_a_map.ok());
  EXPECT_NE(not_a_map.error().message.find("responses_base_urls must map region to URL"), std::string::npos)
      << not_a_map.error().message;
  auto unknown_region = parse_config("providers:\n  glm:\n    responses_base_urls: {mars: \"http://x\"}\n", "r.yaml");
  ASSERT_FALSE(unknown_region.ok());
  EXPECT_NE(unknown_region.error().message.find("mars"), std::string::npos) << unknown_region.error().message;
  auto bad_url = parse_config("providers:\n  glm:\n    responses_base_url: ftp://x\n", "u.yaml");
  ASSERT_FALSE(bad_url.ok());
  auto not_a_string = parse_config("providers:\n  glm:\n    responses_base_url: [1]\n", "s.yaml");
  ASSERT_FALSE(not_a_string.ok());
  auto off = parse_config("providers:\n  glm:\n    responses: false\n    responses_base_url: http://x\n", "o.yaml");
  ASSERT_FALSE(off.ok());
  EXPECT_NE(off.error().message.find("contradicts"), std::string::npos) << off.error().message;
}
