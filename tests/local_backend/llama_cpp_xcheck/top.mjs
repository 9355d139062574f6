// llama.cpp's most probable next tokens after a token prompt: node top.mjs MODEL KV K TOKEN...
// (KV: the KV cache type, F32 or F16; one "id probability" line per token, most probable first).
import {getLlama} from "node-llama-cpp";
const [modelPath, kv, kArg, ...promptArgs] = process.argv.slice(2);
const llama = await getLlama({gpu: false, build: "never", logLevel: "error"});
const model = await llama.loadModel({modelPath, gpuLayers: 0});
const ctx = await model.createContext({contextSize: 512, threads: 1, batchSize: 64, sequences: 1,
  experimentalKvCacheKeyType: kv, experimentalKvCacheValueType: kv, flashAttention: process.env.FA === "1"});
const seq = ctx.getSequence();
for await (const out of seq.evaluateWithMetadata(promptArgs.map(Number), {probabilities: true}, {temperature: 0})) {
  const top = [...out.probabilities.entries()].sort((a, b) => b[1] - a[1]).slice(0, Number(kArg));
  for (const [id, p] of top) console.log(`${id} ${p.toFixed(6)}`);
  break;
}
await ctx.dispose(); await model.dispose();
