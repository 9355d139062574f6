// Resident memory per idle TLS client connection of the gateway's listener (server.tls), not part
// of CI. Starts the gateway with a test certificate, opens CONNS keep-alive TLS connections that
// each make one request and then stay open, and prints the gateway's RSS growth per connection.
// A/B: BASELINE_BIN=<other gateway> runs the same for that binary too and prints the ratio.
//   node tests/bench/tls_idle_bench.mjs        (env: CONNS=1000 GATEWAY_BIN BASELINE_BIN)
import fs from 'node:fs';
import https from 'node:https';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { makeCa } from '../node/lib/certs.mjs';
import { startGateway, defaultConfig } from '../node/lib/gateway.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const CONNS = Number(process.env.CONNS ?? 1000);
const rssKiB = (pid) => Number(/VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))[1]);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function measure(bin, ca, leaf) {
  const c = defaultConfig();
  c.server.tls = { cert_file: leaf.cert, key_file: leaf.key };
  c.server.max_connections = CONNS + 100;
  c.server.keepalive_idle_ms = 120000;
  c.providers = { up: { type: 'openai_compatible', base_url: 'http://127.0.0.1:9/v1' } };  // never called
  c.models = { m: ['up/m'] };
  // The launcher runs `bin` in place of the default binary (sh drops the default's path).
  const launcher = bin ? ['sh', '-c', 'shift; exec "$0" "$@"', bin] : [];
  const gw = await startGateway({ config: c, launcher });
  try {
    const agent = new https.Agent({ keepAlive: true, maxSockets: CONNS, maxFreeSockets: CONNS, ca: ca.caPem });
    const get = () => new Promise((resolve, reject) => {
      const req = https.get(gw.url + '/healthz', { agent, timeout: 30000 }, (res) => { res.resume(); res.on('end', resolve); });
      req.on('error', reject);
      req.on('timeout', () => req.destroy(new Error('timeout')));
    });
    await get();
    await sleep(500);
    const before = rssKiB(gw.proc.pid);
    // All at once, so that each request needs a connection of its own.
    await Promise.all(Array.from({ length: CONNS }, get));
    await sleep(1000);
    const after = rssKiB(gw.proc.pid);
    const open = Object.values(agent.freeSockets).reduce((n, l) => n + l.length, 0);
    agent.destroy();
    return { before, after, open, perConn: (after - before) / Math.max(1, open) };
  } finally {
    await gw.stop();
  }
}

const ca = await makeCa('TLS bench CA');
const leaf = await ca.leaf('gw', 'DNS:localhost,IP:127.0.0.1', 'localhost');
const runs = [['this build', undefined]];
if (process.env.BASELINE_BIN) runs.push(['baseline', process.env.BASELINE_BIN]);
const res = {};
for (const [name, bin] of runs) {
  res[name] = await measure(bin, ca, leaf);
  const r = res[name];
  console.log(`${name}: ${r.open} idle TLS client connections, RSS ${(r.before / 1024).toFixed(1)} -> ${(r.after / 1024).toFixed(1)} MiB, ${r.perConn.toFixed(1)} KiB per connection`);
}
if (res.baseline) console.log(`per-connection memory, this build / baseline: ${(res['this build'].perConn / res.baseline.perConn).toFixed(2)}`);
