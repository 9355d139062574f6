// Harness: writes a temporary config, spawns the real gateway binary, waits for its
// "gateway: listening on http(s)://127.0.0.1:PORT" line, and offers HTTP helpers for the tests.

import { spawn, execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import http from 'node:http';
import https from 'node:https';
import { fileURLToPath } from 'node:url';
import { SseParser, classify } from './sse.mjs';

export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
export const GATEWAY_BIN = process.env.GATEWAY_BIN || path.join(REPO, 'build', 'gateway', 'gateway');

// Provider key variables are scrubbed from the inherited environment so that each test decides
// exactly which providers have keys.
const SCRUB = ['DEEPSEEK_API_KEY', 'DASHSCOPE_API_KEY', 'MOONSHOT_API_KEY', 'ZAI_API_KEY', 'ZHIPUAI_API_KEY', 'OPENAI_API_KEY', 'GLM_API_KEY', 'KIMI_API_KEY', 'QWEN_API_KEY'];

export function assertBinary() {
  let st;
  try {
    st = fs.statSync(GATEWAY_BIN);
  } catch {
    throw new Error(`gateway binary not found at ${GATEWAY_BIN} (set GATEWAY_BIN or build it: cmake --build build --target gateway). Integration tests cannot run without it.`);
  }
  if (!st.isFile() || (st.mode & 0o111) === 0) throw new Error(`gateway binary at ${GATEWAY_BIN} is not an executable file`);
}

// ---- minimal YAML emitter (block maps, flow sequences of scalars, JSON-quoted strings) ---------
function scalar(v) {
  if (v === null || v === undefined) return 'null';
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  return JSON.stringify(String(v));
}
export function toYaml(obj, indent = 0) {
  const pad = ' '.repeat(indent);
  let out = '';
  for (const [k, v] of Object.entries(obj)) {
    if (v === undefined) continue;
    const key = /^[A-Za-z0-9_.@-]+$/.test(k) ? k : JSON.stringify(k);
    if (Array.isArray(v)) {
      if (v.every((x) => x === null || typeof x !== 'object')) out += `${pad}${key}: [${v.map(scalar).join(', ')}]\n`;
      else {
        out += `${pad}${key}:\n`;
        for (const item of v) {
          const inner = toYaml(item, indent + 4).replace(/^ {4}/, '');
          out += `${pad}  - ${inner.slice(indent)}`;
        }
      }
    } else if (v !== null && typeof v === 'object') {
      out += `${pad}${key}:\n` + toYaml(v, indent + 2);
    } else {
      out += `${pad}${key}: ${scalar(v)}\n`;
    }
  }
  return out;
}

export function defaultConfig() {
  return {
    server: {
      listen: '127.0.0.1:0',
      workers: 2,
      max_connections: 1000,
      max_body_bytes: 1048576,
      header_timeout_ms: 5000,
      keepalive_idle_ms: 75000,
      drain_timeout_ms: 5000,
      access_log: 'stderr',
    },
    upstream: {
      connect_timeout_ms: 1000,
      tls_timeout_ms: 1000,
      first_byte_timeout_ms: 1500,
      stream_idle_timeout_ms: 1000,
      total_timeout_ms: 6000,
      max_attempts: 3,
    },
    providers: {},
    models: {},
  };
}

// Provider entry for a fake: {api_key_env, base_urls: {<region>: baseUrl}} for the four dialects,
// {type: openai_compatible, base_url} for 'openai'.
export const DEFAULT_REGION = { deepseek: 'global', qwen: 'ap-southeast-1', kimi: 'intl', glm: 'intl', minimax: 'intl' };
export const KEY_ENV = { deepseek: 'DEEPSEEK_API_KEY', qwen: 'DASHSCOPE_API_KEY', kimi: 'MOONSHOT_API_KEY', glm: 'ZAI_API_KEY', minimax: 'MINIMAX_API_KEY' };
export function providerFor(fake, extra = {}) {
  if (fake.dialect === 'openai') return { type: 'openai_compatible', base_url: fake.baseUrl, ...extra };
  const region = DEFAULT_REGION[fake.dialect];
  // The fake's Anthropic-compatible endpoint too: base_urls alone turns the vendor's built-in one off.
  const anthropic = fake.anthropicBaseUrl ? { anthropic_base_urls: { [region]: fake.anthropicBaseUrl } } : {};
  return { api_key_env: KEY_ENV[fake.dialect], base_urls: { [region]: fake.baseUrl }, ...anthropic, ...extra };
}

let tmpRoot = null;
export function tmpDir(prefix = 'gw-it-') {
  if (!tmpRoot) tmpRoot = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  return fs.mkdtempSync(path.join(tmpRoot, 'x'));
}

// config: object written as YAML to a temp file; or configPath: an existing file (e.g. deploy/gateway.yaml).
// launcher: a command that execs the gateway in its own process (e.g. ['prlimit', '--nofile=256:512', '--']).
export async function startGateway({ config, configPath, env = {}, readyTimeoutMs = 15000, args = [], launcher = [] } = {}) {
  assertBinary();
  const dir = tmpDir();
  const cfgPath = configPath ?? path.join(dir, 'gateway.yaml');
  if (!configPath) fs.writeFileSync(cfgPath, toYaml(config));
  const childEnv = { ...process.env };
  for (const k of SCRUB) delete childEnv[k];
  Object.assign(childEnv, env);
  const argv = [...launcher, GATEWAY_BIN, 'serve', '--config', cfgPath, ...args];
  const proc = spawn(argv[0], argv.slice(1), { env: childEnv, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  let exited = null;
  let signalled = false;
  const exitPromise = new Promise((resolve) => {
    proc.on('exit', (code, signal) => {
      exited = { code, signal };
      resolve(exited);
    });
  });
  proc.stdout.setEncoding('utf8');
  proc.stderr.setEncoding('utf8');
  proc.stderr.on('data', (d) => (stderr += d));
  const url = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      proc.kill('SIGKILL');
      reject(new Error(`gateway did not print its listening line within ${readyTimeoutMs} ms\n--- config ---\n${fs.readFileSync(cfgPath, 'utf8')}--- stdout ---\n${stdout}\n--- stderr ---\n${stderr}`));
    }, readyTimeoutMs);
    proc.stdout.on('data', (d) => {
      stdout += d;
      const m = /gateway: listening on (https?:\/\/[^\s]+)/.exec(stdout);
      if (m) {
        clearTimeout(timer);
        resolve(m[1].replace(/\/$/, ''));
      }
    });
    exitPromise.then((e) => {
      clearTimeout(timer);
      reject(new Error(`gateway exited (${JSON.stringify(e)}) before listening\n--- config ---\n${fs.readFileSync(cfgPath, 'utf8')}--- stdout ---\n${stdout}\n--- stderr ---\n${stderr}`));
    });
  });
  const u = new URL(url);
  const gw = {
    url,
    port: Number(u.port),
    host: u.hostname,
    proc,
    cfgPath,
    // Sends a signal and marks the exit as expected (drain test).
    kill(sig = 'SIGTERM') {
      signalled = true;
      proc.kill(sig);
    },
    dir,
    get stdout() {
      return stdout;
    },
    get stderr() {
      return stderr;
    },
    get exited() {
      return exited;
    },
    waitExit(timeoutMs = 10000) {
      return withTimeout(exitPromise, timeoutMs, 'gateway exit');
    },
    // SIGTERM, then SIGKILL after 5 s. Throws (with the stderr tail) if the gateway had died on its
    // own before stop() (crash during the tests) or was killed by a signal other than ours.
    async stop() {
      if (exited) {
        if (!signalled && (exited.signal || exited.code !== 0))
          throw new Error(`gateway died during the tests (${JSON.stringify(exited)})\n--- stderr tail ---\n${stderr.slice(-3000)}`);
        return exited;
      }
      signalled = true;
      proc.kill('SIGTERM');
      const t = setTimeout(() => proc.kill('SIGKILL'), 5000);
      const e = await exitPromise;
      clearTimeout(t);
      return e;
    },
  };
  return gw;
}

