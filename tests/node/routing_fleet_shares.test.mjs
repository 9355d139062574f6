// Share caps across a fleet (gateway/state/share_sync.h): two replicas sharing one real Redis,
// `max_share: {vendor: 0.5}` over three vendors, traffic alternating between the replicas.
//
// The traffic makes a per-replica cap fail: replica B's requests carry a prompt only `fa` (the
// cheapest, with the large context window) can hold, so half the fleet's traffic goes to fa
// whatever any cap says; replica A's prompts fit everywhere. A replica capping on its own counts
// would still send about half of A's traffic to fa (fleet share about 0.75); capping on the fleet's
// totals, A sends fa almost nothing once the fleet's fa share is at 0.5.
//
// Margin, and why it is deterministic: requests are sent one at a time in batches of K = 20 (10 per
// replica, alternating). After each batch the test waits until B, then A, has completed two sync
// rounds (gateway_share_fleet_syncs_total advancing by 2: the second round began after the batch),
// so at the start of every batch A's view is exact. Within a batch A misses at most B's 10 requests
// of that batch, all to fa: A's view of fa's excess over half the traffic is short by at most
// 10 / 2 = 5 requests, so fa's excess after A's last fa is at most 5 + 1, plus 0.5 for a request of
// B after it. Over N = 300 requests: 0.5 <= share(fa) <= 0.5 + 6.5 / 300 (~0.522); B alone keeps it
// at or above 0.5. state.redis.timeout_ms is 2 s, so fleet totals stay valid (max age: 3 intervals +
// 4 timeouts) however slowly the machine runs the sync thread.
//
// Redis killed mid-run: each replica counts a failed round, logs it once, and caps on its own
// window (explain says shares_from local; A, whose own window holds little fa, sends its requests
// there), with no request failing or waiting. Redis restarted empty: the counts made during the
// outage reach it (the fleet's window holds exactly the outage batch), explain says fleet again,
// and A, seeing fa far over its cap fleet-wide, sends it nothing.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { chat, userMsg, waitFor } from './lib/gateway.mjs';
import { startUpstream, startPolicyGateway, explain } from './lib/routing_upstream.mjs';
import { scrape, metricValue } from './lib/prometheus.mjs';
import { startRedis } from './lib/redis.mjs';

const entry = (ref, price, ctx) =>
  `  - {ref: ${ref}/m, context_window: ${ctx}, price: {input: ${price}, output: ${price}}, latency_prior: {ttft_ms: 20, tokens_per_second: 1000}}`;
const POLICY = `
version: 1
name: fleet-shares
catalog:
${entry('fa', 1, 100000)}
${entry('fb', 2, 1000)}
${entry('fc', 3, 1000)}
routes:
  - name: fleet-cap
    match: {model: fleet-cap}
    max_share: {vendor: 0.5, window: 10m, min_requests: 1}
    candidates: [fa/m, fb/m, fc/m]
`;
const K = 20;
const N = 300;
const MARGIN = (K / 4 + 1.5) / N;
const SHORT = 'fits anywhere';
const LONG = 'only fa has room for this prompt. '.repeat(400); // ~13,600 characters, over fb's and fc's 1,000 tokens
const FA = 'fa@default/m';

const up = {};
let redis, A, B;

async function startReplica() {
  const providers = {};
  for (const n of ['fa', 'fb', 'fc']) providers[n] = { type: 'openai_compatible', base_url: up[n].baseUrl };
  return startPolicyGateway({
    policy: POLICY,
    providers,
    routing: { policy_poll_ms: 0 },
    state: { mode: 'redis', redis: { host: '127.0.0.1', port: redis.port, timeout_ms: 2000 }, shares: { sync_interval_ms: 20 } },
  });
}

before(async () => {
  for (const n of ['fa', 'fb', 'fc']) up[n] = await startUpstream({ name: n });
  redis = await startRedis();
  [A, B] = await Promise.all([startReplica(), startReplica()]);
});

after(async () => {
  await A?.stop();
  await B?.stop();
  await redis?.stop();
  await Promise.all(Object.values(up).map((u) => u.close()));
});

const fleetMetric = async (gw, name) => metricValue((await scrape(gw)).samples, name, {});

// Two sync rounds of `gw` completed from now: the second began after everything sent so far.
async function twoSyncs(gw, name) {
  const start = await fleetMetric(gw, 'gateway_share_fleet_syncs_total');
  assert.ok(start !== undefined, `${name} exports gateway_share_fleet_syncs_total`);
  await waitFor(`${name} syncs twice`, async () => (await fleetMetric(gw, 'gateway_share_fleet_syncs_total')) >= start + 2, 15000, 10);
}
const settle = async () => {
  await twoSyncs(B, 'B');
  await twoSyncs(A, 'A');
};

