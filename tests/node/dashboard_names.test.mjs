// The shipped Grafana dashboard and Prometheus alert rules query names the gateway really exports.
//
// A traffic mix goes through the gateway with fake upstreams: success, fail-over (the first
// deployment answers 402, out of balance), a cache hit, a budget refusal, a stream, a request no
// deployment can serve (5xx), a refused policy reload, and a Prometheus feed whose first round
// fails; the route has a savings baseline, so the saved counter is exported. State is in a real Redis
// (state.mode redis, with a ledger), so the fleet sync series of suspensions and share caps exist. Then /metrics is scraped and every PromQL expression in deploy/grafana/*.json and
// deploy/prometheus/alerts.yml is parsed: each metric name must have samples, each label it groups
// by or matches on must be on those samples, and each matcher's value must occur.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { startGateway, defaultConfig, tmpDir, chat, chatStream, userMsg, request, run, REPO, sleep } from './lib/gateway.mjs';
import { startUpstream } from './lib/routing_upstream.mjs';
import { scrape } from './lib/prometheus.mjs';
import { promqlExpressions, promqlUses } from './lib/promql_names.mjs';
import { startRedis } from './lib/redis.mjs';

const TOOL = path.join(REPO, 'build', 'local_backend', 'gguf-make-test-model');
const POLICY = `version: 1
name: dashboard-names
defaults:
  baseline: {price: {input: 30, output: 60}}
catalog:
  - {ref: pa/m, context_window: 100000, price: {input: 10, output: 20}}
  - {ref: pb/m, context_window: 100000, price: {input: 10, output: 20}}
routes:
  - name: mix
    match: {model: mix}
    objective: ordered
    candidates: [pa/m, pb/m]
  - name: dead
    match: {model: dead}
    objective: ordered
    candidates: [pa/m]
`;
const RICH = 'gwk_dash_rich_' + crypto.randomBytes(8).toString('hex');
const POOR = 'gwk_dash_poor_' + crypto.randomBytes(8).toString('hex');
const sha = (k) => crypto.createHash('sha256').update(k).digest('hex');

