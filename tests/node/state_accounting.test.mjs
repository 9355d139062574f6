// Spend accounting as a hostile tenant would test it: every attempt that may have consumed tokens
// has exactly one ledger row, whatever the client does, and the tenant's budget and the cost
// counter move by the same figure as the ledger.
//
// Setup: the priced catalog deployment pa/m (input 10, output 20 USD per 1M tokens) behind the
// programmable fake (lib/routing_upstream.mjs, scripted answers); tenant `acct` with a daily hard
// budget of $1, tenant `other` for the shared x-request-id case. Rows are read with the sqlite3 CLI
// (table `spend`), found by the client's x-request-id (column client_request_id).
//
// Estimated rows: prompt tokens = the gateway's estimate for the request (ASCII text: (bytes+3)/4
// + 4 per message + 3; core::estimate_prompt_tokens), completion tokens = the tokens relayed to the
// client so far (each 4-letter piece below is one token).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import http from 'node:http';
import crypto from 'node:crypto';
import { startGateway, defaultConfig, tmpDir, toYaml, request, chatStream, userMsg, run, sleep } from './lib/gateway.mjs';
import { startUpstream, pricedPolicy } from './lib/routing_upstream.mjs';
import { scrape, metricValue } from './lib/prometheus.mjs';

const SQLITE = '/usr/bin/sqlite3';
const USAGE = { prompt_tokens: 1000, completion_tokens: 200, total_tokens: 1200 };
const PROVIDER_COST = 14_000_000_000n; // 1000 * 1e7 + 200 * 2e7 pico-dollars
const IN_PICO = 10_000_000n; // $10 per 1M tokens
const OUT_PICO = 20_000_000n; // $20 per 1M tokens
const PROMPT = 'count me';
const EST_PROMPT = Math.floor((Buffer.byteLength(PROMPT) + 3) / 4) + 4 + 3;
const DAILY_USD = 1;
const KEYS = {
  acct: 'gwk_acct_' + crypto.randomBytes(12).toString('hex'),
  other: 'gwk_other_' + crypto.randomBytes(12).toString('hex'),
  tight: 'gwk_tight_' + crypto.randomBytes(12).toString('hex'),
};
const PLAIN = { usage: USAGE, pieces: undefined, pieceDelayMs: 0, cutAfterPieces: undefined, usageDelayMs: 0, usageNever: false, bodyDelayMs: 0, delayMs: 0 };

let up, gw, cfgPath, ledgerPath;

before(async () => {
  assert.ok(fs.existsSync(SQLITE), 'sqlite3 CLI (Debian package sqlite3) needed to read the ledger');
  up = await startUpstream({ name: 'pa', usage: USAGE });
  const dir = tmpDir('gw-state-accounting-');
  fs.writeFileSync(path.join(dir, 'policy.yaml'), pricedPolicy('state-accounting'));
  ledgerPath = path.join(dir, 'ledger.db');
  const c = defaultConfig();
  delete c.models;
  c.providers = { pa: { type: 'openai_compatible', base_url: up.baseUrl } };
  c.policy = path.join(dir, 'policy.yaml');
  c.routing = { policy_poll_ms: 0 };
  const hash = (k) => crypto.createHash('sha256').update(k).digest('hex');
  c.tenants = {
    acct: { keys: [{ id: 'a1', sha256: hash(KEYS.acct) }], budget: { daily_usd: DAILY_USD, hard: true } },
    other: { keys: [{ id: 'o1', sha256: hash(KEYS.other) }], budget: { daily_usd: DAILY_USD, hard: true } },
    tight: { keys: [{ id: 't1', sha256: hash(KEYS.tight) }], limits: { tpm: 100 } },
  };
  c.state = { ledger_path: ledgerPath };
  cfgPath = path.join(dir, 'gateway.yaml');
  fs.writeFileSync(cfgPath, toYaml(c));
  gw = await startGateway({ configPath: cfgPath });
});
after(async () => {
  await gw?.stop();
  await up?.close();
});

