// Hot reload of the routing policy under load, and the operator tools around it: SIGHUP,
// POST /admin/reload, POST /admin/explain, `gateway check`, `gateway explain`, /metrics through
// `promtool check metrics` with the router's routing_* families.
//
// Deployments one/two/three/four@default/m, each on its own fake upstream, so x-gateway-deployment
// (and the fakes' request logs) tell which policy version routed a request. The invalid policies
// route to `four`: if one of them ever took effect, `four` would see traffic.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { chat, request, userMsg, sleep, run, GATEWAY_BIN } from './lib/gateway.mjs';
import { startUpstream, startPolicyGateway, explain } from './lib/routing_upstream.mjs';
import { scrape, metricValue } from './lib/prometheus.mjs';

const NAMES = ['one', 'two', 'three', 'four'];
const CATALOG = NAMES.map((n) => `  - {ref: ${n}/m, context_window: 100000, price: {input: 1, output: 1}}`).join('\n');
const policyFor = (dep, extra = '') => `version: 1
name: reload-${dep}
catalog:
${CATALOG}
routes:
  - name: r-${dep}
    match: {model: m}${extra}
    objective: ordered
    candidates: [${dep}/m]
`;
// Invalid: an unknown route key (line 11, column 5) / a YAML syntax error; both would route to `four`.
const INVALID_KEY = policyFor('four', '\n    bogus_key: 1');
const INVALID_SYNTAX = policyFor('four').replace('candidates: [four/m]', 'candidates: [four/m');

const up = {};
let gw; // policy file polled every 200 ms
let gw2; // no polling: SIGHUP / POST /admin/reload only

const providers = () => Object.fromEntries(NAMES.map((n) => [n, { type: 'openai_compatible', base_url: up[n].baseUrl }]));
const dep = (n) => `${n}@default/m`;
const body = { model: 'm', messages: userMsg('reload') };

before(async () => {
  // 30 ms per answer: there are always requests in flight when a policy is swapped.
  for (const n of NAMES) up[n] = await startUpstream({ name: n, delayMs: 30 });
  gw = await startPolicyGateway({ policy: policyFor('one'), providers: providers(), routing: { policy_poll_ms: 200 } });
  gw2 = await startPolicyGateway({
    policy: policyFor('one').replace('candidates: [one/m]', 'objective: {type: weighted, weights: {cost: 1, latency: 0.3, error_risk: 2}}\n    candidates: [one/m, two/m, deepseek/deepseek-flash]').replace('    objective: ordered\n', ''),
    providers: providers(),
    routing: { policy_poll_ms: 0 },
  });
});

after(async () => {
  await Promise.all(Object.values(up).map((u) => u.close()));
  await gw?.stop();
  await gw2?.stop();
});

const reloads = async (g, result) => metricValue((await scrape(g)).samples, 'gateway_policy_reloads_total', { result }) ?? 0;

function atomicReplace(file, text) {
  const tmp = path.join(path.dirname(file), `.policy.${process.pid}.${Date.now()}.tmp`);
  fs.writeFileSync(tmp, text);
  fs.renameSync(tmp, file);
}

async function waitFor(what, fn, timeoutMs, stepMs = 50) {
  const t0 = performance.now();
  for (;;) {
    const v = await fn();
    if (v) return performance.now() - t0;
    if (performance.now() - t0 > timeoutMs) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await sleep(stepMs);
  }
}

