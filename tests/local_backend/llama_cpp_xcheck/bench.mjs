// llama.cpp prefill (128 tokens) and decode tokens/s: node bench.mjs MODEL THREADS N_DECODE
import {getLlama} from "node-llama-cpp";
const [modelPath, threadsArg, genArg] = process.argv.slice(2);
const threads = Number(threadsArg || 1), gen = Number(genArg || 48);
const llama = await getLlama({gpu: false, build: "never", logLevel: "error"});
const model = await llama.loadModel({modelPath, gpuLayers: 0});
const ctx = await model.createContext({contextSize: 1024, threads, batchSize: 128, sequences: 1});
const seq = ctx.getSequence();
const prompt = Array.from({length: 128}, (_, p) => (p * 7919 + 13) % 150000);
const t0 = performance.now();
let n = 0, tFirst = 0;
for await (const tok of seq.evaluate(prompt, {temperature: 0})) {
  n++;
  if (n === 1) tFirst = performance.now();
  if (n >= gen + 1) break;
}
const t1 = performance.now();
console.log(JSON.stringify({model: modelPath.split('/').pop(), threads, prefill_tok_s: +(128 / ((tFirst - t0) / 1000)).toFixed(1),
  decode_tok_s: +((n - 1) / ((t1 - tFirst) / 1000)).toFixed(1)}));
await ctx.dispose(); await model.dispose();
