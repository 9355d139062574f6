// A helper process for the integration tests (redis-server, prometheus): spawned with its output
// kept for error messages, its exit recorded, and a bounded stop.
import { spawn } from 'node:child_process';

// Returns {proc, exitPromise, log, exited, stop()}; log and exited are live getters.
export function spawnService(bin, args) {
  const proc = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  proc.stdout.on('data', (d) => (log += d));
  proc.stderr.on('data', (d) => (log += d));
  let exited = null;
  const exitPromise = new Promise((r) => proc.on('exit', (code, signal) => r((exited = { code, signal }))));
  return {
    proc,
    exitPromise,
    get log() {
      return log;
    },
    get exited() {
      return exited;
    },
    // Sends `signal`, then SIGKILL after graceMs; resolves once the process is gone.
    async stop(signal = 'SIGTERM', graceMs = 3000) {
      if (exited) return exited;
      proc.kill(signal);
      const t = setTimeout(() => proc.kill('SIGKILL'), graceMs);
      await exitPromise;
      clearTimeout(t);
      return exited;
    },
  };
}
