// The replay benchmark (not part of the test run): replays a window of the Azure LLM trace through the
// real gateway against modelled fake upstreams, for four configurations; prints one markdown table
// per run and writes results.json and plot.svg. Usage: tests/bench/replay/run.sh --help

import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { REPO } from '../../node/lib/gateway.mjs';
import { loadTrace, loadUpstreams, loadScenario } from './lib/model.mjs';
import { runOne } from './lib/drive.mjs';
import { summarise, table, header } from './lib/report.mjs';
import { plot } from './lib/svg.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const BASELINE = { input: 1.25, cached_input: 0.125, output: 10 }; // GPT-class list price, USD per 1M tokens
const RUNS = {
  default: { policy: 'policies/default.yaml' },
  'cheapest-first': { policy: 'policies/examples/cheapest-first.yaml' },
  diversified: { policy: 'policies/examples/diversified.yaml' },
  'vendor-loss': { policy: 'policies/default.yaml', scenario: 'scenarios/vendor_loss.yaml' },
};
const USAGE = `usage: tests/bench/replay/run.sh [--factor N] [--minutes M] [--runs a,b] [--out DIR] [--seed S]
  --factor   time compression (default 10: a 10-minute window replays in about 1 minute)
  --minutes  how much of the window to replay (default 10, at most the data's 10 minutes)
  --runs     comma-separated subset of: ${Object.keys(RUNS).join(', ')} (default: all)
  --out      directory for report.md, results.json and plot.svg (default build/bench-replay)
  --seed     seed of the fakes' latency and error draws (default 1)`;

function options() {
  const { values } = parseArgs({
    options: { factor: { type: 'string', default: '10' }, minutes: { type: 'string', default: '10' }, runs: { type: 'string', default: Object.keys(RUNS).join(',') }, out: { type: 'string', default: path.join(REPO, 'build', 'bench-replay') }, seed: { type: 'string', default: '1' }, help: { type: 'boolean', default: false } },
  });
  if (values.help) {
    console.log(USAGE);
    process.exit(0);
  }
  const o = { factor: Number(values.factor), minutes: Number(values.minutes), runs: values.runs.split(','), out: path.resolve(values.out), seed: Number(values.seed) };
  if (!(o.factor >= 1 && o.factor <= 1000)) throw new Error('--factor must be in [1, 1000]');
  if (!(o.minutes > 0 && o.minutes <= 10)) throw new Error('--minutes must be in (0, 10]');
  if (!Number.isInteger(o.seed)) throw new Error('--seed must be an integer');
  for (const r of o.runs) if (!RUNS[r]) throw new Error(`unknown run "${r}" (known: ${Object.keys(RUNS).join(', ')})`);
  return o;
}

async function main() {
  const opts = options();
  const trace = loadTrace({ conv: path.join(HERE, 'data/conv.csv'), code: path.join(HERE, 'data/code.csv') }, opts.minutes);
  const upstreams = loadUpstreams(path.join(HERE, 'upstreams.yaml'));
  fs.mkdirSync(opts.out, { recursive: true });
  let md = header(opts, trace);
  console.log(md);
  const runs = [];
  for (const name of opts.runs) {
    const spec = RUNS[name];
    const scenario = spec.scenario ? loadScenario(path.join(HERE, spec.scenario), upstreams) : null;
    const run = await runOne({ name, policyFile: spec.policy, policyPath: path.join(REPO, spec.policy), scenario, upstreams, trace, factor: opts.factor, seed: opts.seed, baseline: BASELINE });
    run.summary = summarise(run);
    runs.push(run);
    const t = table(run.summary);
    console.log(t);
    md += '\n' + t;
  }
  const results = { options: opts, baseline_price: BASELINE, trace_requests: trace.length, runs: runs.map((r) => ({ ...r.summary, scenario_events: r.scenario?.events ?? [] })) };
  fs.writeFileSync(path.join(opts.out, 'results.json'), JSON.stringify(results, null, 2) + '\n');
  fs.writeFileSync(path.join(opts.out, 'report.md'), md);
  fs.writeFileSync(path.join(opts.out, 'plot.svg'), plot(runs, opts.minutes));
  console.log(`wrote ${path.join(opts.out, 'report.md')}, results.json and plot.svg`);
  const bad = runs.filter((r) => r.summary.unmatched_models.length);
  if (bad.length) throw new Error(`models not in upstreams.yaml: ${[...new Set(bad.flatMap((r) => r.summary.unmatched_models))].join(', ')}`);
}

const stop = (sig) => () => {
  console.error(`replay: ${sig}, stopping`);
  process.exit(130);
};
process.on('SIGINT', stop('SIGINT'));
process.on('SIGTERM', stop('SIGTERM'));
main().catch((e) => {
  console.error(`replay: ${e.stack ?? e}`);
  process.exit(1);
});
