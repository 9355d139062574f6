// Budgets and rate limits shared by two gateway replicas through a real redis-server:
// `state: {mode: redis, redis: {host, port}, fail_mode}`.
//
// Replica A runs fail_mode open, replica B fail_mode closed; both share one Redis (lib/redis.mjs:
// Debian redis-server on a free loopback port, no persistence) and the same tenants:
//   rpmco     limits.rpm 20          concurrent load across A and B admits exactly 20 in the minute
//   budgetco  daily $0.05 hard       concurrent load across A and B spends at most $0.05 in total
//   fmco      no limits              during a Redis outage: A serves (200), B refuses (503)
//   recco     limits.rpm 3           unlimited during the outage on A (fail open), 429 again after
//                                    Redis comes back, with no action from the operator
// Prices: a policy catalog deployment `pa/m` (input 10, output 20 USD per 1M tokens) on a fake
// upstream returning usage {prompt 1, completion 200}: $0.00401 per request, max_tokens 200, so the
// worst case the gateway reserves (estimated prompt + 200 output tokens, ~$0.0041) is never below
// the actual cost and a shared budget has no reason to be overshot at all.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';
import { startGateway, defaultConfig, tmpDir, chat, openAiError, userMsg, sleep } from './lib/gateway.mjs';
import { startUpstream, pricedPolicy } from './lib/routing_upstream.mjs';
import { scrape } from './lib/prometheus.mjs';
import { startRedis } from './lib/redis.mjs';

const USAGE = { prompt_tokens: 1, completion_tokens: 200, total_tokens: 201 };
const COST = 0.00401;
const BUDGET = 0.05;
const RPM = 20;
const POLICY = pricedPolicy('state-redis');
const sha = (k) => crypto.createHash('sha256').update(k).digest('hex');
const KEYS = Object.fromEntries(['rpmco', 'budgetco', 'fmco', 'recco'].map((t) => [t, `gwk_${t}_${crypto.randomBytes(10).toString('hex')}`]));
const H = (t) => ({ authorization: `Bearer ${KEYS[t]}` });

let redis, up, A, B;

async function replica(failMode) {
  const dir = tmpDir('gw-state-redis-');
  fs.writeFileSync(path.join(dir, 'policy.yaml'), POLICY);
  const c = defaultConfig();
  delete c.models;
  c.providers = { pa: { type: 'openai_compatible', base_url: up.baseUrl } };
  c.policy = path.join(dir, 'policy.yaml');
  c.routing = { policy_poll_ms: 0 };
  c.tenants = {
    rpmco: { keys: [{ id: 'r', sha256: sha(KEYS.rpmco) }], limits: { rpm: RPM } },
    budgetco: { keys: [{ id: 'b', sha256: sha(KEYS.budgetco) }], budget: { daily_usd: BUDGET, hard: true } },
    fmco: { keys: [{ id: 'f', sha256: sha(KEYS.fmco) }] },
    recco: { keys: [{ id: 'c', sha256: sha(KEYS.recco) }], limits: { rpm: 3 } },
  };
  c.state = { mode: 'redis', redis: { host: '127.0.0.1', port: redis.port, timeout_ms: 200 }, fail_mode: failMode };
  return startGateway({ config: c });
}

before(async () => {
  redis = await startRedis();
  up = await startUpstream({ name: 'pa', usage: USAGE });
  [A, B] = await Promise.all([replica('open'), replica('closed')]);
});
after(async () => {
  await up?.close();
  await A?.stop();
  await B?.stop();
  await redis?.stop('SIGTERM');
});

const body = () => ({ model: 'priced', messages: userMsg('shared limits'), max_tokens: 200 });

// n requests for tenant t, alternating replicas, all at once.
async function burst(t, n) {
  return Promise.all(
    Array.from({ length: n }, async (_, i) => {
      const gw = i % 2 ? B : A;
      const r = await chat(gw, body(), { headers: H(t), timeoutMs: 10000 });
      return { replica: i % 2 ? 'B' : 'A', status: r.status, code: r.json?.error?.code, cost: r.headers['x-gateway-cost-usd'], res: r };
    }),
  );
}

