#pragma once
// AVX2 helpers shared by the kernel files (quants.cpp, quants_legacy.cpp). Functions carry their
// own target attribute: the baseline build stays generic x86-64 and kernels are chosen at run time.
#include <immintrin.h>

#include <cstddef>
#include <cstdint>

namespace local_backend::simd {

#define LB_AVX2 __attribute__((target("avx2,fma,f16c")))

LB_AVX2 inline float hsum_ps(__m256 v) {
  __m128 lo = _mm256_castps256_ps128(v);
  __m128 hi = _mm256_extractf128_ps(v, 1);
  lo = _mm_add_ps(lo, hi);
  __m128 sh = _mm_movehdup_ps(lo);
  __m128 s = _mm_add_ps(lo, sh);
  sh = _mm_movehl_ps(sh, s);
  s = _mm_add_ss(s, sh);
  return _mm_cvtss_f32(s);
}

LB_AVX2 inline float h2f(uint16_t h) { return _cvtsh_ss(h); }

// s + w * y fused: the scalar tails of the F32/F16/BF16 kernels. Written as an intrinsic because
// GCC vectorised the products of a plain `s += w * y` tail (mul then in-order adds, with fused
// ones in its own remainder) differently per target, so the AVX2 and AVX-512 kernels' results
// differed in the last bits for rows with a tail; with one fused step per element they cannot.
LB_AVX2 inline float tail_fma(float w, float y, float s) {
  return _mm_cvtss_f32(_mm_fmadd_ss(_mm_set_ss(w), _mm_set_ss(y), _mm_set_ss(s)));
}

// Asks for the weight block `ahead` blocks on (the next row's, for a 2048-wide K-quant row): on
// the 2-core EPYC VM single-token decode otherwise waited on memory: the AVX-512 single-row
// kernels' gain was invisible in BM_DecodeLayersOnly until they prefetched, and with it the
// thread's CPU ms per token fell by 15-35% (Q4_K_M 13.4 -> 9.6, Q6_K 15.5 -> 10.9, Q8_0 on AVX2
// 21.2 -> 16.2; 1 thread, local_backend/README.md).
// Single-row kernels only: the eight-row (prefill) kernels reuse each block eight times.
// Prefetches past the row's end are harmless hints (the address is formed as an integer, as it
// may lie past the array).
template <int Ahead, typename Block>
LB_AVX2 inline void prefetch_block(const Block* x) {
  const char* p = reinterpret_cast<const char*>(reinterpret_cast<uintptr_t>(x) + Ahead * sizeof(Block));
  for (size_t o = 0; o < sizeof(Block); o += 64) _mm_prefetch(p + o, _MM_HINT_T0);
}

}  // namespace local_backend::simd
