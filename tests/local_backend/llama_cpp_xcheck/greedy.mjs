// llama.cpp greedy continuation of a token prompt: node greedy.mjs MODEL N_TOKENS TOKEN...
import {getLlama} from "node-llama-cpp";
const [modelPath, genArg, ...promptArgs] = process.argv.slice(2);
const llama = await getLlama({gpu: false, build: "never", logLevel: "error"});
const model = await llama.loadModel({modelPath, gpuLayers: 0});
// The engine's cross-check tool keeps an F32 KV cache (gguf-greedy-tokens' default); llama.cpp's
// flash attention (on by default here) rounds inside attention, which alone moves near-tied
// greedy tokens on these random models, so it is off: the two then compute the same products.
const ctx = await model.createContext({contextSize: 512, threads: 1, batchSize: 64, sequences: 1,
  experimentalKvCacheKeyType: "F32", experimentalKvCacheValueType: "F32", flashAttention: false});
const seq = ctx.getSequence();
const out = [];
for await (const tok of seq.evaluate(promptArgs.map(Number), {temperature: 0})) {
  out.push(tok);
  if (out.length >= Number(genArg)) break;
}
console.log(out.join(" "));
await ctx.dispose(); await model.dispose();
