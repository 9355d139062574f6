// The OpenAI-shaped /embeddings endpoint of each vendor fake, as the vendors document it:
// Qwen DashScope compatible-mode (POST /compatible-mode/v1/embeddings: at most 10 rows, dimensions
// one of 64..2048, usage {prompt_tokens, total_tokens}), GLM bigmodel (POST /api/paas/v4/embeddings:
// dimensions 256..2048, usage with completion_tokens 0, errors {error: {code, message}}), and a
// generic OpenAI-compatible server (/v1/embeddings, 2,048 rows). Over the row limit each answers 400
// as the vendor does, so a gateway that does not split is caught.
//
// The data items come back in reverse index order (the format orders by `index`, not by position),
// and each vector is a pure function of its row (exactly representable in float32, so a base64
// round trip is exact): embeddingFor(row, dims).
//
// Behaviour is set on the control object (fake.embeddings): scenario 'ok' | 'server-error' (500) |
// 'no-usage' (usage omitted) | 'fail-marked' (500 for a request holding a row that contains "FAIL",
// so only that sub-batch fails) | 'garbage' (a 200 that is not JSON).
export const EMBEDDING_PATHS = {
  qwen: '/compatible-mode/v1/embeddings',
  glm: '/api/paas/v4/embeddings',
  openai: '/v1/embeddings',
};
export const EMBEDDING_LIMITS = {
  qwen: { rows: 10, dims: [64, 128, 256, 512, 768, 1024, 1536, 2048], defaultDims: 1024 },
  glm: { rows: 64, dims: [256, 512, 1024, 2048], defaultDims: 2048 },
  openai: { rows: 2048, dims: null, defaultDims: 16 },
};
export const FAKE_MODEL = { qwen: 'text-embedding-v4', glm: 'embedding-3', openai: 'embed-small' };

export const isEmbeddingsPath = (dialect, url) => EMBEDDING_PATHS[dialect] === url.split('?')[0];

// The tokens the fake bills for a row: a string's bytes / 4 (rounded up), or a token array's length.
export const tokensFor = (row) => (Array.isArray(row) ? row.length : Math.ceil(Buffer.byteLength(row) / 4));

function hash(row) {
  const s = JSON.stringify(row);
  let h = 2166136261;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 16777619) >>> 0;
  return h;
}

// Multiples of 1/64 below 4: exact in float32.
export function embeddingFor(row, dims) {
  const h = hash(row);
  return Array.from({ length: dims }, (_, i) => (((h >>> (i % 24)) + i * 7) % 256) / 64 - 2);
}

function vendorError(dialect, status, message) {
  if (dialect === 'glm') return [status, { error: { code: '1214', message } }];
  if (dialect === 'qwen') return [status, { error: { message, type: 'InvalidParameter', param: null, code: 'InvalidParameter' } }];
  return [status, { error: { message, type: 'invalid_request_error', param: null, code: null } }];
}

// Answers one POST to the dialect's embeddings path (rec.body parsed). Returns [status, body | text].
export function answerEmbeddings(dialect, rec, control) {
  const lim = EMBEDDING_LIMITS[dialect];
  const b = rec.body;
  if (!b || typeof b !== 'object') return vendorError(dialect, 400, 'request body is not JSON');
  const input = typeof b.input === 'string' ? [b.input] : b.input;
  if (!Array.isArray(input) || input.length === 0) return vendorError(dialect, 400, 'input is required');
  const rows = input.length > 0 && typeof input[0] === 'number' ? [input] : input;
  rec.embeddingRows = rows;
  if (rows.length > lim.rows)
    return vendorError(dialect, 400, dialect === 'qwen' ? `batch size is invalid, it should not be larger than ${lim.rows}.: input.contents`
                                                       : `input array holds more than ${lim.rows} items`);
  const dims = b.dimensions ?? lim.defaultDims;
  if (lim.dims && !lim.dims.includes(dims)) return vendorError(dialect, 400, `dimensions ${dims} is not supported`);
  const scenario = control.scenario;
  if (scenario === 'server-error') return [500, { error: { message: 'internal error', type: 'server_error' } }];
  if (scenario === 'fail-marked' && rows.some((r) => typeof r === 'string' && r.includes('FAIL')))
    return [500, { error: { message: 'internal error (marked row)', type: 'server_error' } }];
  if (scenario === 'garbage') return [200, '<html>502 Bad Gateway</html>'];
  const data = rows.map((r, index) => ({ object: 'embedding', index, embedding: embeddingFor(r, dims) })).reverse();
  const tokens = rows.reduce((n, r) => n + tokensFor(r), 0);
  const out = { object: 'list', data, model: String(b.model ?? '') };
  if (dialect === 'qwen') out.id = 'emb-' + rec.at.toFixed(0);
  if (scenario !== 'no-usage')
    out.usage = dialect === 'glm' ? { completion_tokens: 0, prompt_tokens: tokens, total_tokens: tokens }
                                  : { prompt_tokens: tokens, total_tokens: tokens };
  return [200, out];
}
