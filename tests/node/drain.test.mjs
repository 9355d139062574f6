// Graceful drain on SIGTERM: in-flight streams complete, the listener keeps answering (/readyz 503,
// /healthz 200, API 503) so load balancers see the drain, streams still running at the drain deadline
// end with an in-band error event, exit code 0.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { startFake, TRICKLE } from './lib/fake_upstream.mjs';
import { startGateway, defaultConfig, providerFor, chat, chatStream, request, userMsg, withTimeout, sleep } from './lib/gateway.mjs';

let gw;
let fake;

before(async () => {
  fake = await startFake({ dialect: 'glm', key: 'zai.drain' });
  const c = defaultConfig();
  c.server.drain_timeout_ms = 5000;
  c.providers = { glm: providerFor(fake) };
  c.models = { trickle: ['glm/trickle'] };
  gw = await startGateway({ config: c, env: { ZAI_API_KEY: 'zai.drain' } });
});

after(async () => {
  // Fakes first: stop() throws if the gateway died during the tests.
  await fake?.close();
  await gw?.stop();
});

test('SIGTERM during a trickling stream: stream completes with [DONE], /readyz says 503 meanwhile, exit 0', async () => {
  let sigtermAt = null;
  const stream = chatStream(gw, { model: 'trickle', messages: userMsg(), stream: true }, {
    timeoutMs: 12000,
    onEvent: (ev) => {
      if (!sigtermAt && ev.data && ev.data.includes('tick1')) {
        sigtermAt = performance.now();
        gw.kill('SIGTERM');
      }
    },
  });
  // Wait for SIGTERM to have been sent, then ask the listener.
  for (let i = 0; i < 50 && !sigtermAt; i++) await sleep(50);
  assert.ok(sigtermAt, 'SIGTERM sent after the first content chunk');
  let ready = null;
  for (let i = 0; i < 20 && ready?.status !== 503; i++) {
    await sleep(50);
    ready = await request(gw.url + '/readyz');
  }
  assert.equal(ready.status, 503, `/readyz answers 503 while draining: ${ready.text}`);
  assert.equal(ready.json.status, 'draining');
  assert.equal(ready.headers.connection, 'close');
  const health = await request(gw.url + '/healthz');
  assert.equal(health.status, 200, 'health is still answered');
  const refused = await chat(gw, { model: 'trickle', messages: userMsg() });
  assert.equal(refused.status, 503);
  assert.equal(refused.json.error.code, 'gateway_draining');

  const r = await stream;
  assert.equal(r.status, 200);
  const ticks = r.chunks.filter((c) => /^tick\d/.test(c.choices?.[0]?.delta?.content ?? ''));
  assert.equal(ticks.length, TRICKLE.count, `all chunks of the in-flight stream arrived (got: ${r.raw.slice(-400)}; error: ${r.error}; gateway exit: ${JSON.stringify(gw.exited)})`);
  assert.equal(r.errors.length, 0, `no error event: ${JSON.stringify(r.errors)}`);
  assert.ok(r.done, 'in-flight stream ends normally with [DONE]');

  const exit = await gw.waitExit(7000);
  assert.deepEqual(exit, { code: 0, signal: null }, 'gateway exits 0 after draining');
});

test('SIGTERM on an idle gateway: exits 0 promptly', async () => {
  const c = defaultConfig();
  c.providers = { glm: providerFor(fake) };
  c.models = { trickle: ['glm/trickle'] };
  const idle = await startGateway({ config: c, env: { ZAI_API_KEY: 'zai.drain' } });
  const t0 = performance.now();
  idle.kill('SIGTERM');
  const exit = await idle.waitExit(5000);
  assert.deepEqual(exit, { code: 0, signal: null });
  assert.ok(performance.now() - t0 < 3000, 'exited within 3 s');
});

test('SIGTERM with a stream longer than drain_timeout_ms: it ends with an in-band error event at the deadline, exit 0', async () => {
  const c = defaultConfig();
  c.server.drain_timeout_ms = 300;
  c.providers = { glm: providerFor(fake) };
  c.models = { trickle: ['glm/trickle:drain'] };
  const g = await startGateway({ config: c, env: { ZAI_API_KEY: 'zai.drain' } });
  let sent = false;
  const r = await chatStream(g, { model: 'trickle', messages: userMsg(), stream: true, stream_options: { include_usage: true } }, {
    timeoutMs: 12000,
    onEvent: (ev) => {
      if (!sent && ev.data && ev.data.includes('tick1')) {
        sent = true;
        g.kill('SIGTERM'); // 300 ms of drain; the stream needs 4 x 300 ms more
      }
    },
  });
  assert.equal(r.status, 200);
  assert.equal(r.done, false, 'no fabricated [DONE]');
  assert.equal(r.errors.length, 1, `one error event, not a bare end of file: ${r.raw.slice(-400)}`);
  assert.equal(r.errors[0].error.code, 'gateway_draining');
  assert.equal(r.chunks.at(-1).choices[0].finish_reason, 'error');
  assert.equal(r.chunks.at(-1).id, r.chunks[0].id, 'the error chunk has the stream id');
  assert.ok(r.ended, 'the chunked response was terminated properly');
  const exit = await g.waitExit(7000);
  assert.deepEqual(exit, { code: 0, signal: null });
});