export function withTimeout(promise, ms, what = 'operation') {
  let t;
  return Promise.race([
    promise.finally(() => clearTimeout(t)),
    new Promise((_, reject) => {
      t = setTimeout(() => reject(new Error(`${what} timed out after ${ms} ms`)), ms);
    }),
  ]);
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Polls `fn` every stepMs until it returns something truthy (returned), at most timeoutMs.
export async function waitFor(what, fn, timeoutMs = 10000, stepMs = 25) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await sleep(stepMs);
  }
}

// ---- HTTP helpers (node:http, a fresh connection per request: no pooling surprises) -------------
function requester(url) {
  return url.startsWith('https:') ? https : http;
}

// Plain request; resolves {status, headers, text, json, ms}. body: object (JSON-encoded), string or Buffer.
export function request(url, { method = 'GET', headers = {}, body, timeoutMs = 10000, ca, servername } = {}) {
  return new Promise((resolve, reject) => {
    let payload = body;
    const h = { ...headers };
    if (body !== undefined && !Buffer.isBuffer(body) && typeof body !== 'string') {
      payload = JSON.stringify(body);
      h['content-type'] ??= 'application/json';
    }
    if (payload !== undefined) h['content-length'] = Buffer.byteLength(payload);
    const t0 = performance.now();
    const req = requester(url).request(url, { method, headers: h, agent: false, ca, servername }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        clearTimeout(timer);
        const text = Buffer.concat(chunks).toString('utf8');
        let json;
        try {
          json = JSON.parse(text);
        } catch {
          json = undefined;
        }
        resolve({ status: res.statusCode, headers: res.headers, text, json, ms: performance.now() - t0 });
      });
      res.on('error', (e) => {
        clearTimeout(timer);
        reject(e);
      });
    });
    const timer = setTimeout(() => {
      req.destroy(new Error(`${method} ${url} timed out after ${timeoutMs} ms`));
    }, timeoutMs);
    req.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    if (payload !== undefined) req.write(payload);
    req.end();
  });
}