const auth = (tenant = 'acct') => ({ authorization: `Bearer ${KEYS[tenant]}` });
const body = (stream, extra = {}) => ({ model: 'priced', messages: userMsg(PROMPT), max_tokens: 200, stream, ...extra });
// The chunk JSON of an SSE event (null for comments, [DONE], or anything else).
const chunkOf = (ev) => {
  try {
    return ev.data && ev.data !== '[DONE]' ? JSON.parse(ev.data) : null;
  } catch {
    return null;
  }
};
const finishes = (ev) => Boolean(chunkOf(ev)?.choices?.[0]?.finish_reason);
const rid = (what) => `acc-${what}-${crypto.randomBytes(4).toString('hex')}`;

async function rows(where) {
  const q = await run(SQLITE, ['-json', ledgerPath, `SELECT * FROM spend WHERE ${where} ORDER BY id`], { timeoutMs: 10000 });
  assert.equal(q.code, 0, q.stderr);
  return q.stdout.trim() ? JSON.parse(q.stdout) : [];
}

// Waits (bounded) until `n` rows carry the client's request id; then returns them.
async function rowsFor(clientId, n = 1, timeoutMs = 10000) {
  const until = performance.now() + timeoutMs;
  let r = [];
  while (performance.now() < until) {
    r = await rows(`client_request_id = '${clientId}'`);
    if (r.length >= n) break;
    await sleep(50);
  }
  return r;
}

// The ledger's spend per tenant when the running gateway started: its cost counter counts from 0.
const spentAtStart = {};
async function ledgerSpent(tenant) {
  return (await rows(`tenant = '${tenant}'`)).reduce((a, r) => a + BigInt(r.cost_pico), 0n);
}

// The budget left and the cost counter agree with the ledger (polled: they settle after the row).
async function assertBudgetMatchesLedger(tenant = 'acct') {
  const until = performance.now() + 10000;
  let left, counted, spent;
  while (performance.now() < until) {
    const all = await rows(`tenant = '${tenant}'`);
    spent = all.reduce((a, r) => a + BigInt(r.cost_pico), 0n);
    const { samples } = await scrape(gw);
    left = metricValue(samples, 'gateway_budget_remaining_usd', { tenant, period: 'daily' });
    counted = metricValue(samples, 'gateway_cost_usd_total', { tenant }) ?? 0;
    const want = DAILY_USD - Number(spent) / 1e12;
    const sinceStart = Number(spent - (spentAtStart[tenant] ?? 0n)) / 1e12;
    if (Math.abs(left - want) < 1e-9 && Math.abs(counted - sinceStart) < 1e-9) return spent;
    await sleep(50);
  }
  assert.fail(`budget left ${left} / cost counter ${counted} do not match the ledger's ${Number(spent) / 1e12} for ${tenant}`);
}

async function waitClosed(rec, ms = 10000) {
  const until = performance.now() + ms;
  while (rec.closedAt === null && performance.now() < until) await sleep(20);
  return rec.closedAt;
}

test('client closes right after the finish chunk, before the usage: the gateway reads on and bills the provider usage', async () => {
  up.set({ ...PLAIN, pieces: ['abcd', 'efgh'], usageDelayMs: 800 });
  const id = rid('after-finish');
  const s = await chatStream(gw, body(true), {
    headers: { ...auth(), 'x-request-id': id },
    onEvent: (ev) => (finishes(ev) ? 'abort' : undefined),
  });
  assert.equal(s.status, 200);
  assert.ok(s.aborted, 'the client saw the finish chunk and left');
  const r = await rowsFor(id);
  assert.equal(r.length, 1, JSON.stringify(r));
  assert.equal(r[0].usage_source, 'provider');
  assert.equal(r[0].prompt_tokens, 1000);
  assert.equal(r[0].completion_tokens, 200);
  assert.equal(BigInt(r[0].cost_pico), PROVIDER_COST);
  assert.equal(r[0].tenant, 'acct');
  await assertBudgetMatchesLedger();
});

