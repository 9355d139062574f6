// Prometheus helpers for the routing tests: parse the gateway's /metrics text, read one sample,
// and start a real Prometheus server (Debian package `prometheus`) on loopback.

import { spawnService } from './service.mjs';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { request, sleep, tmpDir } from './gateway.mjs';

export const PROMETHEUS_BIN = process.env.PROMETHEUS_BIN || '/usr/bin/prometheus';

// Parses Prometheus text exposition into [{name, labels, value}] (comments skipped).
export function parseProm(text) {
  const out = [];
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)/.exec(line);
    if (!m) continue;
    const labels = {};
    if (m[3]) for (const lm of m[3].matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[lm[1]] = lm[2];
    out.push({ name: m[1], labels, value: Number(m[4]) });
  }
  return out;
}

// Sum of the samples of `name` whose labels include every pair of `labels`.
export function metricValue(samples, name, labels = {}) {
  let sum = 0;
  let found = false;
  for (const s of samples) {
    if (s.name !== name) continue;
    if (Object.entries(labels).every(([k, v]) => s.labels[k] === v)) {
      sum += s.value;
      found = true;
    }
  }
  return found ? sum : undefined;
}

export async function scrape(gw) {
  const res = await request(gw.url + '/metrics');
  if (res.status !== 200) throw new Error(`/metrics -> ${res.status}: ${res.text.slice(0, 300)}`);
  return { text: res.text, samples: parseProm(res.text) };
}

export async function freePort() {
  const srv = net.createServer();
  await new Promise((r) => srv.listen(0, '127.0.0.1', r));
  const p = srv.address().port;
  await new Promise((r) => srv.close(r));
  return p;
}

// Starts Prometheus scraping `targets` ("host:port" list) every scrapeIntervalMs. Fails loudly if
// the binary is missing. Resolves {url, port, proc, stop(), query(promql)} once /-/ready answers 200.
// port: listen port (default: a free one; pass one to give gateways the URL before Prometheus starts).
export async function startPrometheus({ targets, port, scrapeIntervalMs = 1000, readyTimeoutMs = 20000 } = {}) {
  if (!fs.existsSync(PROMETHEUS_BIN))
    throw new Error(`Prometheus binary not found at ${PROMETHEUS_BIN}: install the Debian package 'prometheus' (deploy/install-deps.sh) or set PROMETHEUS_BIN`);
  const dir = tmpDir('gw-prom-');
  const cfg = path.join(dir, 'prometheus.yml');
  const secs = `${Math.max(1, Math.round(scrapeIntervalMs / 1000))}s`;
  fs.writeFileSync(
    cfg,
    `global:\n  scrape_interval: ${secs}\n  scrape_timeout: ${secs}\n  evaluation_interval: ${secs}\n` +
      `scrape_configs:\n  - job_name: gateway\n    metrics_path: /metrics\n    static_configs:\n      - targets: [${targets.map((t) => JSON.stringify(t)).join(', ')}]\n`,
  );
  port ??= await freePort();
  const svc = spawnService(PROMETHEUS_BIN, [
    `--config.file=${cfg}`, `--storage.tsdb.path=${path.join(dir, 'data')}`, `--web.listen-address=127.0.0.1:${port}`, '--log.level=warn',
  ]);
  const proc = svc.proc;
  const url = `http://127.0.0.1:${port}`;
  const t0 = Date.now();
  for (;;) {
    if (svc.exited) throw new Error(`prometheus exited ${JSON.stringify(svc.exited)} before ready:\n${svc.log.slice(-3000)}`);
    try {
      const r = await request(url + '/-/ready', { timeoutMs: 1000 });
      if (r.status === 200) break;
    } catch {
      /* not listening yet */
    }
    if (Date.now() - t0 > readyTimeoutMs) {
      proc.kill('SIGKILL');
      throw new Error(`prometheus not ready within ${readyTimeoutMs} ms:\n${svc.log.slice(-3000)}`);
    }
    await sleep(100);
  }
  return {
    url,
    port,
    proc,
    dir,
    get log() {
      return svc.log;
    },
    async query(promql) {
      const r = await request(url + '/api/v1/query', {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: 'query=' + encodeURIComponent(promql),
      });
      if (r.status !== 200 || r.json?.status !== 'success') throw new Error(`query ${promql} -> ${r.status}: ${r.text.slice(0, 300)}`);
      return r.json.data.result;
    },
    async stop() {
      if (svc.exited) return svc.exited;
      const exited = await svc.stop('SIGTERM', 5000);
      fs.rmSync(dir, { recursive: true, force: true });
      return exited;
    },
  };
}
