// gguf-bench: prefill and decode speed of the local engine's model on any GGUF file, measured
// the way llama-bench measures (so the two tables can be put side by side):
//   pp N  an N-token prompt of random ids from an empty KV cache, in chunks of -ub tokens,
//         logits for the last token only; t/s = N / time.
//   tg N  N single-token steps from an empty KV cache, logits every step; t/s = N / time.
// Each test is warmed up once (the whole prompt for pp, one token for tg), then run -r times;
// t/s is mean ± sample standard deviation over the runs.
//
//   gguf-bench -m FILE [-m FILE...] [-p 512] [-n 128] [-t 1,2] [-r 5] [-ub 256] [-ctk f16]
//              [-o md|csv] [--no-warmup] [--no-repack]
// Lists are comma-separated; -p 0 or -n 0 skips those tests. KV bytes per token are printed at
// load, peak RSS after the table (md) or in every line (csv).
#include <sys/resource.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "local_backend/engine.h"
#include "local_backend/model.h"
#include "local_backend/quants_repack.h"

namespace {

using namespace local_backend;

struct Options {
  std::vector<std::string> models;
  std::vector<int> prompt{512}, gen{128}, threads{1, 2};
  int reps = 5;
  int ubatch = EngineConfig{}.prefill_chunk;  // the engine's own prefill chunk
  KvType kv = EngineConfig{}.kv_type;
  bool csv = false, warmup = true;
};

void usage() {
  std::fprintf(stderr,
               "usage: gguf-bench -m FILE [-m FILE...] [-p N,...] [-n N,...] [-t N,...] [-r N] [-ub N]\n"
               "                  [-ctk f32|f16|q8_0] [-o md|csv] [--no-warmup] [--no-repack]\n");
}

bool parse_list(const std::string& s, std::vector<int>* out) {
  out->clear();
  size_t i = 0;
  while (i <= s.size()) {
    const size_t j = s.find(',', i) == std::string::npos ? s.size() : s.find(',', i);
    char* end = nullptr;
    const long v = std::strtol(s.c_str() + i, &end, 10);
    if (end != s.c_str() + j || v < 0 || v > 1 << 20) return false;
    out->push_back(static_cast<int>(v));
    i = j + 1;
  }
  return !out->empty();
}

bool parse_args(int argc, char** argv, Options* o) {
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--no-warmup") {
      o->warmup = false;
      continue;
    }
    if (a == "--no-repack") {  // weights stay in the file's layout (before/after comparisons)
      disable_weight_repack(true);
      continue;
    }
    if (i + 1 >= argc) return false;
    const std::string v = argv[++i];
    std::vector<int> one;
    if (a == "-m") o->models.push_back(v);
    else if (a == "-p") { if (!parse_list(v, &o->prompt)) return false; }
    else if (a == "-n") { if (!parse_list(v, &o->gen)) return false; }
    else if (a == "-t") { if (!parse_list(v, &o->threads)) return false; }
    else if (a == "-r" || a == "-ub") {
      if (!parse_list(v, &one) || one.size() != 1 || one[0] < 1) return false;
      (a == "-r" ? o->reps : o->ubatch) = one[0];
    } else if (a == "-ctk") {
      auto t = parse_kv_type(v);
      if (!t) return false;
      o->kv = *t;
    } else if (a == "-o") {
      if (v != "md" && v != "csv") return false;
      o->csv = v == "csv";
    } else {
      return false;
    }
  }
  for (int t : o->threads)
    if (t < 1) return false;
  return !o->models.empty();
}

size_t peak_rss_bytes() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<size_t>(ru.ru_maxrss) * 1024;  // Linux reports KiB
}

// What llama-bench's model/size/params columns show: architecture and main weight type, tensor
// bytes, elements.
struct FileSummary {
  std::string label;
  size_t bytes = 0;
  int64_t params = 0;
};

FileSummary summarize(const Model& m) {
  FileSummary s;
  std::map<TensorType, size_t> by_type;
  for (const auto& t : m.file().tensors()) {
    s.bytes += t.n_bytes;
    s.params += t.n_elements();
    by_type[t.type] += t.n_bytes;
  }
  TensorType main = TensorType::f32;
  for (const auto& [t, b] : by_type)
    if (b > by_type[main]) main = t;
  std::string arch = "?";
  if (auto a = m.file().get_string("general.architecture"); a.ok()) arch = std::string(*a);
  s.label = arch + " " + type_name(main) + (by_type.size() > 2 ? " mix" : "");
  return s;
}

