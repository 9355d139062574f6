// Independent GGUF reader check: parses a file with @huggingface/gguf and prints what it found
// (architecture, scalar/string metadata, tensor names, shapes, types, offsets, data offset).
// Usage: node gguf_inspect.js FILE
const { gguf } = require('@huggingface/gguf');
(async () => {
  const { metadata, tensorInfos, tensorDataOffset } = await gguf(process.argv[2], { allowLocalFile: true });
  const meta = {};
  for (const [k, v] of Object.entries(metadata)) {
    if (Array.isArray(v)) meta[k] = { array_length: v.length, first: String(v[0]) };
    else meta[k] = typeof v === 'bigint' ? v.toString() : v;
  }
  const tensors = tensorInfos.map((t) => ({
    name: t.name,
    shape: t.shape.map((d) => Number(d)),
    dtype: t.dtype,
    offset: Number(t.offset),
  }));
  process.stdout.write(JSON.stringify({ metadata: meta, tensors, data_offset: Number(tensorDataOffset) }));
})().catch((e) => {
  console.error(String(e));
  process.exit(1);
});
