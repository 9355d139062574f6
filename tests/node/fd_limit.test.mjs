// The open-file limit: the gateway takes the hard limit as its soft one at start (each proxied
// connection holds two descriptors), and says so when even the hard limit cannot hold
// server.max_connections.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { startGateway, defaultConfig, request } from './lib/gateway.mjs';

// No upstream is called here: one provider that would be, so the configuration is complete.
function config(maxConnections) {
  const c = defaultConfig();
  c.server.max_connections = maxConnections;
  c.providers = { vllm: { type: 'openai_compatible', base_url: 'http://127.0.0.1:9/v1' } };
  c.models = { m: ['vllm/m'] };
  return c;
}

function openFileLimits(pid) {
  const line = fs.readFileSync(`/proc/${pid}/limits`, 'utf8').split('\n').find((l) => l.startsWith('Max open files'));
  const [soft, hard] = line.replace('Max open files', '').trim().split(/\s+/);
  return { soft: Number(soft), hard: Number(hard) };
}

test('the soft open-file limit is raised to the hard one', async () => {
  const gw = await startGateway({ config: config(1000), launcher: ['prlimit', '--nofile=1024:4096', '--'] });
  try {
    assert.deepEqual(openFileLimits(gw.proc.pid), { soft: 4096, hard: 4096 });
    assert.doesNotMatch(gw.stderr, /open-file limit/);
    assert.equal((await request(`${gw.url}/healthz`)).status, 200);
  } finally {
    await gw.stop();
  }
});

test('a hard limit too low for max_connections is reported at start, and the gateway still serves', async () => {
  const gw = await startGateway({ config: config(10000), launcher: ['prlimit', '--nofile=256:1024', '--'] });
  try {
    assert.equal(openFileLimits(gw.proc.pid).soft, 1024);
    assert.match(gw.stderr, /open-file limit \(1024\) holds about 384 proxied connections, fewer than server\.max_connections \(10000\)/);
    assert.equal((await request(`${gw.url}/healthz`)).status, 200);
  } finally {
    await gw.stop();
  }
});
