// One run: fakes, the real gateway with a generated config and policy, the trace replayed open-loop
// on the compressed clock, then the gateway's own figures (/admin/spend?savings=1, /metrics, ledger).

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import crypto from 'node:crypto';
import { startGateway, defaultConfig, tmpDir, request, chatStream, sleep, run } from '../../../node/lib/gateway.mjs';
import { scrape } from '../../../node/lib/prometheus.mjs';
import { startFakes, marker, KEYS } from './fakes.mjs';
import { readYaml, writeYaml } from './model.mjs';

const REQUEST_TIMEOUT_MS = 30_000; // compressed (wall) time; a stuck request is a failure, not a hang
const SETTLE_TIMEOUT_MS = 15_000; // the ledger's writer catching up after the last answer
const ADMIN_KEY = crypto.randomBytes(16).toString('hex');
const live = new Set(); // gateways to kill if this process exits mid-run
const tmpRoots = new Set(); // the harness's temporary roots (configs, ledgers), removed at exit

process.on('exit', () => {
  for (const gw of live) gw.proc.kill('SIGKILL');
  for (const d of tmpRoots) fs.rmSync(d, { recursive: true, force: true });
});

// The gateway's estimate is bytes/4 + 4 per message + 3 (core::estimate_prompt_tokens): pad the
// marker with 4-byte words to the trace's count.
export function prompt(inTok, outTok) {
  const m = marker(inTok, outTok);
  const words = Math.max(0, Math.round((4 * (inTok - 7) - m.length) / 4));
  return m + ' abc'.repeat(words);
}

// The policy file with a GPT-class baseline as every route's default.
function writePolicy(dir, policyPath, baseline) {
  const p = readYaml(policyPath);
  p.defaults = { ...(p.defaults ?? {}), baseline: { price: baseline } };
  const out = path.join(dir, 'policy.yaml');
  fs.writeFileSync(out, writeYaml(p));
  return out;
}

function gatewayConfig(dir, providers, policyPath) {
  const c = defaultConfig();
  delete c.models;
  c.providers = providers;
  c.policy = policyPath;
  c.routing = { policy_poll_ms: 0 };
  c.state = { ledger_path: path.join(dir, 'ledger.db') };
  c.server.admin_key_env = 'REPLAY_ADMIN_KEY';
  c.server.access_log = 'off';
  c.server.max_connections = 4000;
  Object.assign(c.upstream, { first_byte_timeout_ms: 10_000, stream_idle_timeout_ms: 10_000, total_timeout_ms: 25_000 });
  return c;
}

const delta = (chunk) => chunk.choices?.[0]?.delta ?? {};
async function one(gw, row, t0) {
  const body = { model: 'auto', stream: true, stream_options: { include_usage: true }, messages: [{ role: 'user', content: prompt(row.in, row.out) }] };
  const sent = performance.now();
  const rec = { t_ms: row.t_ms, source: row.source, in: row.in, out: row.out, sent_ms: sent - t0, ok: false };
  try {
    const r = await chatStream(gw, body, { timeoutMs: REQUEST_TIMEOUT_MS });
    rec.status = r.status;
    rec.deployment = r.headers?.['x-gateway-deployment'];
    rec.attempts = Number(r.headers?.['x-gateway-attempts'] ?? 0);
    const first = r.chunks.find((c) => delta(c).content || delta(c).reasoning_content);
    const finished = r.chunks.some((c) => c.choices?.[0]?.finish_reason);
    rec.ok = r.status === 200 && r.done && finished && r.errors.length === 0 && !r.error;
    if (first) rec.ttft = first.__t - sent;
    if (r.events.length) rec.total = r.events.at(-1).t - sent;
    if (!rec.ok) rec.error = r.error?.message ?? r.errors[0]?.error?.message ?? r.raw.slice(0, 200);
  } catch (e) {
    rec.error = e.message;
  }
  return rec;
}

// Open loop: each request leaves at its trace time / factor, whatever the earlier ones are doing.
async function replay(gw, trace, clock, factor) {
  const pending = [];
  let lagMax = 0;
  for (const row of trace) {
    const due = clock.t0 + row.t_ms / factor;
    const wait = due - performance.now();
    if (wait > 1) await sleep(wait);
    lagMax = Math.max(lagMax, performance.now() - due);
    pending.push(one(gw, row, clock.t0));
  }
  return { results: await Promise.all(pending), lagMax };
}

const admin = { authorization: `Bearer ${ADMIN_KEY}` };
async function spend(gw) {
  const r = await request(gw.url + '/admin/spend?savings=1&by=tenant', { headers: admin });
  if (r.status !== 200) throw new Error(`/admin/spend -> ${r.status}: ${r.text.slice(0, 300)}`);
  return r.json.total;
}

// The ledger's writer is asynchronous: wait until its count stops moving (bounded).
async function settledSpend(gw) {
  const end = performance.now() + SETTLE_TIMEOUT_MS;
  let last = await spend(gw);
  for (;;) {
    await sleep(500);
    const now = await spend(gw);
    if (now.requests === last.requests || performance.now() > end) return now;
    last = now;
  }
}

async function ledgerRows(dir) {
  const db = path.join(dir, 'ledger.db');
  const q = await run('sqlite3', ['-json', db, 'SELECT ts_ms, deployment, cost_pico, baseline_pico FROM spend ORDER BY ts_ms'], { timeoutMs: 20_000 });
  if (q.code !== 0) throw new Error(`sqlite3 on the ledger: ${q.stderr}`);
  return JSON.parse(q.stdout || '[]');
}

function metricSum(samples, name) {
  return samples.filter((s) => s.name === name).reduce((a, s) => a + s.value, 0);
}

// Runs one configuration; resolves the raw figures (report.mjs turns them into tables).
export async function runOne({ name, policyFile, policyPath, scenario, upstreams, trace, factor, seed, baseline }) {
  const clock = { t0: null, traceMs: () => (clock.t0 === null ? 0 : (performance.now() - clock.t0) * factor) };
  const fakes = await startFakes(upstreams, { clock, scenario, factor, seed });
  const dir = tmpDir('gw-replay-');
  tmpRoots.add(path.dirname(dir));
  let gw;
  try {
    const config = gatewayConfig(dir, fakes.providers, writePolicy(dir, policyPath, baseline));
    gw = await startGateway({ config, env: { ...KEYS, REPLAY_ADMIN_KEY: ADMIN_KEY } });
    live.add(gw);
    const loadAvg = [os.loadavg()[0]];
    const wallT0 = Date.now();
    clock.t0 = performance.now();
    const { results, lagMax } = await replay(gw, trace, clock, factor);
    const wallMs = performance.now() - clock.t0;
    loadAvg.push(os.loadavg()[0]);
    const total = await settledSpend(gw);
    const { samples } = await scrape(gw);
    const counters = { saved_usd: metricSum(samples, 'gateway_cost_saved_usd_total'), baseline_usd: metricSum(samples, 'gateway_cost_baseline_usd_total') };
    const rows = (await ledgerRows(dir)).map((r) => ({ ...r, t_ms: (r.ts_ms - wallT0) * factor }));
    return { name, policyFile, scenario, factor, results, lagMax, wallMs, loadAvg, total, counters, rows, unmatched: [...fakes.unmatched], plannedTtft: fakes.plannedTtft, upstreamRequests: fakes.requests() };
  } finally {
    if (gw) {
      await gw.stop().catch((e) => console.error(`replay ${name}: ${e.message}`));
      live.delete(gw);
    }
    await fakes.close();
    for (const d of [dir, gw?.dir]) if (d) fs.rmSync(d, { recursive: true, force: true });
  }
}
