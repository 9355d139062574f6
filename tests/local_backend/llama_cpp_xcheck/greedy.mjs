// llama.cpp greedy continuation of a token prompt: node greedy.mjs MODEL N_TOKENS TOKEN...
import {getLlama} from "node-llama-cpp";
const [modelPath, genArg, ...promptArgs] = process.argv.slice(2);
const llama = await getLlama({gpu: false, build: "never", logLevel: "error"});
const model = await llama.loadModel({modelPath, gpuLayers: 0});
const ctx = await model.createContext({contextSize: 512, threads: 1, batchSize: 64, sequences: 1});
const seq = ctx.getSequence();
const out = [];
for await (const tok of seq.evaluate(promptArgs.map(Number), {temperature: 0})) {
  out.push(tok);
  if (out.length >= Number(genArg)) break;
}
console.log(out.join(" "));
await ctx.dispose(); await model.dispose();
