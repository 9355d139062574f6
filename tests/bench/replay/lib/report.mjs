// Figures, markdown tables and the JSON summary of the replay runs.

export const SLO = { ttft_ms: 2000 }; // answered, first token within 2 s of trace time

export const vendorOf = (deployment) => String(deployment ?? '?').split(/[@/]/)[0];

function quantile(sorted, q) {
  if (!sorted.length) return null;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[i];
}
const sortedBy = (xs) => [...xs].sort((a, b) => a - b);

function shares(answered, key = (r) => vendorOf(r.deployment)) {
  const n = {};
  for (const r of answered) n[key(r)] = (n[key(r)] ?? 0) + 1;
  return Object.fromEntries(Object.entries(n).sort((a, b) => b[1] - a[1]).map(([v, c]) => [v, c / answered.length]));
}

// Everything latency-like is scaled back to trace time (x factor).
export function summarise(run) {
  const f = run.factor;
  const answered = run.results.filter((r) => r.ok);
  const ttft = sortedBy(answered.filter((r) => r.ttft !== undefined).map((r) => r.ttft * f));
  const total = sortedBy(answered.filter((r) => r.total !== undefined).map((r) => r.total * f));
  const planned = sortedBy(run.plannedTtft);
  const slo = answered.filter((r) => r.ttft !== undefined && r.ttft * f <= SLO.ttft_ms).length;
  const t = run.total;
  const errors = {};
  const samples = {};
  for (const r of run.results.filter((x) => !x.ok)) {
    const k = r.status ? `HTTP ${r.status}` : 'transport';
    errors[k] = (errors[k] ?? 0) + 1;
    samples[k] ??= [];
    if (samples[k].length < 3 && !samples[k].includes(r.error)) samples[k].push(r.error);
  }
  return {
    name: run.name,
    policy: run.policyFile,
    scenario: run.scenario?.name ?? null,
    factor: f,
    requests: run.results.length,
    failed: run.results.length - answered.length,
    failures_by_kind: errors,
    failure_samples: samples,
    retried: answered.filter((r) => r.attempts > 1).length,
    cost_usd: t.cost_pico / 1e12,
    baseline_usd: t.baseline_pico / 1e12,
    saved_usd: t.saved_pico / 1e12,
    ledger_rows: t.requests,
    counters: run.counters,
    share: shares(answered),
    share_by_deployment: shares(answered, (r) => r.deployment),
    slo_attainment: slo / run.results.length,
    ttft_ms: { p50: quantile(ttft, 0.5), p99: quantile(ttft, 0.99) },
    total_ms: { p50: quantile(total, 0.5), p99: quantile(total, 0.99) },
    planned_ttft_ms: { p50: quantile(planned, 0.5), p99: quantile(planned, 0.99) },
    upstream_requests: run.upstreamRequests,
    client_lag_max_ms: run.lagMax,
    wall_s: run.wallMs / 1000,
    load_avg_1m: run.loadAvg,
    unmatched_models: run.unmatched,
  };
}

const usd = (x) => '$' + (x >= 1 ? x.toFixed(2) : x.toFixed(4));
const pct = (x) => (100 * x).toFixed(1) + ' %';
const ms = (x) => (x === null ? 'n/a' : Math.round(x).toLocaleString('en-US') + ' ms');

export function table(s) {
  const share = Object.entries(s.share).map(([v, x]) => `${v} ${pct(x)}`).join(', ');
  const kinds = Object.entries(s.failures_by_kind).map(([k, n]) => `${k}: ${n}`).join(', ');
  const lines = [
    `### ${s.name}: \`${s.policy}\`${s.scenario ? ` under scenario \`${s.scenario}\`` : ''}`,
    '',
    '| figure | value |',
    '|---|---|',
    `| requests | ${s.requests} |`,
    `| failed requests | ${s.failed}${kinds ? ` (${kinds})` : ''} |`,
    `| answered after a fail-over | ${s.retried} |`,
    `| total cost (gateway ledger) | ${usd(s.cost_usd)} |`,
    `| baseline cost (GPT-class $1.25 / $10 per M) | ${usd(s.baseline_usd)} |`,
    `| saving | ${usd(s.saved_usd)} (${s.baseline_usd ? pct(s.saved_usd / s.baseline_usd) : 'n/a'}) |`,
    `| share per vendor (answered requests) | ${share} |`,
    `| SLO attainment (answered, TTFT <= ${SLO.ttft_ms} ms) | ${pct(s.slo_attainment)} |`,
    `| TTFT p50 / p99 (trace ms) | ${ms(s.ttft_ms.p50)} / ${ms(s.ttft_ms.p99)} |`,
    `| TTFT p50 / p99 the fakes planned (trace ms; the rest is gateway and harness) | ${ms(s.planned_ttft_ms.p50)} / ${ms(s.planned_ttft_ms.p99)} |`,
    `| total latency p50 / p99 (trace ms) | ${ms(s.total_ms.p50)} / ${ms(s.total_ms.p99)} |`,
    `| client send lag, max (wall ms) | ${s.client_lag_max_ms.toFixed(1)} |`,
    `| wall time of the replay; machine load average (1 min) before / after | ${s.wall_s.toFixed(1)} s; ${s.load_avg_1m.map((x) => x.toFixed(1)).join(' / ')} |`,
  ];
  if (s.unmatched_models.length) lines.push(`| NOT MODELLED (answered 500) | ${s.unmatched_models.join(', ')} |`);
  return lines.join('\n') + '\n';
}

export function header(opts, trace) {
  return [
    `## Replay benchmark (${new Date().toISOString().slice(0, 16)}Z)`,
    '',
    `Trace: ${trace.length} requests (${opts.minutes} min of the Azure LLM trace 2023, conv + code), compressed ${opts.factor}x ` +
      `(latencies measured by the client on the wall clock and multiplied by ${opts.factor}: trace-time ms; the gateway's own ` +
      `overhead is multiplied too). Seed ${opts.seed}. Costs are the gateway's: \`GET /admin/spend?savings=1\`.`,
    '',
  ].join('\n');
}
