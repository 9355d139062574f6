// The spend ledger on a full disk: the gateway fails closed and loses nothing.
//
// The ledger lives on a 1 MiB tmpfs this test mounts (it runs as root in CI; where mounting is not
// permitted the test is skipped and says why). "Full" = a filler file takes every free block, after
// the ledger's idle TRUNCATE checkpoint emptied its WAL (so the next commit needs new blocks).
//   1. A request accepted before the gateway knew: answered after the bounded durability wait, its
//      entry kept. Then new requests get 503 spend_ledger_unavailable, /readyz is 503, the metric and
//      the log say why.
//   2. Space again: the kept entry is written by the writer's retries, the gateway is ready again.
//   3. Full again, one more accepted request, then SIGTERM: the recovery file cannot be written on
//      the full disk either, so the unwritten entry is printed to stderr as a JSON line. Put into
//      <ledger>.recovery.jsonl (what an operator does with those lines), the next start imports it.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';
import { startGateway, defaultConfig, tmpDir, toYaml, request, userMsg, run, sleep } from './lib/gateway.mjs';
import { startUpstream, pricedPolicy } from './lib/routing_upstream.mjs';
import { scrape, metricValue } from './lib/prometheus.mjs';

const SQLITE = '/usr/bin/sqlite3';
const USAGE = { prompt_tokens: 1000, completion_tokens: 200, total_tokens: 1200 };
const KEY = 'gwk_full_' + crypto.randomBytes(12).toString('hex');

let up, gw, mnt, cfgPath, ledgerPath, skipReason = null;

before(async () => {
  if (process.getuid?.() !== 0) {
    skipReason = 'not root: cannot mount a tmpfs to fill';
    return;
  }
  mnt = tmpDir('gw-ledger-full-mnt-');
  const m = await run('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', mnt], { timeoutMs: 10000 });
  if (m.code !== 0) {
    skipReason = `mount -t tmpfs failed (${m.stderr.trim()}): no privilege to mount here`;
    return;
  }
  up = await startUpstream({ name: 'pa', usage: USAGE });
  const dir = tmpDir('gw-ledger-full-');
  fs.writeFileSync(path.join(dir, 'policy.yaml'), pricedPolicy('ledger-full'));
  ledgerPath = path.join(mnt, 'ledger.db');
  const c = defaultConfig();
  delete c.models;
  c.providers = { pa: { type: 'openai_compatible', base_url: up.baseUrl } };
  c.policy = path.join(dir, 'policy.yaml');
  c.routing = { policy_poll_ms: 0 };
  c.tenants = { fullco: { keys: [{ id: 'f1', sha256: crypto.createHash('sha256').update(KEY).digest('hex') }] } };
  c.state = { ledger_path: ledgerPath, on_ledger_failure: 'refuse' };
  cfgPath = path.join(dir, 'gateway.yaml');
  fs.writeFileSync(cfgPath, toYaml(c));
  gw = await startGateway({ configPath: cfgPath });
});

after(async () => {
  if (gw && !gw.exited) {
    gw.kill('SIGKILL');
    await gw.waitExit(5000).catch(() => {});
  }
  await up?.close();
  if (mnt && !skipReason) await run('umount', ['-l', mnt], { timeoutMs: 10000 });
});

const H = { authorization: `Bearer ${KEY}` };
const ask = (id) => request(gw.url + '/v1/chat/completions', { method: 'POST', body: { model: 'priced', messages: userMsg('fill me'), max_tokens: 200 }, headers: { ...H, 'x-request-id': id }, timeoutMs: 20000 });

async function until(what, pred, ms = 15000) {
  const end = performance.now() + ms;
  while (performance.now() < end) {
    if (await pred()) return;
    await sleep(50);
  }
  assert.fail(`timed out after ${ms} ms waiting for ${what}`);
}

const walSize = () => {
  try {
    return fs.statSync(ledgerPath + '-wal').size;
  } catch {
    return 0;
  }
};

// Idle WAL truncated first (its blocks freed), then every free block taken.
async function fillDisk() {
  await until('the idle WAL truncation', () => walSize() === 0);
  const fd = fs.openSync(path.join(mnt, 'filler'), 'a');
  const chunk = Buffer.alloc(64 * 1024, 1);
  try {
    for (;;) fs.writeSync(fd, chunk);
  } catch (e) {
    assert.equal(e.code, 'ENOSPC', String(e));
  }
  try {
    for (;;) fs.writeSync(fd, chunk, 0, 512);
  } catch {}
  fs.closeSync(fd);
}
const freeDisk = () => fs.rmSync(path.join(mnt, 'filler'), { force: true });