// One batch: K requests, A and B in turn. Returns each replica's deployments, in order.
async function batch() {
  const out = { A: [], B: [] };
  for (let i = 0; i < K; i++) {
    const [gw, name, text] = i % 2 === 0 ? [A, 'A', SHORT] : [B, 'B', LONG];
    const r = await chat(gw, { model: 'fleet-cap', messages: userMsg(text), max_tokens: 16 });
    assert.equal(r.status, 200, `${name}: ${r.status} ${r.text.slice(0, 300)}`);
    out[name].push(r.headers['x-gateway-deployment']);
  }
  return out;
}

const diversify = async (gw, text = SHORT) => (await explain(gw, { model: 'fleet-cap', messages: userMsg(text), max_tokens: 16 })).diversify;

describe('max_share across two replicas sharing Redis', () => {
  const served = {};
  let total = 0;
  const count = (b) => {
    for (const d of [...b.A, ...b.B]) served[d] = (served[d] ?? 0) + 1;
    total += K;
  };

  test(`${N} requests alternating between the replicas: fa's fleet share within [0.5, 0.5 + ${MARGIN.toFixed(4)}]`, async () => {
    await settle();
    for (let i = 0; i < N / K; i++) {
      const b = await batch();
      assert.ok(b.B.every((d) => d === FA), `B's long prompts fit only fa: ${b.B}`);
      count(b);
      await settle();
    }
    const share = (served[FA] ?? 0) / total;
    assert.ok(share >= 0.5 && share <= 0.5 + MARGIN, `fa share ${share} over ${total}: ${JSON.stringify(served)}`);
    // Both replicas see the same fleet-wide window, and A's explain reads it.
    for (const [gw, name] of [[A, 'A'], [B, 'B']]) {
      const d = await diversify(gw);
      assert.equal(d.shares_from, 'fleet', name);
      assert.equal(d.window_requests, total, `${name}: ${JSON.stringify(d)}`);
      const fa = d.shares.find((s) => s.kind === 'vendor' && s.key === 'fa');
      assert.ok(Math.abs(fa.share - share) < 1e-6, `${name} sees ${fa.share}, served ${share}`); // explain prints 6 digits
    }
    assert.equal(await fleetMetric(A, 'gateway_share_fleet_sync_failures_total'), 0);
    assert.equal(await fleetMetric(A, 'gateway_share_fleet_sync_failing'), 0);
  });

  test('Redis killed: local counts, no failed or stalled request; restarted empty: the outage counts reach it', async () => {
    await redis.stop();
    for (const [gw, name] of [[A, 'A'], [B, 'B']])
      await waitFor(`${name} reports the share sync failing`, async () => (await fleetMetric(gw, 'gateway_share_fleet_sync_failing')) === 1);
    const local = await diversify(A);
    assert.equal(local.shares_from, 'local');
    assert.equal(local.window_requests, total / 2, 'A caps on its own window: its own requests');
    const age0 = await fleetMetric(A, 'gateway_share_fleet_sync_age_seconds');
    const outage = await batch();
    // A's own window holds little fa (it served fa only while the fleet was short of it): on its
    // own counts fa is far under its cap, so every one of A's requests goes there.
    assert.deepEqual(outage.A, Array(K / 2).fill(FA), JSON.stringify(outage.A));
    assert.ok((await fleetMetric(A, 'gateway_share_fleet_sync_age_seconds')) > age0, 'no successful sync: the age grows');
    assert.ok((await fleetMetric(A, 'gateway_share_fleet_sync_failures_total')) >= 1);
    assert.match(A.stderr, /share caps: fleet sync through Redis failing \(.*\); capping on this replica's own counts/);

    await redis.restart();
    for (const [gw, name] of [[A, 'A'], [B, 'B']])
      await waitFor(`${name} reports the share sync back`, async () => (await fleetMetric(gw, 'gateway_share_fleet_sync_failing')) === 0);
    await twoSyncs(A, 'A');
    await settle();
    const back = await diversify(A);
    assert.equal(back.shares_from, 'fleet');
    assert.equal(back.window_requests, K, `the fleet's window is the outage batch: ${JSON.stringify(back)}`);
    assert.equal(back.shares.find((s) => s.key === 'fa').share, 1);
    assert.match(A.stderr, /share caps: fleet sync through Redis restored/);
    const after = await batch();
    assert.ok(!after.A.includes(FA), `fleet-wide fa is over its cap: A sends it nothing (${after.A})`);
  });
});
