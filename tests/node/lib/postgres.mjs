// A real PostgreSQL server (Debian package `postgresql`) for the fleet-ledger tests: a throw-away
// cluster made with initdb in a temp dir, listening on 127.0.0.1 only (a free port picked here:
// postgres has no port 0) with its unix socket in the same temp dir, trust authentication, fsync
// off (the tests stop the server cleanly or kill gateways, never the machine).
//
// initdb and postgres refuse to run as root; as root the cluster is made and run as `nobody` via
// runuser (the temp dir is handed to that user). Not root: as the current user.
//
// postgresMissing() says why the tests must skip (no initdb found), or null. startPostgres()
// resolves {port, url(db), psql(sql, db), createDb(name), stop(mode), start(), close()}; every step
// has a bounded wait, and close() stops the server and removes the temp dir.

import fs from 'node:fs';
import path from 'node:path';
import { freePort } from './prometheus.mjs';
import { run, tmpDir } from './gateway.mjs';

// Debian installs the server binaries per major version; the newest wins, PG_BIN_DIR overrides.
function findBinDir() {
  if (process.env.PG_BIN_DIR) return process.env.PG_BIN_DIR;
  const root = '/usr/lib/postgresql';
  const versions = fs.existsSync(root) ? fs.readdirSync(root).filter((v) => /^\d+$/.test(v)).sort((a, b) => b - a) : [];
  for (const v of versions) if (fs.existsSync(path.join(root, v, 'bin', 'initdb'))) return path.join(root, v, 'bin');
  for (const dir of (process.env.PATH || '').split(':')) if (dir && fs.existsSync(path.join(dir, 'initdb'))) return dir;
  return null;
}

export const PG_BIN_DIR = findBinDir();
export const PSQL = fs.existsSync('/usr/bin/psql') ? '/usr/bin/psql' : PG_BIN_DIR && path.join(PG_BIN_DIR, 'psql');

export function postgresMissing() {
  if (!PG_BIN_DIR) return 'initdb not found (install the Debian package postgresql, or set PG_BIN_DIR)';
  if (!PSQL || !fs.existsSync(PSQL)) return 'psql not found (install the Debian package postgresql-client)';
  return null;
}

const asRoot = process.getuid?.() === 0;

// Runs a server binary as the cluster's owner.
function pgRun(bin, args, timeoutMs) {
  const exe = path.join(PG_BIN_DIR, bin);
  return asRoot ? run('runuser', ['-u', 'nobody', '--', exe, ...args], { timeoutMs }) : run(exe, args, { timeoutMs });
}

function check(r, what) {
  if (r.code !== 0) throw new Error(`${what} failed (exit ${r.code}):\n${r.stdout}\n${r.stderr}`);
  return r;
}

export async function startPostgres({ readyTimeoutMs = 30000 } = {}) {
  const missing = postgresMissing();
  if (missing) throw new Error(missing);
  const dir = tmpDir('gw-postgres-');
  if (asRoot) {
    // tmpDir makes the run's root and this dir mode 0700: nobody must be able to reach the dir.
    fs.chmodSync(path.dirname(dir), 0o755);
    fs.chmodSync(dir, 0o755);
    await run('chown', ['nobody:nogroup', dir], { timeoutMs: 5000 }).then((r) => check(r, 'chown'));
  }
  const data = path.join(dir, 'data');
  const logFile = path.join(dir, 'server.log');
  check(await pgRun('initdb', ['-D', data, '-A', 'trust', '-U', 'postgres', '-E', 'UTF8', '--locale=C', '--no-sync'], 60000), 'initdb');
  const port = await freePort();
  const opts = `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=50`;
  let running = false;
  const server = {
    port,
    dir,
    url: (db = 'postgres') => `postgres://postgres@127.0.0.1:${port}/${db}`,
    get running() {
      return running;
    },
    get log() {
      return fs.existsSync(logFile) ? fs.readFileSync(logFile, 'utf8') : '';
    },
    // -w: pg_ctl returns once the server accepts connections (or -t seconds passed).
    async start() {
      const r = await pgRun('pg_ctl', ['-D', data, '-l', logFile, '-o', opts, '-w', '-t', String(Math.ceil(readyTimeoutMs / 1000)), 'start'], readyTimeoutMs + 5000);
      check(r, `pg_ctl start (log: ${server.log.slice(-2000)})`);
      running = true;
    },
    // mode: fast (connections closed, clean shutdown) | immediate (as a crash).
    async stop(mode = 'fast') {
      if (!running) return;
      check(await pgRun('pg_ctl', ['-D', data, '-m', mode, '-w', '-t', '20', 'stop'], 25000), 'pg_ctl stop');
      running = false;
    },
    // One statement's rows, unaligned, '|' between columns; throws on an error.
    async psql(sql, db = 'postgres') {
      const r = await run(PSQL, ['-X', '-q', '-A', '-t', '-F', '|', '-v', 'ON_ERROR_STOP=1', '-h', '127.0.0.1', '-p', String(port), '-U', 'postgres', '-d', db, '-c', sql], { timeoutMs: 15000 });
      return check(r, `psql ${sql}`).stdout;
    },
    async createDb(name) {
      await server.psql(`CREATE DATABASE ${name}`);
      return server.url(name);
    },
    async close() {
      try {
        await server.stop('fast');
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
    },
  };
  try {
    await server.start();
  } catch (e) {
    fs.rmSync(dir, { recursive: true, force: true });
    throw e;
  }
  return server;
}