describe('hot reload under load', () => {
  test('4 client loops keep sending while the policy is replaced (rename, in-place write) by valid then invalid files: zero failures, invalid never applied', async () => {
    const log = []; // {sent, done, status, dep, err}
    let stop = false;
    const loop = async () => {
      while (!stop) {
        const sent = performance.now();
        try {
          const r = await chat(gw, body, { timeoutMs: 5000 });
          log.push({ sent, done: performance.now(), status: r.status, dep: r.headers['x-gateway-deployment'], err: r.status === 200 ? null : r.text.slice(0, 300) });
        } catch (e) {
          log.push({ sent, done: performance.now(), status: 0, dep: null, err: String(e.message) });
        }
      }
    };
    const t0 = performance.now();
    const loops = [loop(), loop(), loop(), loop()];
    const firstDone = (d, after) => log.find((x) => x.dep === dep(d) && x.sent >= after);
    const timings = {};
    try {
      await sleep(500);
      assert.ok(log.length > 0 && log.every((x) => x.dep === dep('one')), 'policy v1 routes to one');

      // 1. Valid policy, atomic rename.
      const tRename = performance.now();
      atomicReplace(gw.policyPath, policyFor('two'));
      timings.rename = await waitFor('new policy (rename) in effect', () => firstDone('two', tRename), 3000);
      await sleep(400);

      // 2. Valid policy, written in place (truncate + write).
      const tWrite = performance.now();
      fs.writeFileSync(gw.policyPath, policyFor('three'));
      timings.inPlace = await waitFor('new policy (in-place write) in effect', () => firstDone('three', tWrite), 3000);
      await sleep(400);

      // 3. Invalid policy written in place: refused, counted, previous policy keeps serving.
      const errBefore = await reloads(gw, 'error');
      const okBefore = await reloads(gw, 'ok');
      const tBad = performance.now();
      fs.writeFileSync(gw.policyPath, INVALID_KEY);
      timings.invalidRefused = await waitFor('invalid in-place policy counted as an error', async () => (await reloads(gw, 'error')) > errBefore, 3000);
      const adm = await request(gw.url + '/admin/reload', { method: 'POST' });
      assert.equal(adm.status, 422, `POST /admin/reload with an invalid file -> 422: ${adm.text}`);
      assert.match(adm.text, /policy\.yaml:11:5: unknown route key 'bogus_key'/, `the compile error with file:line:column: ${adm.text}`);
      assert.ok((await reloads(gw, 'error')) >= errBefore + 2, 'POST /admin/reload failure counted too');
      await sleep(400);

      // 4. Invalid policy (YAML syntax error), atomic rename.
      const err2 = await reloads(gw, 'error');
      atomicReplace(gw.policyPath, INVALID_SYNTAX);
      await waitFor('invalid renamed policy counted as an error', async () => (await reloads(gw, 'error')) > err2, 3000);
      await sleep(400);
      assert.equal(await reloads(gw, 'ok'), okBefore, 'no successful reload since the invalid files were written');
      const ex = await explain(gw, body);
      assert.equal(ex.policy, 'reload-three', 'the last valid policy still serves');
      while (performance.now() - t0 < 4000) await sleep(100);
      timings.badWindowStart = tBad;
    } finally {
      stop = true;
      await Promise.all(loops);
    }
    const failed = log.filter((x) => x.status !== 200);
    console.log(`# reload: ${log.length} requests in ${((performance.now() - t0) / 1000).toFixed(1)} s, ${failed.length} failed; ` +
      `rename -> new deployment ${timings.rename.toFixed(0)} ms, in-place write -> ${timings.inPlace.toFixed(0)} ms, invalid refused after ${timings.invalidRefused.toFixed(0)} ms`);
    assert.deepEqual(failed.slice(0, 5), [], `${failed.length} requests failed during reloads`);
    assert.ok(log.length >= 40, `load was sustained (${log.length} requests)`);
    // Swaps are atomic: a request sent after the first answer of a new version never sees an older one.
    const order = ['one', 'two', 'three'];
    for (let v = 1; v < order.length; v++) {
      const first = log.filter((x) => x.dep === dep(order[v])).reduce((a, x) => Math.min(a, x.done), Infinity);
      const stale = log.filter((x) => x.sent > first && order.indexOf(x.dep?.split('@')[0]) < v);
      assert.deepEqual(stale.slice(0, 3), [], `requests sent after ${order[v]} took effect were routed by an older policy`);
    }
    assert.equal(log.filter((x) => x.dep === dep('four')).length, 0, 'the invalid policies never routed a request');
    assert.equal(up.four.requests.length, 0, 'deployment four (only in the invalid files) never called');
    assert.ok(log.filter((x) => x.sent > timings.badWindowStart).every((x) => x.dep === dep('three')), 'after the invalid files: still policy three');
    assert.ok(timings.rename <= 2000 && timings.inPlace <= 2000, 'picked up within 2 s at policy_poll_ms 200');
  });
});

