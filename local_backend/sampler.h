#pragma once
// Token sampling: repetition penalty, then top-k, top-p, min-p on the softmax of the logits,
// then temperature and a seeded draw (greedy when temperature <= 0), as llama.cpp chains them.
#include <cstdint>
#include <random>
#include <span>
#include <vector>

#include "local_backend/engine.h"

namespace local_backend {

class Sampler {
 public:
  // seed is used when params.has_seed is false (the engine passes a random one).
  Sampler(const SamplingParams& params, uint64_t fallback_seed);
  // logits are modified in place. recent: the last tokens of the sequence (for the penalty).
  int32_t sample(std::span<float> logits, std::span<const int32_t> recent);

 private:
  SamplingParams p_;
  std::mt19937_64 rng_;
  struct Cand {
    int32_t id;
    float logit;
    float p;
  };
  std::vector<Cand> cand_;
};

}  // namespace local_backend