describe('shared limits (Redis up)', () => {
  test(`rpm ${RPM} shared by both replicas: 60 concurrent requests (30 each) admit exactly ${RPM}`, async () => {
    // Sliding windows (gateway/state/limits.h): exactly the limit wherever the burst falls, even across a
    // UTC minute boundary.
    const res = await burst('rpmco', 60);
    const ok = res.filter((r) => r.status === 200);
    const refused = res.filter((r) => r.status === 429);
    console.log(`# rpm: admitted ${ok.length} (A ${ok.filter((r) => r.replica === 'A').length}, B ${ok.filter((r) => r.replica === 'B').length}), refused ${refused.length}, other ${res.length - ok.length - refused.length}; margin ${ok.length - RPM}`);
    assert.equal(ok.length + refused.length, 60, `only 200 or 429: ${res.map((r) => r.status)}`);
    for (const r of refused) assert.equal(r.code, 'rate_limit_rpm');
    openAiError(assert, refused[0].res, 429);
    assert.equal(ok.length, RPM, 'exactly the limit across both replicas');
    // Which replica admitted how many is up to timing (one may take all 20 on a busy machine); that
    // both count against one window is not: each refuses the next request, whoever used the limit.
    for (const gw of [A, B]) {
      const r = await chat(gw, body(), { headers: H('rpmco'), timeoutMs: 10000 });
      assert.equal(r.status, 429, `${gw === A ? 'A' : 'B'} sees the shared window: ${r.text?.slice(0, 200)}`);
      assert.equal(r.json?.error?.code, 'rate_limit_rpm');
    }
  });

  test(`hard daily budget $${BUDGET} shared: concurrent load across both replicas spends at most the budget`, async () => {
    const res = await burst('budgetco', 40);
    const ok = res.filter((r) => r.status === 200);
    const refused = res.filter((r) => r.status === 429);
    const spent = ok.reduce((a, r) => a + Number(r.cost), 0);
    console.log(`# budget: admitted ${ok.length} (A ${ok.filter((r) => r.replica === 'A').length}, B ${ok.filter((r) => r.replica === 'B').length}), spent $${spent.toFixed(5)} of $${BUDGET}; if each replica kept its own budget they would admit ~${Math.floor(BUDGET / 0.0041)} each`);
    assert.equal(ok.length + refused.length, 40, `only 200 or 429: ${res.map((r) => r.status)}`);
    for (const r of ok) assert.equal(Number(r.cost), COST);
    for (const r of refused) assert.equal(r.code, 'budget_exceeded');
    assert.match(refused[0].res.json.error.message, /daily budget of \$0\.05 for tenant 'budgetco'/);
    assert.ok(spent <= BUDGET + 1e-12, `total spend $${spent} <= $${BUDGET} (enforced as one budget)`);
    assert.ok(spent >= BUDGET - 2 * 0.0041, `budget used up, not over-refused: $${spent}`);
    // Afterwards both replicas refuse it.
    for (const gw of [A, B]) assert.equal((await chat(gw, body(), { headers: H('budgetco') })).status, 429);
  });
});