// Answers the Prometheus query API: its first query a 500 (the gateway's first round fails), then
// an empty vector (every later round succeeds).
async function startFakePrometheus() {
  let n = 0;
  const server = http.createServer((req, res) => {
    n++;
    const ok = n > 1;
    const text = ok ? JSON.stringify({ status: 'success', data: { resultType: 'vector', result: [] } }) : 'boom';
    res.writeHead(ok ? 200 : 500, { 'content-type': ok ? 'application/json' : 'text/plain', 'content-length': Buffer.byteLength(text) });
    res.end(text);
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${server.address().port}`, close: () => new Promise((r) => { server.closeAllConnections(); server.close(r); }) };
}

let pa, pb, prom, redis, gw, dir;
before(async () => {
  pa = await startUpstream({ name: 'pa', status: 402 });
  pb = await startUpstream({ name: 'pb' });
  prom = await startFakePrometheus();
  redis = await startRedis();
  dir = tmpDir('gw-dashboard-');
  const model = path.join(dir, 'tiny.gguf');
  const made = await run(TOOL, ['--out', model]);
  assert.equal(made.code, 0, `gguf-make-test-model: ${made.stderr}`);
  fs.writeFileSync(path.join(dir, 'policy.yaml'), POLICY);
  const c = defaultConfig();
  delete c.models;
  c.providers = { pa: { type: 'openai_compatible', base_url: pa.baseUrl }, pb: { type: 'openai_compatible', base_url: pb.baseUrl } };
  c.local = { model_path: model, model_name: 'tiny-moe', threads: 1, max_queue: 4, max_context: 2048 };
  c.policy = path.join(dir, 'policy.yaml');
  c.routing = { policy_poll_ms: 0, prometheus_url: prom.url, prometheus_interval_ms: 200 };
  c.tenants = {
    rich: { keys: [{ id: 'r', sha256: sha(RICH) }] },
    poor: { keys: [{ id: 'p', sha256: sha(POOR) }], budget: { daily_usd: 0.000001, hard: true } },
  };
  c.cache = { enabled: true };
  c.state = { mode: 'redis', redis: { host: '127.0.0.1', port: redis.port }, ledger_path: path.join(dir, 'ledger.db') };
  gw = await startGateway({ config: c });
});
after(async () => {
  await gw?.stop();
  await pa?.close();
  await pb?.close();
  await prom?.close();
  await redis?.stop();
});

const auth = (k) => ({ headers: { authorization: `Bearer ${k}` } });
const body = (model, text, extra = {}) => ({ model, messages: userMsg(text), max_tokens: 20, ...extra });

async function driveTraffic() {
  const fo = await chat(gw, body('mix', 'fail over please'), auth(RICH));
  assert.equal(fo.status, 200, fo.text);
  assert.equal(fo.headers['x-gateway-attempts'], '2', 'the first deployment refused (402), the second answered');
  const miss = await chat(gw, body('mix', 'cache me', { temperature: 0 }), auth(RICH));
  assert.equal(miss.status, 200, miss.text);
  const hit = await chat(gw, body('mix', 'cache me', { temperature: 0 }), auth(RICH));
  assert.equal(hit.headers['x-gateway-cache'], 'hit');
  const s = await chatStream(gw, body('mix', 'stream please', { stream: true }), auth(RICH));
  assert.equal(s.status, 200);
  assert.ok(s.done, 'stream complete');
  const refused = await chat(gw, body('mix', 'over budget'), auth(POOR));
  assert.equal(refused.status, 429, refused.text);
  const dead = await chat(gw, body('dead', 'nobody can serve'), auth(RICH));
  assert.ok(dead.status >= 500, `no deployment left: ${dead.status} ${dead.text}`);
  fs.writeFileSync(path.join(dir, 'policy.yaml'), 'version: 1\nroutes: [not a policy\n');
  const reload = await request(gw.url + '/admin/reload', { method: 'POST' });
  assert.notEqual(reload.status, 200, 'an invalid policy is refused');
}

// Polls /metrics until the fake Prometheus feed has counted both an ok and an error round.
async function scrapeWithFeedRounds() {
  for (let i = 0; i < 100; i++) {
    const m = await scrape(gw);
    const feed = m.samples.filter((x) => x.name === 'gateway_prometheus_feed_total' && x.value > 0).map((x) => x.labels.result);
    if (feed.includes('ok') && feed.includes('error')) return m;
    await sleep(100);
  }
  throw new Error('the Prometheus feed did not count an ok and an error round within 10 s');
}

function deployFileExpressions() {
  const files = [
    ...fs.readdirSync(path.join(REPO, 'deploy', 'grafana')).filter((f) => f.endsWith('.json')).map((f) => path.join('deploy', 'grafana', f)),
    path.join('deploy', 'prometheus', 'alerts.yml'),
  ];
  return files.flatMap((f) => promqlExpressions(f, fs.readFileSync(path.join(REPO, f), 'utf8')).map((expr) => ({ file: f, expr })));
}

test('every metric, label and matcher value the dashboard and alerts use is exported', async () => {
  await driveTraffic();
  const { samples } = await scrapeWithFeedRounds();
  const exprs = deployFileExpressions();
  assert.ok(exprs.length >= 15, `expressions found: ${exprs.length}`);
  const missing = [];
  for (const { file, expr } of exprs) {
    const uses = promqlUses(expr);
    assert.ok(uses.metrics.length > 0, `${file}: no metric name parsed from ${expr}`);
    const mine = samples.filter((s) => uses.metrics.includes(s.name));
    for (const name of uses.metrics) if (!samples.some((s) => s.name === name)) missing.push(`${file}: metric ${name} has no samples (${expr})`);
    for (const label of uses.labels) if (!mine.some((s) => label in s.labels)) missing.push(`${file}: label ${label} on none of ${uses.metrics} (${expr})`);
    for (const d of uses.derived) {
      const re = new RegExp(`^(?:${d.regex})$`);
      if (!mine.some((s) => re.test(s.labels[d.from] ?? ''))) missing.push(`${file}: label_replace regex "${d.regex}" matches no ${d.from} of ${uses.metrics} (${expr})`);
    }
    for (const m of uses.matchers) {
      const re = m.op.includes('~') ? new RegExp(`^(?:${m.value})$`) : null;
      const hit = mine.some((s) => (re ? re.test(s.labels[m.label] ?? '') : s.labels[m.label] === m.value));
      if ((m.op === '=' || m.op === '=~') && !hit) missing.push(`${file}: no sample with ${m.label}${m.op}"${m.value}" (${expr})`);
    }
  }
  assert.deepEqual(missing, []);
});

test('the name check itself fails on a name the gateway does not export', async () => {
  const { samples } = await scrape(gw);
  const uses = promqlUses('sum by (deployment) (rate(gateway_no_such_metric_total{outcome="ok"}[5m]))');
  assert.deepEqual(uses.metrics, ['gateway_no_such_metric_total']);
  assert.deepEqual(uses.labels.sort(), ['deployment', 'outcome']);
  assert.ok(!samples.some((s) => s.name === uses.metrics[0]));
  // A label made by label_replace is not required on the samples, but its source label is, and the
  // regex must match one of its values: a regex that matches no deployment id is caught.
  const made = promqlUses('sum by (vendor) (label_replace(rate(gateway_cost_usd_total[5m]), "vendor", "$1", "deployment", "nomatch-(.*)"))');
  assert.deepEqual(made.metrics, ['gateway_cost_usd_total']);
  assert.deepEqual(made.labels, ['deployment']);
  assert.deepEqual(made.derived, [{ label: 'vendor', from: 'deployment', regex: 'nomatch-(.*)' }]);
  const re = new RegExp(`^(?:${made.derived[0].regex})$`);
  assert.ok(!samples.some((s) => s.name === 'gateway_cost_usd_total' && re.test(s.labels.deployment)));
});

test('the savings counters agree with the baseline the policy states', async () => {
  const { samples } = await scrape(gw);
  const saved = samples.find((s) => s.name === 'gateway_cost_saved_usd_total' && s.labels.tenant === 'rich');
  const base = samples.find((s) => s.name === 'gateway_cost_baseline_usd_total' && s.labels.tenant === 'rich');
  const cost = samples.filter((s) => s.name === 'gateway_cost_usd_total' && s.labels.tenant === 'rich').reduce((a, s) => a + s.value, 0);
  assert.ok(saved && base, 'both savings series exist for the tenant that spent');
  // Every route's baseline is three times the deployments' price: a third of it was spent, two thirds saved.
  assert.ok(Math.abs(base.value - 3 * cost) < 1e-9, `baseline ${base.value} vs 3 x cost ${cost}`);
  assert.ok(Math.abs(saved.value - 2 * cost) < 1e-9, `saved ${saved.value} vs 2 x cost ${cost}`);
});