// One timed pass; returns seconds.
double run_once(const Model& m, ThreadPool& pool, int n_prompt, int n_gen, int ubatch, KvType kv, std::mt19937& rng) {
  const int32_t V = m.hparams().n_vocab;
  KvCache cache(m.hparams(), n_prompt + n_gen + 1, kv);
  cache.reserve(n_prompt + n_gen);
  std::vector<BatchEntry> batch;
  std::vector<float> logits;
  const auto t0 = std::chrono::steady_clock::now();
  for (int p0 = 0; p0 < n_prompt; p0 += ubatch) {
    batch.clear();
    for (int p = p0; p < std::min(n_prompt, p0 + ubatch); ++p)
      batch.push_back({static_cast<int32_t>(rng() % static_cast<uint32_t>(V)), p, &cache, p == n_prompt - 1});
    logits.clear();
    if (!m.forward(batch, pool, &logits).ok()) std::exit(1);
  }
  for (int g = 0; g < n_gen; ++g) {
    BatchEntry e{static_cast<int32_t>(rng() % static_cast<uint32_t>(V)), n_prompt + g, &cache, true};
    logits.clear();
    if (!m.forward(std::span<const BatchEntry>(&e, 1), pool, &logits).ok()) std::exit(1);
  }
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

struct Stats {
  double mean = 0, sd = 0;
};

Stats rate_stats(const std::vector<double>& secs, int tokens) {
  Stats s;
  std::vector<double> ts;
  for (double t : secs) ts.push_back(tokens / t);
  for (double v : ts) s.mean += v;
  s.mean /= static_cast<double>(ts.size());
  if (ts.size() > 1) {
    double sq = 0;
    for (double v : ts) sq += (v - s.mean) * (v - s.mean);
    s.sd = std::sqrt(sq / static_cast<double>(ts.size() - 1));
  }
  return s;
}

// v in units[0]; the next unit from `base` on (llama-bench switches to GiB at 1024 MiB, to B at 1000 M).
std::string human(double v, const char* const units[], double base) {
  int u = 0;
  while (v >= base && units[u + 1]) v /= base, ++u;
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.2f %s", v, units[u]);
  return buf;
}

void print_row(const Options& o, const std::string& path, const FileSummary& f, int threads, int n_prompt, int n_gen,
               Stats s, size_t kv_per_token) {
  const std::string test = n_gen == 0 ? "pp" + std::to_string(n_prompt) : "tg" + std::to_string(n_gen);
  if (o.csv) {
    std::printf("\"%s\",\"%s\",%zu,%lld,%d,%d,%d,%d,%s,%zu,%.6f,%.6f,%zu\n", path.c_str(), f.label.c_str(), f.bytes,
                static_cast<long long>(f.params), threads, n_prompt, n_gen, o.ubatch, kv_type_name(o.kv), kv_per_token,
                s.mean, s.sd, peak_rss_bytes());
  } else {
    static const char* const size_units[] = {"MiB", "GiB", nullptr};
    static const char* const param_units[] = {"M", "B", nullptr};
    std::printf("| %s | %s | %s | CPU | %d | %s | %.2f ± %.2f |\n", f.label.c_str(),
                human(static_cast<double>(f.bytes) / 1048576.0, size_units, 1024.0).c_str(),
                human(static_cast<double>(f.params) / 1e6, param_units, 1000.0).c_str(), threads, test.c_str(), s.mean, s.sd);
  }
  std::fflush(stdout);
}

void bench_model(const Options& o, const std::string& path) {
  auto loaded = Model::load(path);
  if (!loaded.ok()) {
    std::fprintf(stderr, "error: %s: %s\n", path.c_str(), loaded.error().message.c_str());
    std::exit(1);
  }
  const Model& m = **loaded;
  const FileSummary f = summarize(m);
  const size_t kv_per_token = kv_bytes_per_token(m.hparams(), o.kv);
  std::fprintf(stderr, "gguf-bench: %s: %s, KV cache %s: %zu bytes per token\n", path.c_str(), f.label.c_str(),
               kv_type_name(o.kv), kv_per_token);
  std::mt19937 rng(1234);
  for (int threads : o.threads) {
    ThreadPool pool(threads);
    std::vector<std::pair<int, int>> tests;
    for (int p : o.prompt)
      if (p > 0) tests.emplace_back(p, 0);
    for (int g : o.gen)
      if (g > 0) tests.emplace_back(0, g);
    for (auto [np, ng] : tests) {
      if (o.warmup) run_once(m, pool, np, ng > 0 ? 1 : 0, o.ubatch, o.kv, rng);
      std::vector<double> secs;
      for (int r = 0; r < o.reps; ++r) secs.push_back(run_once(m, pool, np, ng, o.ubatch, o.kv, rng));
      print_row(o, path, f, threads, np, ng, rate_stats(secs, np + ng), kv_per_token);
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  if (!parse_args(argc, argv, &o)) {
    usage();
    return 2;
  }
  if (o.csv) {
    std::printf("model_filename,model_type,model_size,model_n_params,n_threads,n_prompt,n_gen,n_ubatch,type_kv,"
                "kv_bytes_per_token,avg_ts,stddev_ts,peak_rss_bytes\n");
  } else {
    std::printf("| model | size | params | backend | threads | test | t/s |\n");
    std::printf("| ------------------------------ | ---------: | ---------: | ---------- | ------: | --------------: | -------------------: |\n");
  }
  for (const auto& path : o.models) bench_model(o, path);
  if (!o.csv) std::printf("\npeak RSS: %.1f MiB\n", static_cast<double>(peak_rss_bytes()) / 1048576.0);
  return 0;
}