// Adds the gateway's fate to a transport error (a crash shows up as 'socket hang up' otherwise).
async function explained(gw, promise) {
  try {
    return await promise;
  } catch (e) {
    await sleep(50);
    if (gw.exited) e.message += ` [gateway process has exited: ${JSON.stringify(gw.exited)}; stderr tail: ${gw.stderr.slice(-800)}]`;
    throw e;
  }
}

export function chat(gw, body, opts = {}) {
  return explained(gw, request(gw.url + '/v1/chat/completions', { method: 'POST', body, ...opts }));
}

// Streaming request. Resolves after the response ends (or the socket dies) with
// {status, headers, events (SSE events with arrival times), ...classify(events), raw, t0, tHeaders, ended, error}.
// opts.onEvent(ev, ctx) may return 'abort' to destroy the client socket (disconnect test);
// opts.path another streaming endpoint (default /v1/chat/completions); opts.rawPayload a body string
// sent as is instead of JSON.stringify(body) (byte-exact forwarding tests).
export function chatStream(gw, body, opts = {}) {
  return explained(gw, chatStreamRaw(gw, body, opts));
}

function chatStreamRaw(gw, body, { timeoutMs = 15000, onEvent, headers = {}, ca, path = '/v1/chat/completions', rawPayload } = {}) {
  return new Promise((resolve, reject) => {
    const payload = rawPayload ?? JSON.stringify(body);
    const t0 = performance.now();
    const parser = new SseParser();
    let raw = '';
    let settled = false;
    const out = { status: null, headers: null, events: parser.events, raw: '', t0, tHeaders: null, ended: false, aborted: false, error: null };
    const finish = () => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      out.raw = raw;
      resolve(Object.assign(out, classify(parser.events)));
    };
    const url = gw.url + path;
    const req = requester(url).request(
      url,
      { method: 'POST', agent: false, ca, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload), accept: 'text/event-stream', ...headers } },
      (res) => {
        out.status = res.statusCode;
        out.headers = res.headers;
        out.tHeaders = performance.now();
        res.setEncoding('utf8');
        res.on('data', (d) => {
          raw += d;
          const evs = parser.push(d, performance.now());
          for (const ev of evs) {
            if (onEvent && onEvent(ev, out) === 'abort') {
              out.aborted = true;
              req.destroy();
              res.destroy();
              finish();
              return;
            }
          }
        });
        res.on('end', () => {
          out.ended = true;
          finish();
        });
        res.on('error', (e) => {
          out.error = e;
          finish();
        });
        res.on('close', finish);
      },
    );
    const timer = setTimeout(() => {
      out.error = new Error(`stream timed out after ${timeoutMs} ms`);
      req.destroy();
      if (out.status === null) reject(out.error);
      else finish();
    }, timeoutMs);
    req.on('error', (e) => {
      if (out.status === null && !settled) {
        clearTimeout(timer);
        settled = true;
        reject(e);
      } else {
        out.error = e;
        finish();
      }
    });
    req.write(payload);
    req.end();
  });
}

// Asserts the OpenAI error shape; returns the error object.
export function openAiError(assert, res, status) {
  assert.equal(res.status, status, `expected HTTP ${status}, got ${res.status}: ${res.text?.slice(0, 500)}`);
  assert.ok(res.json && typeof res.json === 'object', `error body is not JSON: ${res.text?.slice(0, 300)}`);
  const e = res.json.error;
  assert.ok(e && typeof e === 'object', `no "error" object in ${res.text?.slice(0, 300)}`);
  assert.equal(typeof e.message, 'string', 'error.message is a string');
  assert.ok(e.message.length > 0, 'error.message is not empty');
  for (const k of ['type', 'param', 'code']) assert.ok(k in e, `error.${k} is present (may be null): ${res.text}`);
  assert.ok(e.type === null || typeof e.type === 'string', 'error.type is a string or null');
  assert.match(String(res.headers['content-type'] || ''), /application\/json/, 'error content-type is JSON');
  return e;
}

export const userMsg = (text = 'Hi') => [{ role: 'user', content: text }];

// Runs a command, resolves {code, stdout, stderr}.
export function run(cmd, args, { input, timeoutMs = 30000, cwd } = {}) {
  return new Promise((resolve, reject) => {
    const p = execFile(cmd, args, { timeout: timeoutMs, cwd, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      if (err && typeof err.code !== 'number') return reject(Object.assign(err, { stdout, stderr }));
      resolve({ code: err ? err.code : 0, stdout, stderr });
    });
    if (input !== undefined) p.stdin.end(input);
  });
}
