// The plot, written as SVG by hand: per run, cumulative cost over trace time (from the gateway's
// ledger) and the vendor share of answered requests per time bucket; scenario events as red lines.

import { vendorOf } from './report.mjs';

const COLORS = { deepseek: '#4e79a7', qwen: '#f28e2b', glm: '#59a14f', kimi: '#e15759' };
const OTHER = '#bab0ac';
const W = 1000;
const ROW_H = 230;
const PANEL = { w: 430, h: 160, top: 40, left: [70, 560] };
const BUCKET_MS = 30_000;

const esc = (s) => String(s).replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]);
const text = (x, y, s, extra = '') => `<text x="${x.toFixed(1)}" y="${y.toFixed(1)}" ${extra}>${esc(s)}</text>`;

function axes(x0, y0, spanMin, yMax, yLabel, fmt) {
  const out = [`<rect x="${x0}" y="${y0}" width="${PANEL.w}" height="${PANEL.h}" fill="none" stroke="#888"/>`];
  for (let m = 0; m <= spanMin; m += spanMin > 12 ? 5 : 1) {
    const x = x0 + (m / spanMin) * PANEL.w;
    out.push(`<line x1="${x}" y1="${y0 + PANEL.h}" x2="${x}" y2="${y0 + PANEL.h + 4}" stroke="#888"/>`, text(x, y0 + PANEL.h + 16, m, 'text-anchor="middle"'));
  }
  for (let i = 0; i <= 4; i++) {
    const y = y0 + PANEL.h - (i / 4) * PANEL.h;
    out.push(text(x0 - 6, y + 4, fmt((yMax * i) / 4), 'text-anchor="end"'));
  }
  out.push(text(x0 + PANEL.w / 2, y0 + PANEL.h + 32, 'trace minute', 'text-anchor="middle"'), text(x0, y0 - 6, yLabel));
  return out;
}

function events(x0, y0, spanMin, scenario) {
  return (scenario?.events ?? []).flatMap((e) => {
    const x = x0 + (e.atMs / 60000 / spanMin) * PANEL.w;
    return [
      `<line x1="${x}" y1="${y0}" x2="${x}" y2="${y0 + PANEL.h}" stroke="#d00" stroke-dasharray="4 3"/>`,
      text(x + 3, y0 + 12, e.note || e.error || `latency x${e.latencyFactor}`, 'fill="#d00" font-size="10"'),
    ];
  });
}

function costPanel(run, y0, spanMin) {
  const x0 = PANEL.left[0];
  let cum = 0;
  const pts = [[0, 0]];
  const pixelMs = (spanMin * 60000) / PANEL.w;
  // Rows written after the window's end (answers still streaming) are drawn at its right edge; one
  // point per pixel column (the last row's) keeps the file small.
  for (const r of run.rows) {
    const t = Math.min(r.t_ms, spanMin * 60000);
    cum += r.cost_pico / 1e12;
    if (Math.floor(t / pixelMs) === Math.floor(pts.at(-1)[0] / pixelMs) && pts.length > 1) pts.pop();
    pts.push([t, cum]);
  }
  const yMax = cum > 0 ? cum * 1.05 : 1;
  const xy = ([t, c]) => `${(x0 + (t / 60000 / spanMin) * PANEL.w).toFixed(1)},${(y0 + PANEL.h - (c / yMax) * PANEL.h).toFixed(1)}`;
  return [
    ...axes(x0, y0, spanMin, yMax, 'cumulative cost, USD (gateway ledger)', (v) => v.toFixed(3)),
    `<polyline fill="none" stroke="#333" stroke-width="1.5" points="${pts.map(xy).join(' ')}"/>`,
    ...events(x0, y0, spanMin, run.scenario),
  ];
}

function sharePanel(run, y0, spanMin, vendors) {
  const x0 = PANEL.left[1];
  const buckets = Math.ceil((spanMin * 60000) / BUCKET_MS);
  const bw = PANEL.w / buckets;
  const out = axes(x0, y0, spanMin, 1, 'vendor share of answered requests', (v) => `${Math.round(v * 100)}%`);
  for (let b = 0; b < buckets; b++) {
    const inB = run.results.filter((r) => r.ok && Math.floor(r.t_ms / BUCKET_MS) === b);
    let y = y0 + PANEL.h;
    for (const v of vendors) {
      const h = inB.length ? (inB.filter((r) => vendorOf(r.deployment) === v).length / inB.length) * PANEL.h : 0;
      if (h > 0) out.push(`<rect x="${(x0 + b * bw).toFixed(1)}" y="${(y - h).toFixed(1)}" width="${(bw - 1).toFixed(1)}" height="${h.toFixed(1)}" fill="${COLORS[v] ?? OTHER}"/>`);
      y -= h;
    }
  }
  return [...out, ...events(x0, y0, spanMin, run.scenario)];
}

export function plot(runs, spanMin) {
  const vendors = [...new Set(runs.flatMap((r) => r.results.filter((x) => x.ok).map((x) => vendorOf(x.deployment))))].sort();
  const legend = vendors.map((v, i) => `<rect x="${640 + i * 90}" y="30" width="12" height="12" fill="${COLORS[v] ?? OTHER}"/>` + text(656 + i * 90, 40, v));
  const body = runs.flatMap((run, i) => {
    const y0 = 40 + i * ROW_H + PANEL.top;
    const title = `${run.name}: ${run.policyFile}${run.scenario ? ` + ${run.scenario.name}` : ''}`;
    return [text(10, y0 - 22, title, 'font-weight="bold"'), ...costPanel(run, y0, spanMin), ...sharePanel(run, y0, spanMin, vendors)];
  });
  const h = 40 + runs.length * ROW_H + 20;
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${h}" viewBox="0 0 ${W} ${h}" font-family="sans-serif" font-size="11">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    text(10, 22, 'Replay of the Azure LLM trace through the gateway: cost and vendor share over trace time', 'font-size="13" font-weight="bold"'),
    ...legend,
    ...body,
    '</svg>',
  ].join('\n');
}
