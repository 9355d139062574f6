// Graceful drain on SIGTERM: in-flight streams complete, new connections are refused, exit code 0.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { startFake, TRICKLE } from './lib/fake_upstream.mjs';
import { startGateway, defaultConfig, providerFor, chatStream, userMsg, withTimeout, sleep } from './lib/gateway.mjs';

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

function tryConnect(port) {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      resolve('connected');
    });
    s.once('error', (e) => resolve(e.code));
    s.setTimeout(1000, () => {
      s.destroy();
      resolve('timeout');
    });
  });
}

test('SIGTERM during a trickling stream: stream completes with [DONE], new connections refused, exit 0', async () => {
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
  // Wait for SIGTERM to have been sent, then probe the listener.
  for (let i = 0; i < 50 && !sigtermAt; i++) await sleep(50);
  assert.ok(sigtermAt, 'SIGTERM sent after the first content chunk');
  let probe = 'connected';
  for (let i = 0; i < 10 && probe === 'connected'; i++) {
    await sleep(100);
    probe = await tryConnect(gw.port);
  }
  assert.equal(probe, 'ECONNREFUSED', 'new connections are refused within ~1 s of SIGTERM');

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
