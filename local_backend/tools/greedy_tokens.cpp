// gguf-greedy-tokens: greedy continuation of a token-id prompt with the local engine's model,
// printed as token ids (used to cross-check against other GGUF engines).
//   gguf-greedy-tokens MODEL N_TOKENS TOKEN...
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "local_backend/model.h"

int main(int argc, char** argv) {
  using namespace local_backend;
  if (argc < 4) {
    std::fprintf(stderr, "usage: %s MODEL N_TOKENS TOKEN...\n", argv[0]);
    return 2;
  }
  auto m = Model::load(argv[1]);
  if (!m.ok()) {
    std::fprintf(stderr, "error: %s\n", m.error().message.c_str());
    return 1;
  }
  const int n_gen = std::atoi(argv[2]);
  std::vector<int32_t> toks;
  for (int i = 3; i < argc; ++i) toks.push_back(std::atoi(argv[i]));
  ThreadPool pool(1);
  KvCache cache((*m)->hparams(), static_cast<int>(toks.size()) + n_gen + 1, KvType::f32);
  std::vector<BatchEntry> batch;
  for (size_t p = 0; p < toks.size(); ++p) batch.push_back({toks[p], static_cast<int32_t>(p), &cache, p + 1 == toks.size()});
  std::vector<float> logits;
  auto st = (*m)->forward(batch, pool, &logits);
  const int32_t V = (*m)->hparams().n_vocab;
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