describe('SIGHUP and POST /admin/reload (no polling)', () => {
  test('an edited file is not picked up without a trigger; SIGHUP applies it; invalid + SIGHUP is refused and counted', async () => {
    const ok0 = await reloads(gw2, 'ok');
    const text = fs.readFileSync(gw2.policyPath, 'utf8');
    fs.writeFileSync(gw2.policyPath, text.replace('name: reload-one', 'name: reload-hup').replace('candidates: [one/m, two/m, deepseek/deepseek-flash]', 'candidates: [two/m, one/m, deepseek/deepseek-flash]').replace('type: weighted, weights: {cost: 1, latency: 0.3, error_risk: 2}', 'type: ordered'));
    await sleep(600);
    assert.equal((await explain(gw2, body)).policy, 'reload-one', 'policy_poll_ms 0: no reload without a trigger');
    const tHup = performance.now();
    gw2.kill('SIGHUP');
    const ms = await waitFor('SIGHUP reload', async () => (await explain(gw2, body)).policy === 'reload-hup', 3000, 20);
    console.log(`# reload: SIGHUP applied in ${ms.toFixed(0)} ms`);
    assert.equal(await reloads(gw2, 'ok'), ok0 + 1);
    const r = await chat(gw2, body);
    assert.equal(r.status, 200);
    assert.equal(r.headers['x-gateway-deployment'], dep('two'));
    assert.ok(performance.now() - tHup < 3000);

    const e0 = await reloads(gw2, 'error');
    fs.writeFileSync(gw2.policyPath, INVALID_KEY);
    gw2.kill('SIGHUP');
    await waitFor('invalid SIGHUP reload counted', async () => (await reloads(gw2, 'error')) === e0 + 1, 3000);
    // stderr (a pipe) and the metrics response (a socket) may reach this process in either order.
    await waitFor('the refused reload logs its errors', async () => /bogus_key/.test(gw2.stderr), 2000, 20);
    assert.equal((await explain(gw2, body)).policy, 'reload-hup', 'previous policy keeps serving');
    assert.equal(gw2.exited, null, 'SIGHUP does not stop the gateway');

    // The file disappears: reload refused (422), previous policy keeps serving.
    fs.rmSync(gw2.policyPath);
    const gone = await request(gw2.url + '/admin/reload', { method: 'POST' });
    assert.equal(gone.status, 422, gone.text);
    assert.equal((await explain(gw2, body)).policy, 'reload-hup');
    assert.equal((await chat(gw2, body)).status, 200);

    // Restore a valid file; POST /admin/reload -> 200 {"status":"reloaded"}.
    fs.writeFileSync(gw2.policyPath, text);
    const adm = await request(gw2.url + '/admin/reload', { method: 'POST' });
    assert.equal(adm.status, 200, adm.text);
    assert.deepEqual(adm.json, { status: 'reloaded' });
    assert.equal((await explain(gw2, body)).policy, 'reload-one');
  });
});

describe('explain', () => {
  test('POST /admin/explain: plan, every candidate with score terms or an exclusion reason', async () => {
    const ex = await explain(gw2, body);
    assert.equal(ex.policy, 'reload-one');
    assert.equal(ex.route, 'r-one');
    assert.equal(ex.objective, 'weighted');
    assert.deepEqual(Object.keys(ex.weights).sort(), ['cost', 'error_risk', 'latency']);
    assert.ok(Array.isArray(ex.plan) && ex.plan.length === 2, JSON.stringify(ex.plan));
    assert.equal(ex.request.model, 'm');
    assert.equal(typeof ex.request.est_input_tokens, 'number');
    const ids = ex.candidates.map((c) => c.deployment);
    assert.deepEqual(ids, [dep('one'), dep('two'), 'deepseek@global/deepseek-flash'], 'every candidate, in policy order');
    for (const c of ex.candidates) {
      if (c.status === 'excluded') {
        assert.equal(typeof c.reason, 'string');
        assert.ok(c.reason.length > 0, `excluded candidate ${c.deployment} has a reason`);
        assert.ok(['policy', 'request', 'unavailable'].includes(c.exclusion), c.exclusion);
      } else {
        assert.ok(['primary', 'fallback', 'qualified'].includes(c.status), c.status);
        for (const k of ['cost', 'latency', 'error_risk']) assert.equal(typeof c.terms[k], 'number', `${c.deployment} terms.${k}`);
        assert.equal(typeof c.score, 'number');
        assert.ok(Math.abs(c.score - (c.terms.cost + c.terms.latency + c.terms.error_risk)) < 1e-6, `weighted score = sum of terms for ${c.deployment}`);
        for (const k of ['est_cost_usd', 'ttft_ms', 'tokens_per_second', 'expected_latency_ms', 'error_rate', 'rank']) assert.equal(typeof c[k], 'number', `${c.deployment}.${k}`);
      }
    }
    const ds = ex.candidates[2];
    assert.equal(ds.status, 'excluded');
    assert.match(ds.reason, /not configured/, ds.reason);
    assert.equal(ex.candidates.find((c) => c.status === 'primary').deployment, ex.plan[0]);

    // A refused request: explain carries the error and every reason.
    const refused = await explain(gw2, { ...body, max_tokens: 500000 });
    assert.ok(refused.error, JSON.stringify(refused));
    assert.ok(refused.candidates.every((c) => c.status === 'excluded' && c.reason), JSON.stringify(refused.candidates));
    assert.equal(refused.plan.length, 0);
  });

  test('`gateway explain --config CFG --request REQ.json` prints the same decision', async () => {
    const req = path.join(gw2.policyDir, 'req.json');
    fs.writeFileSync(req, JSON.stringify(body));
    const r = await run(GATEWAY_BIN, ['explain', '--config', gw2.cfgPath, '--request', req]);
    assert.equal(r.code, 0, r.stderr);
    const ex = JSON.parse(r.stdout);
    assert.equal(ex.policy, 'reload-one');
    assert.deepEqual(ex.plan, [dep('one'), dep('two')]);
    assert.equal(ex.candidates.length, 3);
    assert.match(ex.candidates[2].reason, /not configured/);
  });
});

