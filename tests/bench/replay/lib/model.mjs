// The replay benchmark's inputs: the trace window, the upstream model (upstreams.yaml) and a scenario
// (scenarios/*.yaml), each checked strictly (an unknown key or a bad value is an error naming it).

import fs from 'node:fs';
import { createRequire } from 'node:module';

// The integration tests' node_modules (tests/node) hold the YAML parser.
const YAML = createRequire(new URL('../../../node/package.json', import.meta.url))('yaml');

export function readYaml(file) {
  const doc = YAML.parseDocument(fs.readFileSync(file, 'utf8'), { uniqueKeys: true });
  if (doc.errors.length) throw new Error(`${file}: ${doc.errors[0].message}`);
  return doc.toJS();
}
export const writeYaml = (obj) => YAML.stringify(obj);

function fail(where, msg) {
  throw new Error(`${where}: ${msg}`);
}
function onlyKeys(where, obj, allowed) {
  if (obj === null || typeof obj !== 'object' || Array.isArray(obj)) fail(where, 'must be a map');
  for (const k of Object.keys(obj)) if (!allowed.includes(k)) fail(where, `unknown key "${k}" (allowed: ${allowed.join(', ')})`);
}
function number(where, v, { min = 0, max = Infinity } = {}) {
  if (typeof v !== 'number' || !Number.isFinite(v) || v < min || v > max) fail(where, `must be a number in [${min}, ${max}], got ${JSON.stringify(v)}`);
  return v;
}

// ---- trace ----------------------------------------------------------------------------------
// CSV rows `TIMESTAMP,ContextTokens,GeneratedTokens` of every file, merged by time; t_ms from the
// earliest row's minute. `minutes` keeps only that much of the window.
export function loadTrace(files, minutes) {
  const rows = [];
  for (const [source, file] of Object.entries(files)) {
    const lines = fs.readFileSync(file, 'utf8').trim().split('\n');
    if (lines[0].trim() !== 'TIMESTAMP,ContextTokens,GeneratedTokens') fail(file, 'unexpected header');
    for (const line of lines.slice(1)) {
      const [ts, inTok, outTok] = line.split(',');
      const t = Date.parse(ts.trim().replace(' ', 'T') + 'Z');
      if (!Number.isFinite(t) || !(Number(inTok) >= 1) || !(Number(outTok) >= 1)) fail(file, `bad row "${line}"`);
      rows.push({ source, t, in: Number(inTok), out: Number(outTok) });
    }
  }
  rows.sort((a, b) => a.t - b.t);
  const start = Math.floor(rows[0].t / 60000) * 60000;
  return rows.map((r) => ({ ...r, t_ms: r.t - start })).filter((r) => r.t_ms < minutes * 60000);
}

// ---- upstreams.yaml -------------------------------------------------------------------------
const VENDOR_KEYS = ['dialect', 'default_region'];
const DEPLOYMENT_KEYS = ['ttft_ms', 'tokens_per_s', 'error_rate', 'rate_limit_rate'];

// Returns {vendors: {name: {dialect, default_region}}, deployments: {ref: {vendor, region, model, ...}}}.
export function loadUpstreams(file) {
  const y = readYaml(file);
  onlyKeys(file, y, ['vendors', 'deployments']);
  const vendors = {};
  for (const [name, v] of Object.entries(y.vendors ?? {})) {
    onlyKeys(`${file}: vendors.${name}`, v, VENDOR_KEYS);
    if (!['deepseek', 'qwen', 'kimi', 'glm'].includes(v.dialect)) fail(`${file}: vendors.${name}.dialect`, `unknown dialect ${JSON.stringify(v.dialect)}`);
    if (typeof v.default_region !== 'string') fail(`${file}: vendors.${name}.default_region`, 'must be a string');
    vendors[name] = v;
  }
  const deployments = {};
  for (const [ref, d] of Object.entries(y.deployments ?? {})) {
    const where = `${file}: deployments.${ref}`;
    const m = /^([a-z0-9-]+)(?:@([a-z0-9-]+))?\/(.+)$/.exec(ref);
    if (!m) fail(where, 'a deployment is vendor[@region]/model');
    if (!vendors[m[1]]) fail(where, `vendor "${m[1]}" is not under vendors`);
    onlyKeys(where, d, DEPLOYMENT_KEYS);
    onlyKeys(`${where}.ttft_ms`, d.ttft_ms, ['median', 'p99']);
    const median = number(`${where}.ttft_ms.median`, d.ttft_ms.median, { min: 1 });
    const p99 = number(`${where}.ttft_ms.p99`, d.ttft_ms.p99, { min: median });
    deployments[ref] = {
      ref,
      vendor: m[1],
      region: m[2] ?? vendors[m[1]].default_region,
      model: m[3],
      ttft: { median, p99 },
      tokensPerS: number(`${where}.tokens_per_s`, d.tokens_per_s, { min: 0.1 }),
      errorRate: number(`${where}.error_rate`, d.error_rate ?? 0, { max: 1 }),
      rateLimitRate: number(`${where}.rate_limit_rate`, d.rate_limit_rate ?? 0, { max: 1 }),
    };
  }
  if (!Object.keys(deployments).length) fail(file, 'no deployments');
  return { vendors, deployments };
}

// ---- scenarios ------------------------------------------------------------------------------
const EVENT_KEYS = ['at_min', 'vendor', 'deployment', 'latency_factor', 'error', 'note'];
const ERROR_KINDS = ['no-balance', 'rate-limit', 'server-error', 'bad-key'];

// {name, description, events: [{at_ms, vendor?, deployment?, latencyFactor?, error?, note}]}.
export function loadScenario(file, upstreams) {
  const y = readYaml(file);
  onlyKeys(file, y, ['name', 'description', 'events']);
  if (!Array.isArray(y.events)) fail(file, 'events must be a list');
  const events = y.events.map((e, i) => {
    const where = `${file}: events[${i}]`;
    onlyKeys(where, e, EVENT_KEYS);
    if ((e.vendor === undefined) === (e.deployment === undefined)) fail(where, 'exactly one of vendor, deployment');
    if (e.vendor !== undefined && !upstreams.vendors[e.vendor]) fail(where, `unknown vendor ${JSON.stringify(e.vendor)}`);
    if (e.deployment !== undefined && !upstreams.deployments[e.deployment]) fail(where, `unknown deployment ${JSON.stringify(e.deployment)}`);
    if ((e.latency_factor === undefined) === (e.error === undefined)) fail(where, 'exactly one of latency_factor, error');
    if (e.error !== undefined && !ERROR_KINDS.includes(e.error)) fail(where, `error must be one of ${ERROR_KINDS.join(', ')}`);
    return {
      atMs: number(`${where}.at_min`, e.at_min) * 60000,
      vendor: e.vendor,
      deployment: e.deployment,
      latencyFactor: e.latency_factor === undefined ? undefined : number(`${where}.latency_factor`, e.latency_factor, { min: 0.01 }),
      error: e.error,
      note: String(e.note ?? ''),
    };
  });
  return { name: String(y.name ?? file), description: String(y.description ?? ''), events };
}

// The events in effect for deployment d at trace time tMs: a latency factor (product) and an error.
export function effectsAt(scenario, d, tMs) {
  let latencyFactor = 1;
  let error;
  for (const e of scenario?.events ?? []) {
    if (e.atMs > tMs || (e.vendor && e.vendor !== d.vendor) || (e.deployment && e.deployment !== d.ref)) continue;
    if (e.latencyFactor) latencyFactor *= e.latencyFactor;
    if (e.error) error = e.error;
  }
  return { latencyFactor, error };
}
