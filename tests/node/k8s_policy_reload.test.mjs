// The policy hot reload deploy/k8s relies on: a ConfigMap mounted as a directory is updated by
// kubelet's atomic writer, which never touches the file the pod reads. The folder holds
// `default.yaml -> ..data/default.yaml` and `..data -> ..<timestamp>`; an update writes a new
// timestamped folder, points a temporary symlink at it, renames that over `..data` (one atomic
// step) and deletes the old folder. This reproduces that layout and those steps around a running
// gateway whose `policy:` is the top-level symlink, as in the pod.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { startGateway, defaultConfig, chat, userMsg, sleep, tmpDir } from './lib/gateway.mjs';
import { startUpstream } from './lib/routing_upstream.mjs';
import { scrape, metricValue } from './lib/prometheus.mjs';

const policyFor = (dep) => `version: 1
name: k8s-${dep}
catalog:
  - {ref: one/m, context_window: 100000, price: {input: 1, output: 1}}
  - {ref: two/m, context_window: 100000, price: {input: 1, output: 1}}
routes:
  - name: r
    match: {model: m}
    objective: ordered
    candidates: [${dep}/m]
`;

// A ConfigMap volume as kubelet lays it out, and its update.
let generation = 0;
function writeGeneration(dir, files) {
  const gen = `..2026_12_02_00_00_00.${process.pid}${++generation}`;
  fs.mkdirSync(path.join(dir, gen));
  for (const [name, text] of Object.entries(files)) fs.writeFileSync(path.join(dir, gen, name), text);
  return gen;
}
function mountConfigMap(dir, files) {
  const gen = writeGeneration(dir, files);
  fs.symlinkSync(gen, path.join(dir, '..data'));
  for (const name of Object.keys(files)) fs.symlinkSync(path.join('..data', name), path.join(dir, name));
}
function updateConfigMap(dir, files) {
  const old = fs.readlinkSync(path.join(dir, '..data'));
  const gen = writeGeneration(dir, files);
  fs.symlinkSync(gen, path.join(dir, '..data_tmp'));
  fs.renameSync(path.join(dir, '..data_tmp'), path.join(dir, '..data'));
  fs.rmSync(path.join(dir, old), { recursive: true });
}

const up = {};
let gw, policies;
before(async () => {
  for (const n of ['one', 'two']) up[n] = await startUpstream({ name: n });
  policies = path.join(tmpDir('gw-k8s-cm-'), 'policies');
  fs.mkdirSync(policies);
  mountConfigMap(policies, { 'default.yaml': policyFor('one') });
  const c = defaultConfig();
  delete c.models;
  c.providers = { one: { type: 'openai_compatible', base_url: up.one.baseUrl }, two: { type: 'openai_compatible', base_url: up.two.baseUrl } };
  c.policy = path.join(policies, 'default.yaml');
  c.routing = { policy_poll_ms: 200 };
  gw = await startGateway({ config: c });
});
after(async () => {
  await gw?.stop();
  await Promise.all(Object.values(up).map((u) => u.close()));
});

const servedBy = async () => (await chat(gw, { model: 'm', messages: userMsg('k8s') })).headers['x-gateway-deployment'];
const reloads = async (result) => metricValue((await scrape(gw)).samples, 'gateway_policy_reloads_total', { result }) ?? 0;
async function until(what, fn, timeoutMs = 10000) {
  const t0 = Date.now();
  while (!(await fn())) {
    if (Date.now() - t0 > timeoutMs) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await sleep(100);
  }
}

test('a ConfigMap update (the ..data symlink swapped) is reloaded; an invalid one is refused and the old policy serves', async () => {
  assert.equal(await servedBy(), 'one@default/m');
  const ok0 = await reloads('ok');
  updateConfigMap(policies, { 'default.yaml': policyFor('two') });
  await until('the updated policy in effect', async () => (await servedBy()) === 'two@default/m');
  assert.equal(await reloads('ok'), ok0 + 1, 'one reload for one update');

  const err0 = await reloads('error');
  updateConfigMap(policies, { 'default.yaml': policyFor('two').replace('candidates: [two/m]', 'candidates: [one/m') });
  await until('the invalid update refused', async () => (await reloads('error')) === err0 + 1);
  assert.equal(await servedBy(), 'two@default/m', 'the previous policy keeps serving');

  // Back to a valid file: served again, and the folder holds one generation only (as kubelet leaves it).
  updateConfigMap(policies, { 'default.yaml': policyFor('one') });
  await until('the repaired policy in effect', async () => (await servedBy()) === 'one@default/m');
  assert.equal(fs.readdirSync(policies).filter((f) => f.startsWith('..2026')).length, 1);
});
