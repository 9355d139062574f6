// Reads PromQL expressions out of the shipped deployment files and names what each one uses:
// metric names, label names (grouping clauses and selectors) and label matchers.

// Every `expr` of a Grafana dashboard (JSON) or of a Prometheus rules file (YAML: `expr: ...` on one
// line or `expr: |` followed by a more indented block).
export function promqlExpressions(file, text) {
  if (file.endsWith('.json')) {
    const out = [];
    const walk = (o) => {
      if (Array.isArray(o)) o.forEach(walk);
      else if (o && typeof o === 'object') for (const [k, v] of Object.entries(o)) k === 'expr' && typeof v === 'string' ? out.push(v) : walk(v);
    };
    walk(JSON.parse(text));
    return out.filter((e) => e.trim() !== '');
  }
  return rulesExpressions(text);
}

function rulesExpressions(text) {
  const lines = text.split('\n');
  const out = [];
  for (let i = 0; i < lines.length; i++) {
    const m = /^(\s*)(?:- )?expr:\s*(.*)$/.exec(lines[i]);
    if (!m) continue;
    if (m[2] !== '|' && m[2] !== '>') {
      out.push(m[2]);
      continue;
    }
    const indent = m[1].length;
    const block = [];
    while (i + 1 < lines.length && (lines[i + 1].trim() === '' || lines[i + 1].search(/\S/) > indent)) block.push(lines[++i].trim());
    out.push(block.join(' ').trim());
  }
  return out;
}

const KEYWORDS = new Set(['and', 'or', 'unless', 'bool', 'offset', 'inf', 'nan', 'group_left', 'group_right']);
const GROUPING = /\b(by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)/g;

// {metrics, labels, matchers: [{label, op, value}], derived: [{label, from, regex}]} of one
// expression. A label made by label_replace(v, "dst", "repl", "src", "regex") is not required on the
// samples (the query makes it); its source label is, and `derived` says which regex must match it.
export function promqlUses(expr) {
  const labels = new Set();
  const matchers = [];
  const derived = [];
  const str = '"((?:[^"\\\\]|\\\\.)*)"';
  for (const m of expr.matchAll(new RegExp(`label_replace\\s*\\(.*?,\\s*${str}\\s*,\\s*${str}\\s*,\\s*${str}\\s*,\\s*${str}\\s*\\)`, 'g'))) {
    derived.push({ label: m[1], from: m[3], regex: m[4].replace(/\\\\/g, '\\') });
  }
  let rest = expr.replace(/\{([^}]*)\}/g, (_, inner) => {
    for (const m of inner.matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"/g)) {
      labels.add(m[1]);
      matchers.push({ label: m[1], op: m[2], value: m[3] });
    }
    return ' ';
  });
  rest = rest.replace(GROUPING, (_, _kw, list) => {
    for (const l of list.split(',').map((s) => s.trim()).filter(Boolean)) labels.add(l);
    return ' ';
  });
  rest = rest.replace(/\[[^\]]*\]/g, ' ').replace(/"(?:[^"\\]|\\.)*"/g, ' ').replace(/\b\d+(?:\.\d+)?(?:e[+-]?\d+)?\b/gi, ' ');
  const metrics = new Set();
  for (const m of rest.matchAll(/[a-zA-Z_:][a-zA-Z0-9_:]*/g)) {
    const after = rest.slice(m.index + m[0].length);
    if (/^\s*\(/.test(after) || KEYWORDS.has(m[0].toLowerCase())) continue;
    metrics.add(m[0]);
  }
  for (const d of derived) if (!derived.some((o) => o.from === d.label)) labels.delete(d.label);
  for (const d of derived) labels.add(d.from);
  return { metrics: [...metrics], labels: [...labels], matchers, derived };
}