describe('Redis outage and recovery', () => {
  let openAdmittedDuringOutage = 0;
  test('Redis stopped: fail_mode open keeps serving (limits not enforced), fail_mode closed answers 503 OpenAI-shaped; both recover by themselves', async () => {
    // Warm: both replicas talk to Redis.
    assert.equal((await chat(A, body(), { headers: H('fmco') })).status, 200);
    assert.equal((await chat(B, body(), { headers: H('fmco') })).status, 200);

    await redis.stop('SIGKILL');
    const tDown = performance.now();

    // Open: served; recco's 3 rpm is not enforced while Redis is away.
    for (let i = 0; i < 5; i++) {
      const r = await chat(A, body(), { headers: H('recco'), timeoutMs: 5000 });
      assert.equal(r.status, 200, `fail open, request ${i}: ${r.status} ${r.text}`);
      assert.ok(r.ms < 2000, `bounded latency with Redis down: ${r.ms.toFixed(0)} ms`);
      openAdmittedDuringOutage++;
    }
    const f = await chat(A, body(), { headers: H('fmco') });
    assert.equal(f.status, 200);
    openAdmittedDuringOutage++;
    assert.match(A.stderr, /fail open/, 'the outage is logged');

    // Closed: 503, OpenAI-shaped, with Retry-After; the upstream is not called.
    const n0 = up.requests.length;
    const c = await chat(B, body(), { headers: H('fmco'), timeoutMs: 5000 });
    const e = openAiError(assert, c, 503);
    console.log(`# fail closed: ${JSON.stringify(e)} in ${c.ms.toFixed(0)} ms`);
    assert.equal(e.code, 'limits_unavailable');
    assert.ok(Number(c.headers['retry-after']) >= 1, 'Retry-After on the 503');
    assert.equal(up.requests.length, n0);

    // Keep both replicas busy through ~1.5 s of outage (reconnect back-off grows meanwhile).
    let closedRefused = 0;
    for (const until = performance.now() + 1500; performance.now() < until; ) {
      const [ra, rb] = await Promise.all([chat(A, body(), { headers: H('fmco'), timeoutMs: 5000 }), chat(B, body(), { headers: H('fmco'), timeoutMs: 5000 })]);
      assert.equal(ra.status, 200, `open replica during the outage: ${ra.text}`);
      openAdmittedDuringOutage++;
      assert.equal(rb.status, 503, `closed replica during the outage: ${rb.text}`);
      closedRefused++;
      await sleep(100);
    }
    assert.ok(closedRefused >= 5);

    // Redis back on the same port (empty: no persistence).
    await redis.restart();
    const tUp = performance.now();
    console.log(`# Redis down for ${((tUp - tDown) / 1000).toFixed(1)} s`);

    // Closed replica: serves again within a bounded time.
    let bBack = null;
    for (const deadline = performance.now() + 12000; performance.now() < deadline; ) {
      const r = await chat(B, body(), { headers: H('fmco'), timeoutMs: 5000 });
      if (r.status === 200) {
        bBack = performance.now() - tUp;
        break;
      }
      assert.equal(r.status, 503, r.text);
      await sleep(200);
    }
    assert.ok(bBack !== null, 'fail-closed replica serves again within 12 s of Redis returning');

    // Open replica: recco's 3 rpm enforced again (429) within a bounded time.
    let admittedAfter = 0;
    let aBack = null;
    let refusal = null;
    for (const deadline = performance.now() + 12000; performance.now() < deadline; ) {
      const r = await chat(A, body(), { headers: H('recco'), timeoutMs: 5000 });
      if (r.status === 429) {
        aBack = performance.now() - tUp;
        refusal = r;
        break;
      }
      assert.equal(r.status, 200, r.text);
      admittedAfter++;
      await sleep(100);
    }
    console.log(`# recovery: closed replica serving ${bBack?.toFixed(0)} ms after Redis returned; open replica enforcing rpm again ${aBack?.toFixed(0)} ms after (admitted ${admittedAfter} recco requests after the restart before the 429; limit 3)`);
    assert.ok(refusal, 'the open replica enforces limits again within 12 s of Redis returning');
    assert.equal(refusal.json?.error?.code, 'rate_limit_rpm');
    // Shared again: B sees the same counter.
    const rb = await chat(B, body(), { headers: H('recco') });
    assert.equal(rb.status, 429, `B shares recco's window: ${rb.text}`);
    assert.match(A.stderr, /enforced again/, 'recovery is logged');
  });

  test('fail-open admissions during the outage are counted on /metrics', async () => {
    const { samples } = await scrape(A);
    const hit = samples.filter((s) => /fail_?open|redis|limits_unavailable|degraded/i.test(s.name + JSON.stringify(s.labels)));
    console.log(`# replica A samples about redis/fail-open: ${JSON.stringify(hit)}`);
    assert.ok(hit.some((s) => s.value >= openAdmittedDuringOutage), `a metric counts the ${openAdmittedDuringOutage} requests admitted unchecked (fail open)`);
  });
});
