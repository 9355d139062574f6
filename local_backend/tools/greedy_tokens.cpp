// gguf-greedy-tokens: greedy continuation of a token-id prompt with the local engine's model,
// printed as token ids (used to cross-check against other GGUF engines).
//   gguf-greedy-tokens [--kv f32|f16|q8_0] [--top K] [--kernels scalar] MODEL N_TOKENS TOKEN...
// --kv: the KV cache type (default f32). --top K: the K most probable next tokens after the
// prompt and their probabilities, one "id probability" line each on stderr. --kernels scalar:
// no SIMD kernels (to tell a kernel's error from the model's).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <numeric>
#include <vector>

#include "local_backend/model.h"
#include "local_backend/quants.h"

// Softmax of the logits in double; the `k` largest, most probable first.
void print_top(const std::vector<float>& logits, int k) {
  const float mx = *std::max_element(logits.begin(), logits.end());
  double sum = 0;
  for (float l : logits) sum += std::exp(static_cast<double>(l) - mx);
  std::vector<int32_t> ids(logits.size());
  std::iota(ids.begin(), ids.end(), 0);
  k = std::min<int>(k, static_cast<int>(ids.size()));
  std::partial_sort(ids.begin(), ids.begin() + k, ids.end(),
                    [&](int32_t x, int32_t y) { return logits[static_cast<size_t>(x)] > logits[static_cast<size_t>(y)]; });
  for (int i = 0; i < k; ++i)
    std::fprintf(stderr, "%d %.6f\n", ids[i], std::exp(static_cast<double>(logits[static_cast<size_t>(ids[i])]) - mx) / sum);
}

int main(int argc, char** argv) {
  using namespace local_backend;
  KvType kv = KvType::f32;
  int top = 0;
  int a = 1;
  for (; a + 1 < argc && std::strncmp(argv[a], "--", 2) == 0; a += 2) {
    if (std::strcmp(argv[a], "--top") == 0) top = std::atoi(argv[a + 1]);
    else if (std::strcmp(argv[a], "--kernels") == 0 && std::strcmp(argv[a + 1], "scalar") == 0) force_scalar_kernels(true);
    else if (std::strcmp(argv[a], "--kv") == 0 && parse_kv_type(argv[a + 1])) kv = *parse_kv_type(argv[a + 1]);
    else a = argc;  // unknown option: usage
  }
  if (argc - a < 3) {
    std::fprintf(stderr, "usage: %s [--kv f32|f16|q8_0] [--top K] [--kernels scalar] MODEL N_TOKENS TOKEN...\n", argv[0]);
    return 2;
  }
  argv += a - 1;
  argc -= a - 1;
  auto m = Model::load(argv[1]);
  if (!m.ok()) {
    std::fprintf(stderr, "error: %s\n", m.error().message.c_str());
    return 1;
  }
  const int n_gen = std::atoi(argv[2]);
  std::vector<int32_t> toks;
  for (int i = 3; i < argc; ++i) toks.push_back(std::atoi(argv[i]));
  ThreadPool pool(1);
  KvCache cache((*m)->hparams(), static_cast<int>(toks.size()) + n_gen + 1, kv);
  std::vector<BatchEntry> batch;
  for (size_t p = 0; p < toks.size(); ++p) batch.push_back({toks[p], static_cast<int32_t>(p), &cache, p + 1 == toks.size()});
  std::vector<float> logits;
  auto st = (*m)->forward(batch, pool, &logits);
  const int32_t V = (*m)->hparams().n_vocab;
  if (st.ok() && top > 0) print_top(logits, top);
  int32_t pos = static_cast<int32_t>(toks.size());
  for (int g = 0; g < n_gen && st.ok(); ++g) {
    int32_t best = 0;
    for (int32_t i = 1; i < V; ++i)
      if (logits[static_cast<size_t>(i)] > logits[static_cast<size_t>(best)]) best = i;
    std::printf("%d%s", best, g + 1 < n_gen ? " " : "\n");
    logits.clear();
    BatchEntry e{best, pos++, &cache, true};
    st = (*m)->forward(std::span<const BatchEntry>(&e, 1), pool, &logits);
  }
  if (!st.ok()) {
    std::fprintf(stderr, "error: %s\n", st.error().message.c_str());
    return 1;
  }
  return 0;
}
