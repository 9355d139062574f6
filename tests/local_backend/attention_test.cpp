// Tiled attention against the per-query reference on random caches: every KV type, GQA,
// several sequences in one batch (interleaved, as a batch may be), lengths that are not a
// multiple of the key block, and single tokens.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "local_backend/attention.h"
#include "local_backend/kv_cache.h"

namespace local_backend {
namespace {

HParams shape_hp(int n_head, int n_head_kv, int head_dim, int n_layer) {
  HParams hp;
  hp.n_layer = n_layer;
  hp.n_head = n_head;
  hp.n_head_kv = n_head_kv;
  hp.head_dim = head_dim;
  return hp;
}

// Fills positions [0, n) of every layer with random K and V rows; returns max |v|.
float fill_cache(KvCache* c, const HParams& hp, int n, std::mt19937* rng) {
  std::normal_distribution<float> nd(0.0f, 1.0f);
  const size_t kvd = static_cast<size_t>(hp.n_head_kv * hp.head_dim);
  std::vector<float> k(kvd), v(kvd);
  float vmax = 0;
  EXPECT_TRUE(c->reserve(n));
  for (int l = 0; l < hp.n_layer; ++l)
    for (int p = 0; p < n; ++p) {
      for (auto& x : k) x = 2.0f * nd(*rng);  // scores of a few units: a peaked softmax
      for (auto& x : v) {
        x = nd(*rng);
        vmax = std::max(vmax, std::fabs(x));
      }
      c->store(l, p, k.data(), v.data());
    }
  return vmax;
}

struct Case {
  KvType type;
  int n_head, n_head_kv, head_dim;
  std::vector<int> seq_len;   // cached positions of each sequence
  std::vector<int> n_query;   // last n_query positions of each are the batch's tokens
  bool interleave;            // batch entries of the sequences alternate
  int threads;
};

// Max |tiled - reference| over the outputs (and over the kernel sets), divided by the largest |v| (outputs are convex
// combinations of value rows, so this is a relative error).
double run_case(const Case& c) {
  const HParams hp = shape_hp(c.n_head, c.n_head_kv, c.head_dim, 2);
  std::mt19937 rng(1234);
  std::vector<std::unique_ptr<KvCache>> caches;
  float vmax = 0;
  for (int len : c.seq_len) {
    caches.push_back(std::make_unique<KvCache>(hp, len, c.type));
    vmax = std::max(vmax, fill_cache(caches.back().get(), hp, len, &rng));
  }
  std::vector<AttnToken> toks;
  for (size_t round = 0;; ++round) {
    bool any = false;
    for (size_t s = 0; s < caches.size(); ++s) {
      const int nq = c.n_query[s];
      const int first = c.seq_len[s] - nq;
      if (c.interleave) {
        if (round < static_cast<size_t>(nq)) {
          toks.push_back({caches[s].get(), static_cast<int32_t>(first + static_cast<int>(round))});
          any = true;
        }
      } else if (round == 0) {
        for (int i = 0; i < nq; ++i) toks.push_back({caches[s].get(), first + i});
      }
    }
    if (!any) break;
  }
  const AttnShape sh{c.n_head, c.n_head_kv, c.head_dim};
  const size_t qd = static_cast<size_t>(c.n_head * c.head_dim);
  std::vector<float> q(toks.size() * qd);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  for (auto& x : q) x = 2.0f * nd(rng);
  ThreadPool pool(c.threads);
  double worst = 0;
  for (int layer = 0; layer < hp.n_layer; ++layer) {
    std::vector<float> want(q.size(), NAN), got(q.size(), NAN);
    attention_reference(sh, layer, toks, q.data(), want.data(), pool);
    // Every kernel set this CPU has for the head size (the portable one always).
    for (AttnKernels k : {AttnKernels::avx2, AttnKernels::scalar}) {
      if (!attention_kernels_available(k, c.head_dim)) continue;
      std::fill(got.begin(), got.end(), NAN);
      attention_tiled(sh, layer, toks, q.data(), got.data(), pool, k);
      for (size_t i = 0; i < q.size(); ++i) {
        EXPECT_TRUE(std::isfinite(got[i])) << i << " kernels " << static_cast<int>(k);
        worst = std::max(worst, std::fabs(static_cast<double>(got[i]) - want[i]) / vmax);
      }
    }
  }
  return worst;
}

// Bound: 1e-5 of the largest |v| for every type. F32 and F16 differ from the reference only in
// float summation order and the exp (reference std::exp, tiled a degree-7 polynomial); Q8_0 also
// takes the K products in F32 on expanded rows instead of integer sums (same Q8_0-rounded query).
constexpr double kBound = 1e-5;

class Tiled : public ::testing::TestWithParam<KvType> {};

TEST_P(Tiled, GqaPrefillChunkAfterCachedPrefix) {
  // Qwen3-30B-A3B heads: 32 query heads on 4 KV heads of 128; a 77-token chunk after 200 cached.
  const double e = run_case({GetParam(), 32, 4, 128, {277}, {77}, false, 2});
  std::printf("[ attn ] %s gqa chunk: max err %.3g of max|v|\n", kv_type_name(GetParam()), e);
  EXPECT_LE(e, kBound);
}

TEST_P(Tiled, WholePromptFromEmptyCache) {
  const double e = run_case({GetParam(), 8, 2, 64, {130}, {130}, false, 1});
  EXPECT_LE(e, kBound);
}

TEST_P(Tiled, SeveralSequencesInterleaved) {
  // Three sequences, tokens alternating in the batch; one of them is a single decode token.
  const double e = run_case({GetParam(), 16, 4, 64, {70, 5, 193}, {9, 1, 65}, true, 2});
  EXPECT_LE(e, kBound);
}

TEST_P(Tiled, SingleTokenDecode) {
  const double e = run_case({GetParam(), 32, 4, 128, {1000}, {1}, false, 2});
  EXPECT_LE(e, kBound);
}

TEST_P(Tiled, FirstToken) {
  const double e = run_case({GetParam(), 4, 4, 32, {1}, {1}, false, 1});
  EXPECT_LE(e, kBound);
}

INSTANTIATE_TEST_SUITE_P(KvTypes, Tiled, ::testing::Values(KvType::f32, KvType::f16, KvType::q8_0),
                         [](const auto& info) { return std::string(kv_type_name(info.param)); });

TEST(Tiled, ScalarPathForHeadSizeNotMultipleOf32) {
  // head_dim 40 (F32/F16 only): the portable kernels, multi-query (one KV head).
  for (KvType t : {KvType::f32, KvType::f16}) {
    const double e = run_case({t, 6, 1, 40, {150, 3}, {100, 3}, true, 2});
    EXPECT_LE(e, kBound) << kv_type_name(t);
  }
}

}  // namespace
}  // namespace local_backend