describe('gateway check', () => {
  test('a broken policy: exit 1 and every error as file:line:column', async () => {
    const file = path.join(gw2.policyDir, 'broken.yaml');
    fs.writeFileSync(file, 'version: 1\nname: broken\nroutes:\n  - name: r\n    match: {model: m}\n    bogus_key: 1\n    candidates: [nope/m]\n');
    const r = await run(GATEWAY_BIN, ['check', file]);
    assert.equal(r.code, 1, `exit code: ${r.code}\n${r.stdout}${r.stderr}`);
    const out = r.stdout + r.stderr;
    assert.ok(out.includes(`${file}:6:5: unknown route key 'bogus_key'`) || /broken\.yaml:6:5: unknown route key 'bogus_key'/.test(out), out);
    assert.match(out, /broken\.yaml:7:\d+: unknown provider 'nope'/, out);

    const syntax = path.join(gw2.policyDir, 'syntax.yaml');
    fs.writeFileSync(syntax, INVALID_SYNTAX);
    const r2 = await run(GATEWAY_BIN, ['check', syntax]);
    assert.equal(r2.code, 1);
    assert.match(r2.stdout + r2.stderr, /syntax\.yaml:\d+:\d+: /);

    // A gateway config whose policy is broken: the policy's errors, exit 1.
    const cfg = path.join(gw2.policyDir, 'gw-broken.yaml');
    fs.writeFileSync(cfg, fs.readFileSync(gw2.cfgPath, 'utf8').replace(/^policy: .*$/m, `policy: ${JSON.stringify(file)}`));
    const r4 = await run(GATEWAY_BIN, ['check', cfg]);
    assert.equal(r4.code, 1, r4.stdout + r4.stderr);
    assert.match(r4.stdout + r4.stderr, /broken\.yaml:6:5: unknown route key 'bogus_key'/);

    const good = path.join(gw2.policyDir, 'good.yaml');
    fs.writeFileSync(good, policyFor('one'));
    const r3 = await run(GATEWAY_BIN, ['check', good]);
    assert.equal(r3.code, 0, r3.stdout + r3.stderr);
  });
});

