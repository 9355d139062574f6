// Redis restarted empty (no persistence) must not reset any budget: two replicas sharing one
// ledger and one Redis; after the restart the first replica to reserve re-seeds the tenant's spend
// counters from the ledger (once: a marker key set in the same Lua step), and both keep refusing.
//
// Prices: pa/m (input 10, output 20 USD per 1M) with usage {1000, 200}: $0.014 per request; the
// worst case reserved is ~$0.004 (a few prompt tokens + max_tokens 200). Daily hard budget $0.03:
// two requests are admitted (0 + 0.004, 0.014 + 0.004), the third is refused (0.028 + 0.004 > 0.03).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';
import { startGateway, defaultConfig, tmpDir, chat, openAiError, userMsg, sleep } from './lib/gateway.mjs';
import { startUpstream, pricedPolicy } from './lib/routing_upstream.mjs';
import { startRedis } from './lib/redis.mjs';

const USAGE = { prompt_tokens: 1000, completion_tokens: 200, total_tokens: 1200 };
const KEY = 'gwk_reseed_' + crypto.randomBytes(10).toString('hex');
const H = { authorization: `Bearer ${KEY}` };

let redis, up, A, B, ledgerPath;

async function replica() {
  const dir = tmpDir('gw-state-reseed-');
  fs.writeFileSync(path.join(dir, 'policy.yaml'), pricedPolicy('state-reseed'));
  const c = defaultConfig();
  delete c.models;
  c.providers = { pa: { type: 'openai_compatible', base_url: up.baseUrl } };
  c.policy = path.join(dir, 'policy.yaml');
  c.routing = { policy_poll_ms: 0 };
  c.tenants = { seedco: { keys: [{ id: 's', sha256: crypto.createHash('sha256').update(KEY).digest('hex') }], budget: { daily_usd: 0.03, hard: true } } };
  c.state = { mode: 'redis', redis: { host: '127.0.0.1', port: redis.port, timeout_ms: 500 }, fail_mode: 'closed', ledger_path: ledgerPath };
  return startGateway({ config: c });
}

before(async () => {
  redis = await startRedis();
  up = await startUpstream({ name: 'pa', usage: USAGE });
  ledgerPath = path.join(tmpDir('gw-state-reseed-ledger-'), 'ledger.db');
  A = await replica();
  B = await replica(); // the same ledger file: the fleet's one ledger
});
after(async () => {
  await A?.stop();
  await B?.stop();
  await up?.close();
  await redis?.stop('SIGTERM');
});

const body = () => ({ model: 'priced', messages: userMsg('reseed'), max_tokens: 200 });
const dayKey = () => `gw:{seedco}:spent:d:${Math.floor(Date.now() / 86400000)}`;

test('Redis restarted empty: the spend counters are re-seeded from the ledger once, both replicas keep refusing', async () => {
  // Reconcile runs after the response: wait (bounded) for each to land before the next request.
  const spentIs = async (v) => {
    const end = performance.now() + 10000;
    while ((await redis.cli('GET', dayKey())).stdout !== v && performance.now() < end) await sleep(20);
    return (await redis.cli('GET', dayKey())).stdout;
  };
  assert.equal((await chat(A, body(), { headers: H })).status, 200);
  assert.equal(await spentIs('14000000000'), '14000000000');
  assert.equal((await chat(B, body(), { headers: H })).status, 200);
  assert.equal(await spentIs('28000000000'), '28000000000');
  const third = await chat(A, body(), { headers: H });
  openAiError(assert, third, 429);
  assert.equal(third.json.error.code, 'budget_exceeded');
  assert.equal((await redis.cli('GET', dayKey())).stdout, '28000000000');

  await redis.restart();
  assert.equal((await redis.cli('DBSIZE')).stdout, '0', 'Redis lost everything');
  // Bounded wait for a replica's connection to come back (fail closed answers 503 meanwhile).
  const afterReconnect = async (gw) => {
    let r;
    const until = performance.now() + 10000;
    do {
      r = await chat(gw, body(), { headers: H });
      if (r.status !== 503) break;
      await sleep(100);
    } while (performance.now() < until);
    return r;
  };
  const r = await afterReconnect(B);
  openAiError(assert, r, 429);
  assert.equal(r.json.error.code, 'budget_exceeded', 'the ledger spend is back in Redis: still over budget');
  const a = await afterReconnect(A);
  openAiError(assert, a, 429);
  assert.equal(a.json.error.code, 'budget_exceeded');
  assert.equal((await redis.cli('GET', dayKey())).stdout, '28000000000', 'seeded with exactly the ledger spend');
  const seeded = [A, B].filter((g) => /spend counters seeded from the ledger \(28000000000 today/.test(g.stderr));
  assert.equal(seeded.length, 1, 'seeded once, by whichever replica came first');
  assert.equal(up.requests.length, 2, 'nothing refused reached the upstream');
});
