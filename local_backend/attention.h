#pragma once
// Causal attention of a batch's queries over their sequences' KV caches (one layer).
//
// attention_tiled is the prefill path: the query heads that share a KV head, times a block of
// tokens of one sequence, form a tile; each block of 64 cached positions is converted to F32 once
// per tile (F16 and Q8_0 rows are expanded there), the score tile Q.K^T and the weighted sum of
// V are small GEMMs, and the softmax is the online (running max, running sum) one. A Q8_0 cache
// meets a query rounded to Q8_0 (as llama.cpp's CPU backend and attention_reference do), but the
// products are taken in F32 on the expanded rows rather than in integers.
//
// attention_reference is the per-query algorithm (one dot per cached position with the cache
// type's kernel, a softmax pass, one axpy per value row), kept for tests and single tokens.
#include <cstdint>
#include <span>

#include "local_backend/kv_cache.h"
#include "local_backend/thread_pool.h"

namespace local_backend {

struct AttnShape {
  int64_t n_head = 0, n_head_kv = 0, head_dim = 0;
};

// One query token: the cache of its sequence and its position. The cache holds K and V of
// every position <= pos (the token's own included); the token attends to exactly those.
struct AttnToken {
  const KvCache* cache = nullptr;
  int32_t pos = 0;
};

// q and out: [tokens][n_head * head_dim], RoPE already applied to q. Scores are scaled by
// 1/sqrt(head_dim).
void attention_reference(const AttnShape& s, int layer, std::span<const AttnToken> toks, const float* q,
                         float* out, ThreadPool& pool);
// Kernels of the tiled path: the best the CPU has (AVX2+FMA+F16C when head_dim is a multiple of
// 32, else portable loops), or one of them for tests. AVX-512 versions of the two GEMMs were
// only ~8% faster on a 256-token chunk over 2,000 positions, not worth a second copy.
enum class AttnKernels { best, avx2, scalar };
bool attention_kernels_available(AttnKernels k, int64_t head_dim);
void attention_tiled(const AttnShape& s, int layer, std::span<const AttnToken> toks, const float* q, float* out,
                     ThreadPool& pool, AttnKernels kernels = AttnKernels::best);
// The engine's choice between the two (see attention.cpp).
void attention(const AttnShape& s, int layer, std::span<const AttnToken> toks, const float* q, float* out,
               ThreadPool& pool);

}  // namespace local_backend
