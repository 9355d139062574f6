// One fake upstream per vendor and region (tests/node/lib/fake_upstream.mjs: each vendor's wire
// format), each answer planned from upstreams.yaml and the scenario on the compressed clock.

import { startFake } from '../../../node/lib/fake_upstream.mjs';
import { KEY_ENV } from '../../../node/lib/gateway.mjs';
import { effectsAt } from './model.mjs';

// Seeded PRNG (mulberry32) so two runs of the same trace draw the same latencies and errors.
export function rng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const Z99 = 2.3263; // standard normal quantile at 0.99
function lognormal(rand, { median, p99 }) {
  const sigma = Math.log(p99 / median) / Z99;
  const z = Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand());
  return median * Math.exp(sigma * z);
}

// The driver's marker in the last user message: the trace's token counts for this request.
export const marker = (inTok, outTok) => `replay in=${inTok} out=${outTok}.`;
function counts(body) {
  const msgs = Array.isArray(body?.messages) ? body.messages : [];
  const text = String(msgs.at(-1)?.content ?? '');
  const m = /replay in=(\d+) out=(\d+)\./.exec(text);
  return m ? { in: Number(m[1]), out: Number(m[2]) } : null;
}

// One answer's plan (see answerShaped in fake_upstream.mjs), in compressed milliseconds.
function plan(d, body, { clock, scenario, rand, factor }) {
  const c = counts(body);
  if (!c) return { error: 'bad-key' }; // not the driver's request: refuse loudly
  const eff = effectsAt(scenario, d, clock.traceMs());
  if (eff.error) return { error: eff.error, delayMs: 50 / factor };
  // The gateway cools a deployment down for 1 s (wall) after a 429 without Retry-After: compressed,
  // that covers `factor` times more trace time, so 429s are drawn `factor` times rarer to keep the
  // share of trace time spent cooling down what upstreams.yaml's rate gives uncompressed.
  const r = rand();
  if (r < d.errorRate) return { error: 'server-error', delayMs: lognormal(rand, d.ttft) / factor };
  if (r < d.errorRate + d.rateLimitRate / factor) return { error: 'rate-limit', delayMs: 50 / factor };
  const ttft = lognormal(rand, d.ttft) * eff.latencyFactor;
  const duration = ((c.out / d.tokensPerS) * 1000 * eff.latencyFactor);
  return { ttftMs: ttft / factor, durationMs: duration / factor, usage: { prompt: c.in, cached: 0, completion: c.out, reasoning: 0 } };
}

// Starts the fakes; resolves {providers (the gateway config's section), unmatched (models the
// gateway asked for that upstreams.yaml does not model), plannedTtft, requests(), close()}.
export async function startFakes(upstreams, { clock, scenario, factor, seed }) {
  const rand = rng(seed);
  const unmatched = new Set();
  const plannedTtft = []; // trace ms, every answer the fakes planned (the gateway and harness add to it)
  const byServer = new Map(); // "vendor@region" -> deployments there
  for (const d of Object.values(upstreams.deployments)) {
    const k = `${d.vendor}@${d.region}`;
    if (!byServer.has(k)) byServer.set(k, []);
    byServer.get(k).push(d);
  }
  const fakes = [];
  const providers = {};
  for (const [k, list] of byServer) {
    const [vendor, region] = k.split('@');
    const { dialect } = upstreams.vendors[vendor];
    const shaper = (rec) => {
      const d = list.find((x) => x.model === rec.body.model) ?? list.find((x) => x.model === '*');
      if (!d) {
        unmatched.add(`${k}/${rec.body.model}`);
        return { error: 'server-error' };
      }
      const p = plan(d, rec.body, { clock, scenario, rand, factor });
      if (p.ttftMs !== undefined) plannedTtft.push(p.ttftMs * factor);
      return p;
    };
    const fake = await startFake({ dialect, shaper, keepAliveTimeoutMs: 60_000, keepRequests: false });
    fakes.push(fake);
    providers[vendor] ??= { api_key_env: KEY_ENV[dialect], base_urls: {} };
    providers[vendor].base_urls[region] = fake.baseUrl;
  }
  return {
    providers,
    unmatched,
    plannedTtft,
    requests: () => fakes.reduce((n, f) => n + f.stats.requests, 0),
    async close() {
      await Promise.all(fakes.map((f) => f.close()));
    },
  };
}

// Dummy keys: the fakes do not check them (GLM's is in its id.secret form).
export const KEYS = { DEEPSEEK_API_KEY: 'sk-replay', DASHSCOPE_API_KEY: 'sk-replay', MOONSHOT_API_KEY: 'sk-replay', ZAI_API_KEY: 'replay.secret' };