describe('/metrics', () => {
  test('passes `promtool check metrics` with the routing_* families and gateway_policy_reloads_total', async () => {
    const res = await request(gw.url + '/metrics');
    assert.equal(res.status, 200);
    const file = path.join(gw.policyDir, 'metrics.txt');
    fs.writeFileSync(file, res.text);
    const pc = await run('sh', ['-c', `promtool check metrics < '${file}'`]);
    assert.equal(pc.code, 0, `promtool check metrics failed:\n${pc.stdout}${pc.stderr}`);
    for (const fam of ['routing_ttft_seconds_ewma', 'routing_ttft_seconds_p90', 'routing_tokens_per_second_ewma', 'routing_error_rate_ewma', 'routing_rate_limited_rate_ewma', 'routing_in_flight', 'routing_circuit_state', 'routing_cooldown_seconds', 'routing_attempts_total', 'routing_failures_total', 'routing_external_active']) {
      assert.match(res.text, new RegExp(`^# TYPE ${fam} (gauge|counter)$`, 'm'), `family ${fam}`);
      assert.match(res.text, new RegExp(`^${fam}\\{deployment="(one|two|three|four)@default/m"\\} `, 'm'), `${fam} labelled by deployment`);
    }
    assert.match(res.text, /^gateway_policy_reloads_total\{result="ok"\} [1-9]/m);
    assert.match(res.text, /^gateway_policy_reloads_total\{result="error"\} [1-9]/m);
  });
});

describe('requests in flight across a reload', () => {
  // Deployment `slowone` answers after 1 s; the policy is reloaded while a request is in flight.
  // Usage of the fake: 30 prompt + 12 completion tokens; price 1 USD/1M each -> 0.000042.
  const cat = (price) => `  - {ref: slowone/m, context_window: 100000, price: {input: ${price}, output: ${price}}}\n  - {ref: two/m, context_window: 100000, price: {input: 2, output: 2}}`;
  const pol = (name, dep, catalog) => `version: 1\nname: ${name}\ncatalog:\n${catalog}\nroutes:\n  - name: r\n    match: {model: m}\n    candidates: [${dep}/m]\n`;
  const catTwoOnly = '  - {ref: two/m, context_window: 100000, price: {input: 2, output: 2}}';
  let g, slowone;
  before(async () => {
    slowone = await startUpstream({ name: 'slowone', delayMs: 1000 });
    g = await startPolicyGateway({
      policy: pol('v1', 'slowone', cat(1)),
      providers: { slowone: { type: 'openai_compatible', base_url: slowone.baseUrl }, two: { type: 'openai_compatible', base_url: up.two.baseUrl } },
      routing: { policy_poll_ms: 0 },
    });
  });
  after(async () => {
    await slowone?.close();
    await g?.stop();
  });

  async function inFlightAcross(newPolicy) {
    fs.writeFileSync(g.policyPath, pol('v1', 'slowone', cat(1)));
    assert.equal((await request(g.url + '/admin/reload', { method: 'POST' })).status, 200);
    const p = chat(g, body);
    await sleep(300);
    fs.writeFileSync(g.policyPath, newPolicy);
    const adm = await request(g.url + '/admin/reload', { method: 'POST' });
    assert.equal(adm.status, 200, adm.text);
    const r = await p;
    assert.equal(r.status, 200, r.text);
    assert.equal(r.headers['x-gateway-deployment'], 'slowone@default/m', 'routed by v1');
    return r;
  }

  test('the new policy no longer has the deployment: the answer still carries its cost (spend is not lost)', async () => {
    const r = await inFlightAcross(pol('v2', 'two', catTwoOnly));
    assert.equal(r.json.choices[0].message.content, 'hello from slowone');
    assert.ok(r.headers['x-gateway-cost-usd'] !== undefined, `x-gateway-cost-usd missing on a request routed before the reload (estimate was ${r.headers['x-gateway-estimated-cost-usd']})`);
    assert.ok(Math.abs(Number(r.headers['x-gateway-cost-usd']) - 0.000042) < 1e-12, `cost ${r.headers['x-gateway-cost-usd']}`);
    const after = await chat(g, body);
    assert.equal(after.headers['x-gateway-deployment'], 'two@default/m', 'new requests follow v2');
  });

  test('the new policy changes the price: the request is invoiced at the price of the policy that routed it', async () => {
    const r = await inFlightAcross(pol('v2', 'slowone', cat(100)));
    assert.ok(Number(r.headers['x-gateway-estimated-cost-usd']) > 0, 'estimate (from v1) present');
    assert.ok(Math.abs(Number(r.headers['x-gateway-cost-usd']) - 0.000042) < 1e-12,
      `invoiced ${r.headers['x-gateway-cost-usd']} (price 100 of the policy loaded mid-flight); expected 0.000042 (price 1 of the policy that routed it, estimate ${r.headers['x-gateway-estimated-cost-usd']})`);
  });
});