test('client closes after the finish chunk and the usage never comes: estimated after a bounded grace, upstream closed', async () => {
  up.set({ ...PLAIN, pieces: ['abcd', 'efgh'], usageNever: true });
  const before = up.requests.length;
  const id = rid('no-usage');
  const s = await chatStream(gw, body(true), {
    headers: { ...auth(), 'x-request-id': id },
    onEvent: (ev) => (finishes(ev) ? 'abort' : undefined),
  });
  assert.ok(s.aborted);
  const left = performance.now();
  const r = await rowsFor(id);
  assert.equal(r.length, 1, JSON.stringify(r));
  assert.equal(r[0].usage_source, 'estimated');
  assert.equal(r[0].prompt_tokens, EST_PROMPT);
  assert.equal(r[0].completion_tokens, 2);
  assert.equal(BigInt(r[0].cost_pico), BigInt(EST_PROMPT) * IN_PICO + 2n * OUT_PICO);
  assert.match(r[0].status, /^error:cancelled/);
  // The grace is 2 s: the upstream connection is given up well before the 60 s idle timeout.
  const closed = await waitClosed(up.requests[before], 15000);
  assert.ok(closed !== null && closed - left < 15000, 'upstream exchange closed after the grace');
  await assertBudgetMatchesLedger();
});

test('client closes after 3 of 10 chunks: upstream cancelled, estimated usage = prompt estimate + tokens relayed', async () => {
  up.set({ ...PLAIN, pieces: Array(10).fill('abcd'), pieceDelayMs: 500 });
  const before = up.requests.length;
  const id = rid('mid-stream');
  let seen = 0;
  const s = await chatStream(gw, body(true), {
    headers: { ...auth(), 'x-request-id': id },
    onEvent: (ev) => (chunkOf(ev)?.choices?.[0]?.delta?.content && ++seen === 3 ? 'abort' : undefined),
  });
  assert.ok(s.aborted);
  const left = performance.now();
  const closed = await waitClosed(up.requests[before]);
  assert.ok(closed !== null && closed - left < 3000, `upstream cancelled at once (${closed && closed - left} ms)`);
  const r = await rowsFor(id);
  assert.equal(r.length, 1, JSON.stringify(r));
  assert.equal(r[0].usage_source, 'estimated');
  assert.equal(r[0].prompt_tokens, EST_PROMPT);
  // The gateway relayed the 3 the client read, and at most the one in flight when it left.
  assert.ok(r[0].completion_tokens >= 3 && r[0].completion_tokens <= 4, `completion ${r[0].completion_tokens}`);
  assert.equal(BigInt(r[0].cost_pico), BigInt(EST_PROMPT) * IN_PICO + BigInt(r[0].completion_tokens) * OUT_PICO);
  await assertBudgetMatchesLedger();
});

test('client closes during a non-stream wait: one estimated row (prompt only), upstream cancelled', async () => {
  up.set({ ...PLAIN, bodyDelayMs: 20000 });
  const before = up.requests.length;
  const id = rid('non-stream');
  await new Promise((resolve) => {
    const payload = JSON.stringify(body(false));
    const req = http.request(gw.url + '/v1/chat/completions', {
      method: 'POST',
      agent: false,
      headers: { ...auth(), 'x-request-id': id, 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) },
    });
    req.on('error', () => resolve());
    req.on('close', () => resolve());
    req.end(payload);
    // Leave once the upstream has the request (bounded poll), not after a guessed delay.
    const t0 = performance.now();
    const poll = setInterval(() => {
      if (up.requests.length > before || performance.now() - t0 > 10000) {
        clearInterval(poll);
        setTimeout(() => req.destroy(), 200);
      }
    }, 20);
  });
  const left = performance.now();
  const closed = await waitClosed(up.requests[before]);
  assert.ok(closed !== null && closed - left < 5000, 'upstream cancelled');
  const r = await rowsFor(id);
  assert.equal(r.length, 1, JSON.stringify(r));
  assert.equal(r[0].usage_source, 'estimated');
  assert.equal(r[0].prompt_tokens, EST_PROMPT);
  assert.equal(r[0].completion_tokens, 0);
  assert.equal(BigInt(r[0].cost_pico), BigInt(EST_PROMPT) * IN_PICO);
  await assertBudgetMatchesLedger();
});