async function ledgerRow(id) {
  const q = await run(SQLITE, ['-json', ledgerPath, `SELECT * FROM spend WHERE client_request_id = '${id}'`], { timeoutMs: 10000 });
  assert.equal(q.code, 0, q.stderr);
  return q.stdout.trim() ? JSON.parse(q.stdout) : [];
}

test('ledger on a full tmpfs: fail closed (503, not ready), keep the accepted entry, write it when space returns, never drop one at shutdown', async (t) => {
  if (skipReason) return t.skip(skipReason);
  assert.ok(fs.existsSync(SQLITE), 'sqlite3 CLI needed');
  const ok = await ask('full-before');
  assert.equal(ok.status, 200, ok.text);

  // 1. Full disk.
  await fillDisk();
  const a = await ask('full-accepted-1');
  assert.equal(a.status, 200, 'accepted before the failure was known: answered after the bounded wait');
  await until('the ledger to report failing', async () => (await request(gw.url + '/readyz')).status === 503);
  const ready = await request(gw.url + '/readyz');
  assert.equal(ready.json.status, 'spend_ledger_unavailable');
  const refused = await ask('full-refused');
  assert.equal(refused.status, 503, refused.text);
  assert.equal(refused.json.error.code, 'spend_ledger_unavailable');
  assert.match(refused.json.error.message, /spend ledger cannot write .*refusing new requests/);
  assert.equal(up.requests.filter((r) => r.headers['x-request-id'] === 'full-refused').length, 0, 'never sent upstream');
  const { samples } = await scrape(gw);
  assert.equal(metricValue(samples, 'gateway_ledger_failing'), 1);
  assert.ok(metricValue(samples, 'gateway_ledger_commit_failures') >= 1);
  assert.match(gw.stderr, /spend ledger .* commit of \d+ entries failed, retrying/);

  // 2. Space again: the kept entry is written, the gateway serves again.
  freeDisk();
  await until('ready again', async () => (await request(gw.url + '/readyz')).status === 200);
  const kept = await ledgerRow('full-accepted-1');
  assert.equal(kept.length, 1, 'the accepted entry was written once the disk had room');
  assert.equal(kept[0].usage_source, 'provider');
  assert.equal((await ask('full-after')).status, 200);
  assert.match(gw.stderr, /spend ledger .* writing again/);

  // 3. Full again, one accepted request, then SIGTERM while the disk is still full.
  await fillDisk();
  assert.equal((await ask('full-accepted-2')).status, 200);
  await until('failing again', async () => (await request(gw.url + '/readyz')).status === 503);
  gw.kill('SIGTERM');
  const exit = await gw.waitExit(40000);
  assert.equal(exit.signal ?? null, null, `exited by itself: ${JSON.stringify(exit)}`);
  const lines = gw.stderr.split('\n').filter((l) => l.startsWith('gateway: spend ledger unwritten: '));
  assert.equal(lines.length, 1, `the unwritten entry on stderr:\n${gw.stderr.slice(-2000)}`);
  const entry = JSON.parse(lines[0].slice('gateway: spend ledger unwritten: '.length));
  assert.equal(entry.client_request_id, 'full-accepted-2');
  assert.equal(entry.tenant, 'fullco');
  assert.equal(BigInt(entry.cost_pico), 14_000_000_000n);

  // The operator frees space and hands the lines back: the next start imports them, once.
  freeDisk();
  fs.writeFileSync(ledgerPath + '.recovery.jsonl', JSON.stringify(entry) + '\n');
  gw = await startGateway({ configPath: cfgPath });
  assert.match(gw.stderr, /imported 1 entries/);
  assert.equal(fs.existsSync(ledgerPath + '.recovery.jsonl'), false);
  const back = await ledgerRow('full-accepted-2');
  assert.equal(back.length, 1);
  assert.equal(back[0].request_id, entry.request_id);
  const ic = await run(SQLITE, [ledgerPath, 'PRAGMA integrity_check'], { timeoutMs: 10000 });
  assert.equal(ic.stdout.trim(), 'ok');
});
