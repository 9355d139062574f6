// Walks the configuration keys documented in deploy/CONFIGURATION.md and checks them against the
// keys the gateway itself accepts (asked through `gateway check`, whose unknown-key error lists the
// allowed keys of each section): every documented key is accepted, every accepted key is documented,
// and every key is either covered by a test that shows its effect (file named below, which must
// mention the key) or listed as informational with the reason. A key added to the parser or the docs
// without the other, or without a test, fails here.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { GATEWAY_BIN, REPO, run, tmpDir } from './lib/gateway.mjs';

// Keys of the ```yaml blocks: "section.key" paths; instance, alias and tenant names become "*",
// list items "[]". Commented-out lines are not documentation of a key.
function documentedKeys(markdown) {
  const keys = new Set();
  const WILD = new Set(['providers', 'models', 'tenants']);
  for (const [, block] of markdown.matchAll(/```yaml\n([\s\S]*?)```/g)) {
    const stack = [];
    for (const raw of block.split('\n')) {
      if (/^\s*#/.test(raw)) continue;
      const line = raw.replace(/\s+#.*$/, '');
      const item = /^(\s*)- \{(.*)\}\s*$/.exec(line);
      if (item) {
        const parent = stack.filter((s) => s.indent < item[1].length + 2).map((s) => s.name);
        for (const k of item[2].matchAll(/(?:^|,)\s*([a-z_][a-z0-9_]*):/g)) keys.add([...parent, '[]', k[1]].join('.'));
        continue;
      }
      const m = /^(\s*)([A-Za-z_][A-Za-z0-9_.-]*):(.*)$/.exec(line);
      if (!m) continue;
      const indent = m[1].length;
      while (stack.length && stack.at(-1).indent >= indent) stack.pop();
      const parent = stack.map((s) => s.name);
      const name = parent.length === 1 && WILD.has(parent[0]) ? '*' : m[2];
      const p = [...parent, name];
      keys.add(p.join('.'));
      stack.push({ indent, name });
      const flow = /^\s*\{(.*)\}\s*$/.exec(m[3]);
      if (flow && p[0] !== 'models') {
        // Top-level keys of the flow map only (nested maps are values: base_urls, headers).
        let depth = 0, cur = '';
        const parts = [];
        for (const ch of flow[1]) {
          if (ch === '{' || ch === '[') depth++;
          if (ch === '}' || ch === ']') depth--;
          if (ch === ',' && depth === 0) { parts.push(cur); cur = ''; } else cur += ch;
        }
        parts.push(cur);
        for (const part of parts) {
          const k = /^\s*([a-z_][a-z0-9_]*):/.exec(part);
          if (k) keys.add([...p, k[1]].join('.'));
        }
      }
    }
  }
  return keys;
}

// Sections probed with an unknown key; the error names the allowed keys.
const SECTIONS = {
  '': {},
  server: { server: {} },
  'server.tls': { server: { tls: {} } },
  upstream: { upstream: {} },
  'providers.*': { providers: { deepseek: {} } },
  local: { local: {} },
  routing: { routing: {} },
  state: { state: {} },
  'state.redis': { state: { redis: {} } },
  'state.ledger': { state: { ledger: {} } },
  'state.suspensions': { state: { mode: 'redis', suspensions: {} } },
  'state.shares': { state: { mode: 'redis', shares: {} } },
  'state.responses': { state: { responses: {} } },
  cache: { cache: {} },
  'tenants.*': { tenants: { t: {} } },
  'tenants.*.keys.[]': { tenants: { t: { keys: [{}] } } },
  'tenants.*.budget': { tenants: { t: { budget: {} } } },
  'tenants.*.limits': { tenants: { t: { limits: {} } } },
};

// Where each key's effect is shown: a test file under tests/node (or ../<dir>/<file> for a unit test)
// that must mention the key (or the word after ':'); 'informational: why' for keys with no behaviour
// of their own (sections, names); 'untested: why' for known gaps, printed on every run.
const EFFECT = {
  server: 'informational: section', 'server.listen': 'tls.test.mjs', 'server.workers': 'state_crash.test.mjs',
  'server.max_connections': 'fd_limit.test.mjs', 'server.max_body_bytes': 'bad_input.test.mjs',
  'server.max_buffered_body_bytes': 'isolation.test.mjs', 'server.metrics_key_env': 'isolation.test.mjs',
  'server.metrics_tenant_labels': 'isolation.test.mjs',
  'server.header_timeout_ms': 'bad_input.test.mjs', 'server.body_timeout_ms': 'bad_input.test.mjs',
  'server.keepalive_idle_ms': 'bad_input.test.mjs', 'server.write_timeout_ms': 'untested: needs a client that stops reading for the deadline',
  'server.drain_timeout_ms': 'drain.test.mjs', 'server.tls': 'tls.test.mjs', 'server.tls.cert_file': 'tls.test.mjs',
  'server.tls.key_file': 'tls.test.mjs', 'server.access_log': 'untested: every test logs to stderr; the file and off modes have no test', 'server.admin_key_env': 'state_keys_budget.test.mjs',
  upstream: 'informational: section', 'upstream.ca_file': 'tls.test.mjs', 'upstream.connect_timeout_ms': 'untested: a connect that hangs needs a black-holed address',
  'upstream.tls_timeout_ms': 'untested: needs an upstream that stalls the handshake', 'upstream.first_byte_timeout_ms': 'failover.test.mjs',
  'upstream.stream_idle_timeout_ms': 'streaming.test.mjs', 'upstream.total_timeout_ms': 'streaming.test.mjs',
  'upstream.pool_max_idle_per_endpoint': 'informational: pool sizing, measured by tests/bench/proxy_bench.sh',
  'upstream.pool_max_open_per_endpoint': 'informational: pool sizing, measured by tests/bench/proxy_bench.sh',
  'upstream.max_attempts': 'failover.test.mjs',
  providers: 'informational: section', 'providers.*': 'dialects.test.mjs', 'providers.*.type': 'routing_constraints.test.mjs',
  'providers.*.api_key_env': 'passthrough_auth.test.mjs', 'providers.*.api_key_file': 'untested: read once at start (providers/openai_compatible.cpp read_key_file)',
  'providers.*.region': 'routing_inputs.test.mjs', 'providers.*.base_url': 'routing_inputs.test.mjs',
  'providers.*.base_urls': 'routing_constraints.test.mjs', 'providers.*.auth': 'dialects.test.mjs',
  'providers.*.anthropic_base_url': 'untested: end to end it needs POST /v1/messages routed to the native relay; the endpoint choice is ../providers/anthropic_wire_test.cpp AnthropicEndpoints, the key ../gateway/config_test.cpp',
  'providers.*.anthropic_base_urls': 'untested: as anthropic_base_url (../providers/anthropic_relay_test.cpp relays to a configured one)',
  'providers.*.responses': 'responses_native.test.mjs',
  'providers.*.responses_base_url': 'catalog_surfaces.test.mjs',
  'providers.*.responses_base_urls': 'responses_native.test.mjs',
  'providers.*.headers': 'untested: extra static headers on every upstream request',
  local: 'local_backend.test.mjs', 'local.enabled': 'informational: false turns the engine off (start-up only)',
  'local.model_path': 'local_backend.test.mjs', 'local.model_name': 'local_backend.test.mjs', 'local.threads': 'local_backend.test.mjs',
  'local.max_queue': 'local_backend.test.mjs', 'local.max_context': 'local_backend.test.mjs', 'local.kv_type': 'local_backend.test.mjs',
  'local.prefix_cache_mb': 'local_backend.test.mjs',
  'local.region': 'informational: the local deployment region name in ids (local@<region>/model)',
  models: 'failover.test.mjs', 'models.*': 'failover.test.mjs', policy: 'routing_reload.test.mjs',
  routing: 'informational: section', 'routing.policy_poll_ms': 'routing_reload.test.mjs',
  'routing.trust_routing_headers': 'routing_constraints.test.mjs', 'routing.unknown_data_tags': 'routing_inputs.test.mjs',
  'routing.prometheus_url': 'routing_prometheus.test.mjs', 'routing.prometheus_interval_ms': 'routing_prometheus.test.mjs',
  tenants: 'state_keys_budget.test.mjs', 'tenants.*': 'state_keys_budget.test.mjs', 'tenants.*.keys': 'state_keys_budget.test.mjs',
  'tenants.*.keys.[].id': 'state_keys_budget.test.mjs', 'tenants.*.keys.[].sha256': 'state_keys_budget.test.mjs',
  'tenants.*.models': 'state_keys_budget.test.mjs', 'tenants.*.client_region': 'routing_inputs.test.mjs',
  'tenants.*.data_classification': 'routing_inputs.test.mjs', 'tenants.*.data_tags': 'routing_inputs.test.mjs',
  'tenants.*.compliance_profiles': 'routing_inputs.test.mjs', 'tenants.*.compliance_profile': 'routing_inputs.test.mjs',
  'tenants.*.allow_header_overrides': 'routing_inputs.test.mjs', 'tenants.*.budget': 'state_keys_budget.test.mjs',
  'tenants.*.budget.daily_usd': 'state_keys_budget.test.mjs', 'tenants.*.budget.monthly_usd': 'state_keys_budget.test.mjs',
  'tenants.*.budget.hard': 'state_keys_budget.test.mjs', 'tenants.*.limits': 'state_keys_budget.test.mjs',
  'tenants.*.limits.rpm': 'state_keys_budget.test.mjs', 'tenants.*.limits.tpm': '../state/limits_test.cpp',
  'tenants.*.limits.concurrency': '../state/limits_test.cpp',
  state: 'informational: section', 'state.ledger_path': 'state_crash.test.mjs', 'state.mode': 'state_redis.test.mjs',
  'state.redis': 'state_redis.test.mjs', 'state.redis.host': 'state_redis.test.mjs', 'state.redis.port': 'state_redis.test.mjs',
  'state.redis.password_env': 'untested: needs a password-protected Redis',
  'state.redis.timeout_ms': 'state_redis.test.mjs:timeout_ms', 'state.fail_mode': 'state_redis.test.mjs',
  'state.on_ledger_failure': 'state_ledger_full.test.mjs',
  'state.suspensions': 'suspend.test.mjs', 'state.suspensions.poll_interval_ms': 'suspend.test.mjs',
  'state.shares': 'routing_fleet_shares.test.mjs', 'state.shares.sync_interval_ms': 'routing_fleet_shares.test.mjs:sync_interval_ms',
  'state.responses': 'responses_store.test.mjs', 'state.responses.store': 'responses_store.test.mjs:store: false',
  'state.responses.path': '../state/response_store_test.cpp:temp_path', 'state.responses.max_age_days': 'responses_store.test.mjs',
  'state.responses.max_mb': '../state/response_store_test.cpp:max_bytes',
  'state.ledger': 'ledger_postgres.test.mjs', 'state.ledger.backend': 'ledger_postgres.test.mjs',
  'state.ledger.url_env': 'ledger_postgres.test.mjs', 'state.ledger.recovery_path': 'ledger_postgres.test.mjs',
  'state.ledger_retention_days': 'untested: end to end it needs rows older than 32 days; the prune is ../state/ledger_test.cpp RetentionPrunesOldEntries, the key ../gateway/config_test.cpp',
  cache: 'state_cache.test.mjs', 'cache.enabled': 'state_cache.test.mjs', 'cache.max_bytes': '../state/response_cache_test.cpp:bytes',
  'cache.ttl_s': '../state/response_cache_test.cpp:ttl', 'cache.shared': 'state_redis.test.mjs',
};
// Accepted but deliberately documented only in prose (the older spelling of a key).
const PROSE_ONLY = new Set(['tenants.*.compliance_profile']);

const toYaml = (v) => JSON.stringify(v); // JSON is YAML

test('every documented config key is accepted, every accepted key is documented, each has a test or a reason', async () => {
  const doc = fs.readFileSync(path.join(REPO, 'deploy', 'CONFIGURATION.md'), 'utf8');
  const documented = documentedKeys(doc);
  const accepted = new Set();
  const dir = tmpDir('gw-keys-');
  for (const [section, skeleton] of Object.entries(SECTIONS)) {
    const cfg = structuredClone(skeleton);
    // Walk to the section's object in the skeleton and add the probe key there.
    let node = cfg;
    for (const key of section ? section.split('.') : []) {
      if (key === '*') node = Object.values(node)[0];
      else if (key === '[]') node = node[0];
      else node = node[key];
    }
    node.zz_probe = 1;
    const file = path.join(dir, `probe-${section || 'top'}.yaml`);
    fs.writeFileSync(file, toYaml(cfg));
    const r = await run(GATEWAY_BIN, ['check', file]);
    assert.notEqual(r.code, 0, `an unknown key in ${section || 'the top level'} was accepted`);
    const m = /unknown key 'zz_probe' in [^(]*\(allowed: ([^)]*)\)/.exec(r.stderr);
    assert.ok(m, `${section}: ${r.stderr}`);
    assert.match(r.stderr, /:\d+:\d+: /, 'the error has file:line:column');
    for (const k of m[1].split(', ')) accepted.add(section ? `${section}.${k}` : k);
  }
  for (const sec of Object.keys(SECTIONS)) if (sec) accepted.add(sec);
  accepted.add('models.*');
  for (const k of documented)
    if (k !== 'models' && k !== 'policy') assert.ok(accepted.has(k) || k.startsWith('models.'), `documented key '${k}' is not accepted by gateway check`);
  for (const k of accepted)
    if (!PROSE_ONLY.has(k)) assert.ok(documented.has(k) || k === 'tenants.*.keys.[]', `accepted key '${k}' is not documented in deploy/CONFIGURATION.md`);
  const gaps = [];
  for (const k of new Set([...documented, ...accepted])) {
    if (k === 'tenants.*.keys.[]') continue;
    const e = EFFECT[k];
    assert.ok(e, `key '${k}' has no entry in EFFECT (a test showing its effect, 'informational: why' or 'untested: why')`);
    if (e.startsWith('informational:')) continue;
    if (e.startsWith('untested:')) {
      gaps.push(`${k} (${e.slice(9).trim()})`);
      continue;
    }
    const [file, word] = e.split(':');
    const testFile = path.join(REPO, 'tests', 'node', file);
    assert.ok(fs.existsSync(testFile), `${k}: ${file} does not exist`);
    const leaf = word || k.split('.').filter((s) => s !== '*' && s !== '[]').at(-1);
    if (leaf) assert.ok(fs.readFileSync(testFile, 'utf8').includes(leaf), `${file} never mentions '${leaf}' (${k})`);
  }
  if (gaps.length) console.log(`# config keys without a test of their effect: ${gaps.join('; ')}`);
  for (const k of Object.keys(EFFECT)) assert.ok(documented.has(k) || accepted.has(k), `EFFECT lists '${k}', which is neither documented nor accepted`);
  console.log(`# ${documented.size} documented keys, ${accepted.size} accepted keys checked`);
});