test('upstream cuts the stream after content: the client gets the in-band error, the attempt is accounted as estimated', async () => {
  up.set({ ...PLAIN, pieces: ['abcd', 'efgh', 'ijkl'], pieceDelayMs: 50, cutAfterPieces: 2 });
  const id = rid('cut');
  const s = await chatStream(gw, body(true), { headers: { ...auth(), 'x-request-id': id } });
  assert.equal(s.status, 200);
  assert.ok(s.errors?.length >= 1 || /"error"/.test(s.raw), `in-band error: ${s.raw.slice(-300)}`);
  assert.ok(!s.done, 'no [DONE] after a cut stream');
  const r = await rowsFor(id);
  assert.equal(r.length, 1, JSON.stringify(r));
  assert.equal(r[0].usage_source, 'estimated');
  assert.equal(r[0].completion_tokens, 2);
  assert.match(r[0].status, /^error:/);
  await assertBudgetMatchesLedger();
});

test('a response received in full is billed from the provider usage, and its row is marked so', async () => {
  up.set({ ...PLAIN });
  const id = rid('full');
  const r = await request(gw.url + '/v1/chat/completions', { method: 'POST', body: body(false), headers: { ...auth(), 'x-request-id': id } });
  assert.equal(r.status, 200, r.text);
  assert.equal(r.headers['x-gateway-cost-usd'], '0.014');
  const rowsNow = await rowsFor(id);
  assert.equal(rowsNow.length, 1);
  assert.equal(rowsNow[0].usage_source, 'provider');
  assert.equal(rowsNow[0].status, 'ok');
  await assertBudgetMatchesLedger();
});

test('the same x-request-id from two tenants: every request billed, ids echoed; after a restart the budgets are re-seeded from every row', async () => {
  up.set({ ...PLAIN });
  const id = rid('shared');
  const sendAs = async (tenant) => {
    const r = await request(gw.url + '/v1/chat/completions', { method: 'POST', body: body(false), headers: { ...auth(tenant), 'x-request-id': id } });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.headers['x-request-id'], id, 'the client id is still echoed');
  };
  for (let i = 0; i < 3; i++) await sendAs('acct');
  await sendAs('other');
  const r = await rowsFor(id, 4);
  assert.equal(r.length, 4, JSON.stringify(r));
  assert.equal(new Set(r.map((x) => x.request_id)).size, 4, 'four distinct gateway ids');
  for (const x of r) assert.match(x.request_id, /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  assert.deepEqual(r.map((x) => x.tenant).sort(), ['acct', 'acct', 'acct', 'other']);
  const acct = await assertBudgetMatchesLedger('acct');
  const other = await assertBudgetMatchesLedger('other');
  assert.equal(other, PROVIDER_COST);

  await gw.stop();
  for (const t of ['acct', 'other', 'tight']) spentAtStart[t] = await ledgerSpent(t);
  gw = await startGateway({ configPath: cfgPath });
  const { samples } = await scrape(gw);
  for (const [tenant, spent] of [['acct', acct], ['other', other]]) {
    const left = metricValue(samples, 'gateway_budget_remaining_usd', { tenant, period: 'daily' });
    assert.ok(Math.abs(left - (DAILY_USD - Number(spent) / 1e12)) < 1e-9, `${tenant}: re-seeded ${left}`);
  }
  const ic = await run(SQLITE, [ledgerPath, 'PRAGMA integrity_check'], { timeoutMs: 10000 });
  assert.equal(ic.stdout.trim(), 'ok');
});

