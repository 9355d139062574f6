#include "local_backend/quants_float.h"

#include <immintrin.h>

#include "local_backend/quants_simd.h"

namespace local_backend {
namespace {

using namespace simd;

#define LB_AVX512F __attribute__((target("avx512f,avx2,fma,f16c")))

// The AVX2 kernels' accumulators as halves of a 512-bit vector: lanes 0..7 are its s0 (elements
// 16k..16k+7), lanes 8..15 its s1. Folding them with one 256-bit add is the AVX2 kernel's
// hsum_ps(s0 + s1).
// Zero-masked extracts with a full mask: GCC 12's plain extract and its 512->256 cast pass an
// undefined vector and warn -Wuninitialized (only in the fold, not in the loops).
template <int Half>
LB_AVX512F inline __m256 half256(__m512 v) {
  return _mm256_castpd_ps(_mm512_maskz_extractf64x4_pd(0xFF, _mm512_castps_pd(v), Half));
}
LB_AVX512F inline __m256 lo256(__m512 v) { return half256<0>(v); }
LB_AVX512F inline __m256 hi256(__m512 v) { return half256<1>(v); }

// Sixteen weights widened to F32, and one weight for the tail.
struct F16Weights {
  LB_AVX512F static __m512 load16(const uint16_t* x) {
    return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(x)));
  }
  LB_AVX512F static float one(uint16_t h) { return h2f(h); }
};
// BF16 is the top half of an F32: a 16-bit shift is the exact conversion. AVX512_BF16 is not
// used even where present: its dot instruction (dpbf16_ps) multiplies BF16 pairs, so the F32
// activation would first be rounded to BF16, and its conversion (cvtpbh_ps) is this shift.
struct Bf16Weights {
  LB_AVX512F static __m512 load16(const uint16_t* x) {
    const __m512i v = _mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(x)));
    return _mm512_castsi512_ps(_mm512_slli_epi32(v, 16));
  }
  LB_AVX512F static float one(uint16_t h) { return bf16_to_fp32(h); }
};

// F16/BF16 row times R activation rows: each 16 weights are loaded and widened once for R rows.
// Element order per lane as in dot_f16_avx2/dot_bf16_avx2 (16 per step, then a scalar tail
// summed after the fold), hence the same float result.
template <int R, typename W>
LB_AVX512F void dotn_half_avx512(int64_t n, const void* w, const void* const a[], float out[]) {
  const uint16_t* x = static_cast<const uint16_t*>(w);
  const float* y[R];
  for (int r = 0; r < R; ++r) y[r] = static_cast<const float*>(a[r]);
  __m512 acc[R];
  for (int r = 0; r < R; ++r) acc[r] = _mm512_setzero_ps();
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m512 wv = W::load16(x + i);
    for (int r = 0; r < R; ++r) acc[r] = _mm512_fmadd_ps(wv, _mm512_loadu_ps(y[r] + i), acc[r]);
  }
  for (int r = 0; r < R; ++r) {
    float s = hsum_ps(_mm256_add_ps(lo256(acc[r]), hi256(acc[r])));
    for (int64_t k = i; k < n; ++k) s = tail_fma(W::one(x[k]), y[r][k], s);
    out[r] = s;
  }
}

// F32 row times R activation rows, in dot_f32_avx2's order: its four accumulators s0..s3 are the
// halves of two 512-bit ones over 32-element steps; an 8-element step continues s0 alone; then
// (s0 + s1) + (s2 + s3), then the scalar tail.
template <int R>
LB_AVX512F void dotn_f32_avx512(int64_t n, const void* w, const void* const a[], float out[]) {
  const float* x = static_cast<const float*>(w);
  const float* y[R];
  for (int r = 0; r < R; ++r) y[r] = static_cast<const float*>(a[r]);
  __m512 a01[R], a23[R];
  for (int r = 0; r < R; ++r) a01[r] = a23[r] = _mm512_setzero_ps();
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    const __m512 w0 = _mm512_loadu_ps(x + i), w1 = _mm512_loadu_ps(x + i + 16);
    for (int r = 0; r < R; ++r) {
      a01[r] = _mm512_fmadd_ps(w0, _mm512_loadu_ps(y[r] + i), a01[r]);
      a23[r] = _mm512_fmadd_ps(w1, _mm512_loadu_ps(y[r] + i + 16), a23[r]);
    }
  }
  const int64_t i8 = i;
  for (int r = 0; r < R; ++r) {
    __m256 s0 = lo256(a01[r]);
    for (i = i8; i + 8 <= n; i += 8) s0 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i), _mm256_loadu_ps(y[r] + i), s0);
    float s = hsum_ps(_mm256_add_ps(_mm256_add_ps(s0, hi256(a01[r])), _mm256_add_ps(lo256(a23[r]), hi256(a23[r]))));
    for (int64_t k = i; k < n; ++k) s = tail_fma(x[k], y[r][k], s);
    out[r] = s;
  }
}

template <void (*Dot)(int64_t, const void*, const void* const[], float[])>
LB_AVX512F float dot1(int64_t n, const void* w, const void* a) {
  const void* a1[1] = {a};
  float out;
  Dot(n, w, a1, &out);
  return out;
}

}  // namespace

VecDotFn float_dot_avx512(TensorType t) {
  if (!cpu_has_avx512_vnni()) return nullptr;
  switch (t) {
    case TensorType::f32: return dot1<dotn_f32_avx512<1>>;
    case TensorType::f16: return dot1<dotn_half_avx512<1, F16Weights>>;
    case TensorType::bf16: return dot1<dotn_half_avx512<1, Bf16Weights>>;
    default: return nullptr;
  }
}

VecDot8Fn float_dot8_avx512(TensorType t) {
  if (!cpu_has_avx512_vnni()) return nullptr;
  switch (t) {
    case TensorType::f32: return dotn_f32_avx512<8>;
    case TensorType::f16: return dotn_half_avx512<8, F16Weights>;
    case TensorType::bf16: return dotn_half_avx512<8, Bf16Weights>;
    default: return nullptr;
  }
}

}  // namespace local_backend
