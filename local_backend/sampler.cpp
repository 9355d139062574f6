#include "local_backend/sampler.h"

#include <algorithm>
#include <cmath>
#include <unordered_set>

namespace local_backend {

Sampler::Sampler(const SamplingParams& params, uint64_t fallback_seed)
    : p_(params), rng_(params.has_seed ? params.seed : fallback_seed) {}

int32_t Sampler::sample(std::span<float> logits, std::span<const int32_t> recent) {
  const int32_t n = static_cast<int32_t>(logits.size());
  if (p_.repeat_penalty != 1.0f && p_.repeat_penalty > 0) {
    std::unordered_set<int32_t> seen;
    for (int32_t t : recent) {
      if (t < 0 || t >= n || !seen.insert(t).second) continue;
      float& l = logits[static_cast<size_t>(t)];
      l = l > 0 ? l / p_.repeat_penalty : l * p_.repeat_penalty;
    }
  }
  if (p_.temperature <= 0.0f) {
    // Greedy: first maximum.
    int32_t best = 0;
    for (int32_t i = 1; i < n; ++i)
      if (logits[static_cast<size_t>(i)] > logits[static_cast<size_t>(best)]) best = i;
    return best;
  }
  cand_.resize(static_cast<size_t>(n));
  for (int32_t i = 0; i < n; ++i) cand_[static_cast<size_t>(i)] = {i, logits[static_cast<size_t>(i)], 0.0f};
  auto by_logit = [](const Cand& a, const Cand& b) { return a.logit > b.logit || (a.logit == b.logit && a.id < b.id); };
  size_t keep = cand_.size();
  bool sorted = false;
  if (p_.top_k > 0 && static_cast<size_t>(p_.top_k) < keep) {
    std::partial_sort(cand_.begin(), cand_.begin() + p_.top_k, cand_.end(), by_logit);
    keep = static_cast<size_t>(p_.top_k);
    sorted = true;
  }
  auto softmax = [&](size_t k) {
    float mx = -INFINITY;
    for (size_t i = 0; i < k; ++i) mx = std::max(mx, cand_[i].logit);
    double sum = 0;
    for (size_t i = 0; i < k; ++i) sum += (cand_[i].p = std::exp(cand_[i].logit - mx));
    for (size_t i = 0; i < k; ++i) cand_[i].p = static_cast<float>(cand_[i].p / sum);
  };
  if (p_.top_p < 1.0f && p_.top_p > 0.0f) {
    softmax(keep);
    if (!sorted) {
      std::sort(cand_.begin(), cand_.begin() + static_cast<long>(keep), by_logit);
      sorted = true;
    }
    double cum = 0;
    size_t k = 0;
    while (k < keep) {
      cum += cand_[k].p;
      ++k;
      if (cum >= p_.top_p) break;
    }
    keep = std::max<size_t>(1, k);
  }
  if (p_.min_p > 0.0f && p_.min_p <= 1.0f) {
    softmax(keep);
    float pmax = 0;
    for (size_t i = 0; i < keep; ++i) pmax = std::max(pmax, cand_[i].p);
    const float thr = p_.min_p * pmax;
    size_t w = 0;
    for (size_t i = 0; i < keep; ++i)
      if (cand_[i].p >= thr) cand_[w++] = cand_[i];
    keep = std::max<size_t>(1, w);
  }
  // Temperature, then draw.
  for (size_t i = 0; i < keep; ++i) cand_[i].logit /= p_.temperature;
  softmax(keep);
  std::uniform_real_distribution<double> u(0.0, 1.0);
  const double r = u(rng_);
  double cum = 0;
  for (size_t i = 0; i < keep; ++i) {
    cum += cand_[i].p;
    if (r < cum) return cand_[i].id;
  }
  return cand_[keep - 1].id;
}

}  // namespace local_backend