test('a request whose own worst case exceeds the tpm limit: 429 saying it can never fit, no Retry-After, x-should-retry: false', async () => {
  up.set({ ...PLAIN });
  const before = up.requests.length;
  const id = rid('never-fits');
  // Worst case = prompt estimate + max_tokens 200 > 100, in an empty window.
  const r = await request(gw.url + '/v1/chat/completions', { method: 'POST', body: body(false), headers: { ...auth('tight'), 'x-request-id': id } });
  assert.equal(r.status, 429, r.text);
  assert.equal(r.json.error.code, 'request_exceeds_tpm');
  assert.match(r.json.error.message, /can never fit the rate limit of 100 tokens per minute for tenant 'tight'/);
  assert.equal(r.headers['retry-after'], undefined);
  assert.equal(r.headers['x-should-retry'], 'false');
  assert.equal(up.requests.length, before, 'nothing sent upstream');
  assert.deepEqual(await rows(`client_request_id = '${id}'`), []);
  // One that fits is served: max_tokens 50 + the estimate <= 100.
  const ok = await request(gw.url + '/v1/chat/completions', { method: 'POST', body: body(false, { max_tokens: 50 }), headers: auth('tight') });
  assert.equal(ok.status, 200, ok.text);
});

test('impossible upstream usage (huge, negative, beyond the context window): an upstream error, counted, billed at the estimate, never at 0', async () => {
  const cases = [
    { name: 'huge', usage: { prompt_tokens: 9.9e18, completion_tokens: 1, total_tokens: 1 } },
    { name: 'negative', usage: { prompt_tokens: -1000, completion_tokens: 200, total_tokens: -800 } },
    { name: 'fractional', usage: { prompt_tokens: 10.5, completion_tokens: 2, total_tokens: 12.5 } },
    // pa/m: context window 100000, max output defaults to it: 300000 tokens cannot be one answer.
    { name: 'beyond-window', usage: { prompt_tokens: 300000, completion_tokens: 1, total_tokens: 300001 } },
  ];
  const counted = async () => metricValue((await scrape(gw)).samples, 'gateway_errors_total', { reason: 'upstream_usage_invalid' }) ?? 0;
  for (const [i, c] of cases.entries()) {
    up.set({ ...PLAIN, usage: c.usage });
    const before = await counted();
    const id = rid(`usage-${c.name}`);
    const r = await request(gw.url + '/v1/chat/completions', { method: 'POST', body: body(false), headers: { ...auth(), 'x-request-id': id } });
    assert.ok(r.status >= 500 && r.status < 600, `${c.name}: ${r.status} ${r.text}`);
    assert.match(r.json?.error?.message ?? '', /impossible usage/, c.name);
    assert.equal(r.headers['x-gateway-cost-usd'], undefined, `${c.name}: no cost header for a failed answer`);
    const rr = await rowsFor(id);
    assert.equal(rr.length, 1, `${c.name}: ${JSON.stringify(rr)}`);
    assert.equal(rr[0].usage_source, 'estimated', c.name);
    assert.equal(rr[0].prompt_tokens, EST_PROMPT, c.name);
    assert.ok(BigInt(rr[0].cost_pico) > 0n, `${c.name}: priced, not 0`);
    assert.equal(await counted(), before + 1, `${c.name}: counted`);
    if (i === cases.length - 1) await assertBudgetMatchesLedger();
  }
  // Streams too: the client already has content, so it gets the in-band error; billed at the estimate.
  up.set({ ...PLAIN, pieces: ['abcd'], usage: cases[0].usage });
  const id = rid('usage-stream');
  const s = await chatStream(gw, body(true), { headers: { ...auth(), 'x-request-id': id } });
  assert.ok(!s.done && /impossible usage/.test(s.raw), s.raw.slice(-300));
  const rr = await rowsFor(id);
  assert.equal(rr.length, 1);
  assert.equal(rr[0].usage_source, 'estimated');
  assert.equal(rr[0].completion_tokens, 1);
  up.set({ ...PLAIN, usage: USAGE });
});
