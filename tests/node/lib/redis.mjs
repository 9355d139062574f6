// A real redis-server (Debian package `redis-server`) for the distributed-state tests, on loopback,
// without persistence (--save '' --appendonly no), so that a restart on the same port starts empty.
//
// startRedis({port}) resolves {port, proc, stop(signal), restart(), cli(...args)} once PING answers.

import { execFile } from 'node:child_process';
import fs from 'node:fs';
import { freePort } from './prometheus.mjs';
import { sleep, tmpDir } from './gateway.mjs';
import { spawnService } from './service.mjs';

export const REDIS_BIN = process.env.REDIS_SERVER_BIN || '/usr/bin/redis-server';
export const REDIS_CLI = process.env.REDIS_CLI_BIN || '/usr/bin/redis-cli';

export function redisCli(port, args, timeoutMs = 3000) {
  return new Promise((resolve) => {
    execFile(REDIS_CLI, ['-h', '127.0.0.1', '-p', String(port), ...args], { timeout: timeoutMs }, (err, stdout, stderr) =>
      resolve({ ok: !err, stdout: String(stdout).trim(), stderr: String(stderr) }),
    );
  });
}

async function spawnRedis(port, dir, readyTimeoutMs) {
  const svc = spawnService(REDIS_BIN, [
    '--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--daemonize', 'no', '--dir', dir, '--loglevel', 'warning',
  ]);
  const deadline = Date.now() + readyTimeoutMs;
  for (;;) {
    if (svc.exited) throw new Error(`redis-server exited (${JSON.stringify(svc.exited)}): ${svc.log.slice(-1000)}`);
    const r = await redisCli(port, ['PING'], 1000);
    if (r.ok && r.stdout === 'PONG') break;
    if (Date.now() > deadline) {
      svc.proc.kill('SIGKILL');
      throw new Error(`redis-server on ${port} not answering PING within ${readyTimeoutMs} ms: ${svc.log.slice(-1000)}`);
    }
    await sleep(50);
  }
  return svc;
}

export async function startRedis({ port, readyTimeoutMs = 10000 } = {}) {
  if (!fs.existsSync(REDIS_BIN)) throw new Error(`redis-server not found at ${REDIS_BIN}: install the Debian package 'redis-server' or set REDIS_SERVER_BIN`);
  const p = port ?? (await freePort());
  const dir = tmpDir('gw-redis-');
  let inst = await spawnRedis(p, dir, readyTimeoutMs);
  return {
    port: p,
    get proc() {
      return inst.proc;
    },
    get running() {
      return inst && !inst.exited;
    },
    cli: (...args) => redisCli(p, args),
    // Stops this instance (SIGKILL by default: a crash) and waits for it to be gone (bounded).
    async stop(signal = 'SIGKILL') {
      if (inst) await inst.stop(signal, 3000);
    },
    // A fresh, empty instance on the same port.
    async restart() {
      await this.stop();
      inst = await spawnRedis(p, dir, readyTimeoutMs);
    },
  };
}
