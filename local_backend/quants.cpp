#include "local_backend/quants.h"
#include "local_backend/quants_float.h"
#include "local_backend/quants_repack.h"
#include "local_backend/quants_legacy.h"
#include "local_backend/quants_simd.h"

#include <cpuid.h>
#include <immintrin.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>

namespace local_backend {
namespace {

inline int nearest_int(float f) { return static_cast<int>(std::nearbyint(f)); }  // ties to even

// ------------------------------------------------------------------ dequantisation

void dequant_q8_0(const BlockQ8_0* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n / kQK8_0; ++i) {
    const float d = fp16_to_fp32(x[i].d);
    for (int j = 0; j < kQK8_0; ++j) y[i * kQK8_0 + j] = d * x[i].qs[j];
  }
}

void dequant_q4_k(const BlockQ4_K* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n / kQK_K; ++i) {
    const float d = fp16_to_fp32(x[i].d);
    const float min = fp16_to_fp32(x[i].dmin);
    const uint8_t* q = x[i].qs;
    int is = 0;
    for (int j = 0; j < kQK_K; j += 64) {
      uint8_t sc, m;
      q4k_scale_min(is + 0, x[i].scales, &sc, &m);
      const float d1 = d * sc, m1 = min * m;
      q4k_scale_min(is + 1, x[i].scales, &sc, &m);
      const float d2 = d * sc, m2 = min * m;
      for (int l = 0; l < 32; ++l) *y++ = d1 * (q[l] & 0xF) - m1;
      for (int l = 0; l < 32; ++l) *y++ = d2 * (q[l] >> 4) - m2;
      q += 32;
      is += 2;
    }
  }
}

void dequant_q5_k(const BlockQ5_K* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n / kQK_K; ++i) {
    const float d = fp16_to_fp32(x[i].d);
    const float min = fp16_to_fp32(x[i].dmin);
    const uint8_t* q = x[i].qs;
    const uint8_t* qh = x[i].qh;
    for (int j = 0; j < 8; j += 2) {  // 64 values: sub-blocks j (low nibbles) and j+1 (high)
      uint8_t sc, m;
      q4k_scale_min(j, x[i].scales, &sc, &m);
      const float d1 = d * sc, m1 = min * m;
      q4k_scale_min(j + 1, x[i].scales, &sc, &m);
      const float d2 = d * sc, m2 = min * m;
      for (int l = 0; l < 32; ++l) *y++ = d1 * ((q[l] & 0xF) | (((qh[l] >> j) & 1) << 4)) - m1;
      for (int l = 0; l < 32; ++l) *y++ = d2 * ((q[l] >> 4) | (((qh[l] >> (j + 1)) & 1) << 4)) - m2;
      q += 32;
    }
  }
}

void dequant_q6_k(const BlockQ6_K* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n / kQK_K; ++i) {
    const float d = fp16_to_fp32(x[i].d);
    const uint8_t* ql = x[i].ql;
    const uint8_t* qh = x[i].qh;
    const int8_t* sc = x[i].scales;
    for (int c = 0; c < kQK_K; c += 128) {
      for (int l = 0; l < 32; ++l) {
        const int is = l / 16;
        const int q1 = ((ql[l + 0] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
        const int q2 = ((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
        const int q3 = ((ql[l + 0] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
        const int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
        y[l + 0] = d * sc[is + 0] * q1;
        y[l + 32] = d * sc[is + 2] * q2;
        y[l + 64] = d * sc[is + 4] * q3;
        y[l + 96] = d * sc[is + 6] * q4;
      }
      y += 128;
      ql += 64;
      qh += 32;
      sc += 8;
    }
  }
}

// ------------------------------------------------------------------ scalar dots

float dot_f32_scalar(int64_t n, const void* w, const void* a) {
  const float* x = static_cast<const float*>(w);
  const float* y = static_cast<const float*>(a);
  double s = 0;  // double accumulation: the scalar path doubles as a reference
  for (int64_t i = 0; i < n; ++i) s += static_cast<double>(x[i]) * y[i];
  return static_cast<float>(s);
}

float dot_f16_scalar(int64_t n, const void* w, const void* a) {
  const uint16_t* x = static_cast<const uint16_t*>(w);
  const float* y = static_cast<const float*>(a);
  double s = 0;
  for (int64_t i = 0; i < n; ++i) s += static_cast<double>(fp16_to_fp32(x[i])) * y[i];
  return static_cast<float>(s);
}

float dot_bf16_scalar(int64_t n, const void* w, const void* a) {
  const uint16_t* x = static_cast<const uint16_t*>(w);
  const float* y = static_cast<const float*>(a);
  double s = 0;
  for (int64_t i = 0; i < n; ++i) s += static_cast<double>(bf16_to_fp32(x[i])) * y[i];
  return static_cast<float>(s);
}

float dot_q8_0_scalar(int64_t n, const void* w, const void* a) {
  const BlockQ8_0* x = static_cast<const BlockQ8_0*>(w);
  const BlockQ8_0* y = static_cast<const BlockQ8_0*>(a);
  float s = 0;
  for (int64_t i = 0; i < n / kQK8_0; ++i) {
    int sumi = 0;
    for (int j = 0; j < kQK8_0; ++j) sumi += x[i].qs[j] * y[i].qs[j];
    s += sumi * fp16_to_fp32(x[i].d) * fp16_to_fp32(y[i].d);
  }
  return s;
}

float dot_q4_k_scalar(int64_t n, const void* w, const void* a) {
  const BlockQ4_K* x = static_cast<const BlockQ4_K*>(w);
  const BlockQ8_K* y = static_cast<const BlockQ8_K*>(a);
  float s = 0;
  for (int64_t i = 0; i < n / kQK_K; ++i) {
    const uint8_t* q4 = x[i].qs;
    const int8_t* q8 = y[i].qs;
    int sumi = 0, summ = 0;
    for (int j = 0; j < 4; ++j) {
      uint8_t sc0, m0, sc1, m1;
      q4k_scale_min(2 * j, x[i].scales, &sc0, &m0);
      q4k_scale_min(2 * j + 1, x[i].scales, &sc1, &m1);
      int s0 = 0, s1 = 0;
      for (int l = 0; l < 32; ++l) {
        s0 += (q4[l] & 0xF) * q8[l];
        s1 += (q4[l] >> 4) * q8[l + 32];
      }
      sumi += sc0 * s0 + sc1 * s1;
      summ += m0 * (y[i].bsums[4 * j + 0] + y[i].bsums[4 * j + 1]) +
              m1 * (y[i].bsums[4 * j + 2] + y[i].bsums[4 * j + 3]);
      q4 += 32;
      q8 += 64;
    }
    s += y[i].d * (fp16_to_fp32(x[i].d) * sumi - fp16_to_fp32(x[i].dmin) * summ);
  }
  return s;
}

float dot_q5_k_scalar(int64_t n, const void* w, const void* a) {
  const BlockQ5_K* x = static_cast<const BlockQ5_K*>(w);
  const BlockQ8_K* y = static_cast<const BlockQ8_K*>(a);
  float s = 0;
  for (int64_t i = 0; i < n / kQK_K; ++i) {
    const uint8_t* q4 = x[i].qs;
    const uint8_t* qh = x[i].qh;
    const int8_t* q8 = y[i].qs;
    int sumi = 0, summ = 0;
    for (int j = 0; j < 4; ++j) {
      uint8_t sc0, m0, sc1, m1;
      q4k_scale_min(2 * j, x[i].scales, &sc0, &m0);
      q4k_scale_min(2 * j + 1, x[i].scales, &sc1, &m1);
      int s0 = 0, s1 = 0;
      for (int l = 0; l < 32; ++l) {
        s0 += ((q4[l] & 0xF) | (((qh[l] >> (2 * j)) & 1) << 4)) * q8[l];
        s1 += ((q4[l] >> 4) | (((qh[l] >> (2 * j + 1)) & 1) << 4)) * q8[l + 32];
      }
      sumi += sc0 * s0 + sc1 * s1;
      summ += m0 * (y[i].bsums[4 * j + 0] + y[i].bsums[4 * j + 1]) +
              m1 * (y[i].bsums[4 * j + 2] + y[i].bsums[4 * j + 3]);
      q4 += 32;
      q8 += 64;
    }
    s += y[i].d * (fp16_to_fp32(x[i].d) * sumi - fp16_to_fp32(x[i].dmin) * summ);
  }
  return s;
}

float dot_q6_k_scalar(int64_t n, const void* w, const void* a) {
  const BlockQ6_K* x = static_cast<const BlockQ6_K*>(w);
  const BlockQ8_K* y = static_cast<const BlockQ8_K*>(a);
  float s = 0;
  for (int64_t i = 0; i < n / kQK_K; ++i) {
    const uint8_t* ql = x[i].ql;
    const uint8_t* qh = x[i].qh;
    const int8_t* sc = x[i].scales;
    const int8_t* q8 = y[i].qs;
    int sumi = 0;
    for (int c = 0; c < 2; ++c) {
      int g[8] = {0, 0, 0, 0, 0, 0, 0, 0};
      for (int l = 0; l < 32; ++l) {
        const int is = l / 16;
        const int q1 = ((ql[l + 0] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
        const int q2 = ((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
        const int q3 = ((ql[l + 0] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
        const int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
        g[is + 0] += q1 * q8[l + 0];
        g[is + 2] += q2 * q8[l + 32];
        g[is + 4] += q3 * q8[l + 64];
        g[is + 6] += q4 * q8[l + 96];
      }
      for (int k = 0; k < 8; ++k) sumi += sc[k] * g[k];
      ql += 64;
      qh += 32;
      sc += 8;
      q8 += 128;
    }
    s += y[i].d * fp16_to_fp32(x[i].d) * sumi;
  }
  return s;
}

// ------------------------------------------------------------------ AVX2 dots

using namespace simd;  // LB_AVX2 helpers: hsum_ps, h2f, tail_fma, prefetch_block

LB_AVX2 float dot_f32_avx2(int64_t n, const void* w, const void* a) {
  const float* x = static_cast<const float*>(w);
  const float* y = static_cast<const float*>(a);
  __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps(), s2 = _mm256_setzero_ps(),
         s3 = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    s0 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i), s0);
    s1 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i + 8), _mm256_loadu_ps(y + i + 8), s1);
    s2 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i + 16), _mm256_loadu_ps(y + i + 16), s2);
    s3 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i + 24), _mm256_loadu_ps(y + i + 24), s3);
  }
  for (; i + 8 <= n; i += 8) s0 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i), s0);
  float s = hsum_ps(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
  for (; i < n; ++i) s = tail_fma(x[i], y[i], s);
  return s;
}

LB_AVX2 float dot_f16_avx2(int64_t n, const void* w, const void* a) {
  const uint16_t* x = static_cast<const uint16_t*>(w);
  const float* y = static_cast<const float*>(a);
  __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    __m256 w0 = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(x + i)));
    __m256 w1 = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(x + i + 8)));
    s0 = _mm256_fmadd_ps(w0, _mm256_loadu_ps(y + i), s0);
    s1 = _mm256_fmadd_ps(w1, _mm256_loadu_ps(y + i + 8), s1);
  }
  float s = hsum_ps(_mm256_add_ps(s0, s1));
  for (; i < n; ++i) s = tail_fma(h2f(x[i]), y[i], s);
  return s;
}

LB_AVX2 float dot_bf16_avx2(int64_t n, const void* w, const void* a) {
  const uint16_t* x = static_cast<const uint16_t*>(w);
  const float* y = static_cast<const float*>(a);
  __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    __m256i r0 = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(x + i)));
    __m256i r1 = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(x + i + 8)));
    s0 = _mm256_fmadd_ps(_mm256_castsi256_ps(_mm256_slli_epi32(r0, 16)), _mm256_loadu_ps(y + i), s0);
    s1 = _mm256_fmadd_ps(_mm256_castsi256_ps(_mm256_slli_epi32(r1, 16)), _mm256_loadu_ps(y + i + 8), s1);
  }
  float s = hsum_ps(_mm256_add_ps(s0, s1));
  for (; i < n; ++i) s = tail_fma(bf16_to_fp32(x[i]), y[i], s);
  return s;
}

LB_AVX2 float dot_q8_0_avx2(int64_t n, const void* w, const void* a) {
  const BlockQ8_0* x = static_cast<const BlockQ8_0*>(w);
  const BlockQ8_0* y = static_cast<const BlockQ8_0*>(a);
  const __m256i ones = _mm256_set1_epi16(1);
  __m256 acc = _mm256_setzero_ps();
  const int64_t nb = n / kQK8_0;
  for (int64_t i = 0; i < nb; ++i) {
    prefetch_block<32>(x + i);
    const __m256i qx = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x[i].qs));
    const __m256i qy = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(y[i].qs));
    // |x| * sign(y, x): an unsigned x signed product for maddubs.
    const __m256i ax = _mm256_sign_epi8(qx, qx);
    const __m256i sy = _mm256_sign_epi8(qy, qx);
    const __m256i p32 = _mm256_madd_epi16(_mm256_maddubs_epi16(ax, sy), ones);
    const __m256 d = _mm256_set1_ps(h2f(x[i].d) * h2f(y[i].d));
    acc = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(p32), acc);
  }
  return hsum_ps(acc);
}

LB_AVX2 float dot_q4_k_avx2(int64_t n, const void* w, const void* a) {
  const BlockQ4_K* x = static_cast<const BlockQ4_K*>(w);
  const BlockQ8_K* y = static_cast<const BlockQ8_K*>(a);
  const __m256i m4 = _mm256_set1_epi8(0xF);
  constexpr uint32_t kmask1 = 0x3f3f3f3f, kmask2 = 0x0f0f0f0f, kmask3 = 0x03030303;
  __m256 acc = _mm256_setzero_ps();
  __m128 acc_m = _mm_setzero_ps();
  const int64_t nb = n / kQK_K;
  for (int64_t i = 0; i < nb; ++i) {
    prefetch_block<8>(x + i);
    // Unpack the 8 six-bit scales (bytes 0..7) and mins (bytes 8..15) in four word operations.
    uint32_t u[4];
    std::memcpy(u, x[i].scales, 12);
    u[3] = ((u[2] >> 4) & kmask2) | (((u[1] >> 6) & kmask3) << 4);
    const uint32_t uaux = u[1] & kmask1;
    u[1] = (u[2] & kmask2) | (((u[0] >> 6) & kmask3) << 4);
    u[2] = uaux;
    u[0] &= kmask1;
    const uint8_t* sc = reinterpret_cast<const uint8_t*>(u);
    // Mins: sum_j m_j * (bsum[2j] + bsum[2j+1]), vectorised.
    const __m256i mins_scales = _mm256_cvtepu8_epi16(_mm_set_epi32(static_cast<int>(u[3]), static_cast<int>(u[2]),
                                                                   static_cast<int>(u[1]), static_cast<int>(u[0])));
    const __m256i bs = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(y[i].bsums));
    const __m128i q8s = _mm_hadd_epi16(_mm256_castsi256_si128(bs), _mm256_extracti128_si256(bs, 1));
    const __m128i prod = _mm_madd_epi16(_mm256_extracti128_si256(mins_scales, 1), q8s);
    acc_m = _mm_fmadd_ps(_mm_set1_ps(y[i].d * h2f(x[i].dmin)), _mm_cvtepi32_ps(prod), acc_m);
    const uint8_t* q4 = x[i].qs;
    const int8_t* q8 = y[i].qs;
    __m256i sumi = _mm256_setzero_si256();
    for (int j = 0; j < 4; ++j) {
      const __m256i bits = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q4));
      const __m256i lo = _mm256_and_si256(bits, m4);
      const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(bits, 4), m4);
      const __m256i y0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q8));
      const __m256i y1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q8 + 32));
      const __m256i p0 = _mm256_madd_epi16(_mm256_maddubs_epi16(lo, y0), _mm256_set1_epi16(sc[2 * j]));
      const __m256i p1 = _mm256_madd_epi16(_mm256_maddubs_epi16(hi, y1), _mm256_set1_epi16(sc[2 * j + 1]));
      sumi = _mm256_add_epi32(sumi, _mm256_add_epi32(p0, p1));
      q4 += 32;
      q8 += 64;
    }
    acc = _mm256_fmadd_ps(_mm256_set1_ps(y[i].d * h2f(x[i].d)), _mm256_cvtepi32_ps(sumi), acc);
  }
  __m128 m = _mm_add_ps(acc_m, _mm_movehl_ps(acc_m, acc_m));
  m = _mm_add_ss(m, _mm_movehdup_ps(m));
  return hsum_ps(acc) - _mm_cvtss_f32(m);
}

// The 8 six-bit scales (bytes 0..7 of u) and mins (bytes 8..15) of a Q4_K/Q5_K block, in
// four word operations.
inline void unpack_k_scales(const uint8_t* scales, uint32_t u[4]) {
  constexpr uint32_t kmask1 = 0x3f3f3f3f, kmask2 = 0x0f0f0f0f, kmask3 = 0x03030303;
  std::memcpy(u, scales, 12);
  u[3] = ((u[2] >> 4) & kmask2) | (((u[1] >> 6) & kmask3) << 4);
  const uint32_t uaux = u[1] & kmask1;
  u[1] = (u[2] & kmask2) | (((u[0] >> 6) & kmask3) << 4);
  u[2] = uaux;
  u[0] &= kmask1;
}

// sum_j m_j * (bsum[2j] + bsum[2j+1]) of one Q8_K block, as four int32 lanes.
LB_AVX2 inline __m128i k_mins_dot(const uint32_t u[4], const BlockQ8_K& y) {
  const __m128i mins = _mm_cvtepu8_epi16(_mm_set_epi32(0, 0, static_cast<int>(u[3]), static_cast<int>(u[2])));
  const __m256i bs = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(y.bsums));
  const __m128i q8s = _mm_hadd_epi16(_mm256_castsi256_si128(bs), _mm256_extracti128_si256(bs, 1));
  return _mm_madd_epi16(mins, q8s);
}

LB_AVX2 inline float hsum_ps128(__m128 v) {
  __m128 m = _mm_add_ps(v, _mm_movehl_ps(v, v));
  m = _mm_add_ss(m, _mm_movehdup_ps(m));
  return _mm_cvtss_f32(m);
}

// The 64 five-bit quants of Q5_K sub-blocks 2j (lo) and 2j+1 (hi).
LB_AVX2 inline void q5_k_unpack(const BlockQ5_K& x, int j, __m256i* lo, __m256i* hi) {
  const __m256i m4 = _mm256_set1_epi8(0xF);
  const __m256i one = _mm256_set1_epi8(1);
  const __m256i bits = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x.qs + 32 * j));
  const __m256i hb = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x.qh));
  // Bit 2j (resp. 2j+1) of each qh byte, moved to bit 4. Shifts on 16-bit lanes are safe
  // because the mask keeps one bit per byte.
  const __m256i h0 = _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hb, 2 * j), one), 4);
  const __m256i h1 = _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hb, 2 * j + 1), one), 4);
  *lo = _mm256_or_si256(_mm256_and_si256(bits, m4), h0);
  *hi = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(bits, 4), m4), h1);
}

LB_AVX2 float dot_q5_k_avx2(int64_t n, const void* w, const void* a) {
  const BlockQ5_K* x = static_cast<const BlockQ5_K*>(w);
  const BlockQ8_K* y = static_cast<const BlockQ8_K*>(a);
  __m256 acc = _mm256_setzero_ps();
  __m128 acc_m = _mm_setzero_ps();
  const int64_t nb = n / kQK_K;
  for (int64_t i = 0; i < nb; ++i) {
    prefetch_block<8>(x + i);
    uint32_t u[4];
    unpack_k_scales(x[i].scales, u);
    const uint8_t* sc = reinterpret_cast<const uint8_t*>(u);
    acc_m = _mm_fmadd_ps(_mm_set1_ps(y[i].d * h2f(x[i].dmin)), _mm_cvtepi32_ps(k_mins_dot(u, y[i])), acc_m);
    __m256i sumi = _mm256_setzero_si256();
    for (int j = 0; j < 4; ++j) {
      __m256i lo, hi;
      q5_k_unpack(x[i], j, &lo, &hi);
      const __m256i y0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(y[i].qs + 64 * j));
      const __m256i y1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(y[i].qs + 64 * j + 32));
      const __m256i p0 = _mm256_madd_epi16(_mm256_maddubs_epi16(lo, y0), _mm256_set1_epi16(sc[2 * j]));
      const __m256i p1 = _mm256_madd_epi16(_mm256_maddubs_epi16(hi, y1), _mm256_set1_epi16(sc[2 * j + 1]));
      sumi = _mm256_add_epi32(sumi, _mm256_add_epi32(p0, p1));
    }
    acc = _mm256_fmadd_ps(_mm256_set1_ps(y[i].d * h2f(x[i].d)), _mm256_cvtepi32_ps(sumi), acc);
  }
  return hsum_ps(acc) - hsum_ps128(acc_m);
}

LB_AVX2 float dot_q6_k_avx2(int64_t n, const void* w, const void* a) {
  const BlockQ6_K* x = static_cast<const BlockQ6_K*>(w);
  const BlockQ8_K* y = static_cast<const BlockQ8_K*>(a);
  const __m256i m4 = _mm256_set1_epi8(0xF);
  const __m256i m2 = _mm256_set1_epi8(3);
  const __m256i m32 = _mm256_set1_epi8(32);
  __m256 acc = _mm256_setzero_ps();
  const int64_t nb = n / kQK_K;
  for (int64_t i = 0; i < nb; ++i) {
    prefetch_block<8>(x + i);
    const uint8_t* ql = x[i].ql;
    const uint8_t* qh = x[i].qh;
    const int8_t* sc = x[i].scales;
    const int8_t* q8 = y[i].qs;
    __m256i sumi = _mm256_setzero_si256();
    for (int c = 0; c < 2; ++c) {
      const __m256i h = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(qh));
      const __m256i l0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(ql));
      const __m256i l1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(ql + 32));
      __m256i q[4];
      q[0] = _mm256_or_si256(_mm256_and_si256(l0, m4), _mm256_slli_epi16(_mm256_and_si256(h, m2), 4));
      q[1] = _mm256_or_si256(_mm256_and_si256(l1, m4),
                             _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(h, 2), m2), 4));
      q[2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), m4),
                             _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(h, 4), m2), 4));
      q[3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), m4),
                             _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(h, 6), m2), 4));
      for (int k = 0; k < 4; ++k) {
        const __m256i yk = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q8 + 32 * k));
        const __m256i p = _mm256_sub_epi16(_mm256_maddubs_epi16(q[k], yk), _mm256_maddubs_epi16(m32, yk));
        const __m256i scv = _mm256_set_m128i(_mm_set1_epi16(sc[2 * k + 1]), _mm_set1_epi16(sc[2 * k]));
        sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(p, scv));
      }
      ql += 64;
      qh += 32;
      sc += 8;
      q8 += 128;
    }
    acc = _mm256_fmadd_ps(_mm256_set1_ps(y[i].d * h2f(x[i].d)), _mm256_cvtepi32_ps(sumi), acc);
  }
  return hsum_ps(acc);
}

LB_AVX2 void dot4_q8_0_avx2(int64_t n, const void* w, const void* const a[4], float out[4]) {
  const BlockQ8_0* x = static_cast<const BlockQ8_0*>(w);
  const BlockQ8_0* y[4] = {static_cast<const BlockQ8_0*>(a[0]), static_cast<const BlockQ8_0*>(a[1]),
                           static_cast<const BlockQ8_0*>(a[2]), static_cast<const BlockQ8_0*>(a[3])};
  const __m256i ones = _mm256_set1_epi16(1);
  __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
  const int64_t nb = n / kQK8_0;
  for (int64_t i = 0; i < nb; ++i) {
    const __m256i qx = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x[i].qs));
    const __m256i ax = _mm256_sign_epi8(qx, qx);
    const float dx = h2f(x[i].d);
    for (int r = 0; r < 4; ++r) {
      const __m256i qy = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(y[r][i].qs));
      const __m256i p32 = _mm256_madd_epi16(_mm256_maddubs_epi16(ax, _mm256_sign_epi8(qy, qx)), ones);
      acc[r] = _mm256_fmadd_ps(_mm256_set1_ps(dx * h2f(y[r][i].d)), _mm256_cvtepi32_ps(p32), acc[r]);
    }
  }
  for (int r = 0; r < 4; ++r) out[r] = hsum_ps(acc[r]);
}

LB_AVX2 void dot4_q4_k_avx2(int64_t n, const void* w, const void* const a[4], float out[4]) {
  const BlockQ4_K* x = static_cast<const BlockQ4_K*>(w);
  const BlockQ8_K* y[4] = {static_cast<const BlockQ8_K*>(a[0]), static_cast<const BlockQ8_K*>(a[1]),
                           static_cast<const BlockQ8_K*>(a[2]), static_cast<const BlockQ8_K*>(a[3])};
  const __m256i m4 = _mm256_set1_epi8(0xF);
  constexpr uint32_t kmask1 = 0x3f3f3f3f, kmask2 = 0x0f0f0f0f, kmask3 = 0x03030303;
  __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
  __m128 acc_m[4] = {_mm_setzero_ps(), _mm_setzero_ps(), _mm_setzero_ps(), _mm_setzero_ps()};
  const int64_t nb = n / kQK_K;
  for (int64_t i = 0; i < nb; ++i) {
    uint32_t u[4];
    std::memcpy(u, x[i].scales, 12);
    u[3] = ((u[2] >> 4) & kmask2) | (((u[1] >> 6) & kmask3) << 4);
    const uint32_t uaux = u[1] & kmask1;
    u[1] = (u[2] & kmask2) | (((u[0] >> 6) & kmask3) << 4);
    u[2] = uaux;
    u[0] &= kmask1;
    const uint8_t* sc = reinterpret_cast<const uint8_t*>(u);
    const __m256i mins_scales = _mm256_cvtepu8_epi16(_mm_set_epi32(static_cast<int>(u[3]), static_cast<int>(u[2]),
                                                                   static_cast<int>(u[1]), static_cast<int>(u[0])));
    const __m128i mins = _mm256_extracti128_si256(mins_scales, 1);
    const float dmin = h2f(x[i].dmin), d = h2f(x[i].d);
    __m256i sumi[4];
    for (int r = 0; r < 4; ++r) {
      const __m256i bs = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(y[r][i].bsums));
      const __m128i q8s = _mm_hadd_epi16(_mm256_castsi256_si128(bs), _mm256_extracti128_si256(bs, 1));
      acc_m[r] = _mm_fmadd_ps(_mm_set1_ps(y[r][i].d * dmin), _mm_cvtepi32_ps(_mm_madd_epi16(mins, q8s)), acc_m[r]);
      sumi[r] = _mm256_setzero_si256();
    }
    const uint8_t* q4 = x[i].qs;
    for (int j = 0; j < 4; ++j) {
      const __m256i bits = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q4 + 32 * j));
      const __m256i lo = _mm256_and_si256(bits, m4);
      const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(bits, 4), m4);
      const __m256i s0 = _mm256_set1_epi16(sc[2 * j]), s1 = _mm256_set1_epi16(sc[2 * j + 1]);
      for (int r = 0; r < 4; ++r) {
        const int8_t* q8 = y[r][i].qs + 64 * j;
        const __m256i y0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q8));
        const __m256i y1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q8 + 32));
        const __m256i p0 = _mm256_madd_epi16(_mm256_maddubs_epi16(lo, y0), s0);
        const __m256i p1 = _mm256_madd_epi16(_mm256_maddubs_epi16(hi, y1), s1);
        sumi[r] = _mm256_add_epi32(sumi[r], _mm256_add_epi32(p0, p1));
      }
    }
    for (int r = 0; r < 4; ++r) acc[r] = _mm256_fmadd_ps(_mm256_set1_ps(y[r][i].d * d), _mm256_cvtepi32_ps(sumi[r]), acc[r]);
  }
  for (int r = 0; r < 4; ++r) {
    __m128 m = _mm_add_ps(acc_m[r], _mm_movehl_ps(acc_m[r], acc_m[r]));
    m = _mm_add_ss(m, _mm_movehdup_ps(m));
    out[r] = hsum_ps(acc[r]) - _mm_cvtss_f32(m);
  }
}

LB_AVX2 void dot4_q5_k_avx2(int64_t n, const void* w, const void* const a[4], float out[4]) {
  const BlockQ5_K* x = static_cast<const BlockQ5_K*>(w);
  const BlockQ8_K* y[4] = {static_cast<const BlockQ8_K*>(a[0]), static_cast<const BlockQ8_K*>(a[1]),
                           static_cast<const BlockQ8_K*>(a[2]), static_cast<const BlockQ8_K*>(a[3])};
  __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
  __m128 acc_m[4] = {_mm_setzero_ps(), _mm_setzero_ps(), _mm_setzero_ps(), _mm_setzero_ps()};
  const int64_t nb = n / kQK_K;
  for (int64_t i = 0; i < nb; ++i) {
    uint32_t u[4];
    unpack_k_scales(x[i].scales, u);
    const uint8_t* sc = reinterpret_cast<const uint8_t*>(u);
    const float dmin = h2f(x[i].dmin), d = h2f(x[i].d);
    __m256i sumi[4];
    for (int r = 0; r < 4; ++r) {
      acc_m[r] = _mm_fmadd_ps(_mm_set1_ps(y[r][i].d * dmin), _mm_cvtepi32_ps(k_mins_dot(u, y[r][i])), acc_m[r]);
      sumi[r] = _mm256_setzero_si256();
    }
    for (int j = 0; j < 4; ++j) {
      __m256i lo, hi;
      q5_k_unpack(x[i], j, &lo, &hi);
      const __m256i s0 = _mm256_set1_epi16(sc[2 * j]), s1 = _mm256_set1_epi16(sc[2 * j + 1]);
      for (int r = 0; r < 4; ++r) {
        const int8_t* q8 = y[r][i].qs + 64 * j;
        const __m256i y0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q8));
        const __m256i y1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q8 + 32));
        const __m256i p0 = _mm256_madd_epi16(_mm256_maddubs_epi16(lo, y0), s0);
        const __m256i p1 = _mm256_madd_epi16(_mm256_maddubs_epi16(hi, y1), s1);
        sumi[r] = _mm256_add_epi32(sumi[r], _mm256_add_epi32(p0, p1));
      }
    }
    for (int r = 0; r < 4; ++r) acc[r] = _mm256_fmadd_ps(_mm256_set1_ps(y[r][i].d * d), _mm256_cvtepi32_ps(sumi[r]), acc[r]);
  }
  for (int r = 0; r < 4; ++r) out[r] = hsum_ps(acc[r]) - hsum_ps128(acc_m[r]);
}

LB_AVX2 void dot4_q6_k_avx2(int64_t n, const void* w, const void* const a[4], float out[4]) {
  const BlockQ6_K* x = static_cast<const BlockQ6_K*>(w);
  const BlockQ8_K* y[4] = {static_cast<const BlockQ8_K*>(a[0]), static_cast<const BlockQ8_K*>(a[1]),
                           static_cast<const BlockQ8_K*>(a[2]), static_cast<const BlockQ8_K*>(a[3])};
  const __m256i m4 = _mm256_set1_epi8(0xF);
  const __m256i m2 = _mm256_set1_epi8(3);
  const __m256i m32 = _mm256_set1_epi8(32);
  __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
  const int64_t nb = n / kQK_K;
  for (int64_t i = 0; i < nb; ++i) {
    const uint8_t* ql = x[i].ql;
    const uint8_t* qh = x[i].qh;
    const int8_t* sc = x[i].scales;
    __m256i sumi[4] = {_mm256_setzero_si256(), _mm256_setzero_si256(), _mm256_setzero_si256(), _mm256_setzero_si256()};
    for (int c = 0; c < 2; ++c) {
      const __m256i h = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(qh));
      const __m256i l0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(ql));
      const __m256i l1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(ql + 32));
      __m256i q[4];
      q[0] = _mm256_or_si256(_mm256_and_si256(l0, m4), _mm256_slli_epi16(_mm256_and_si256(h, m2), 4));
      q[1] = _mm256_or_si256(_mm256_and_si256(l1, m4),
                             _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(h, 2), m2), 4));
      q[2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), m4),
                             _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(h, 4), m2), 4));
      q[3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), m4),
                             _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(h, 6), m2), 4));
      for (int k = 0; k < 4; ++k) {
        const __m256i scv = _mm256_set_m128i(_mm_set1_epi16(sc[2 * k + 1]), _mm_set1_epi16(sc[2 * k]));
        for (int r = 0; r < 4; ++r) {
          const __m256i yk = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(y[r][i].qs + 128 * c + 32 * k));
          const __m256i p = _mm256_sub_epi16(_mm256_maddubs_epi16(q[k], yk), _mm256_maddubs_epi16(m32, yk));
          sumi[r] = _mm256_add_epi32(sumi[r], _mm256_madd_epi16(p, scv));
        }
      }
      ql += 64;
      qh += 32;
      sc += 8;
    }
    const float d = h2f(x[i].d);
    for (int r = 0; r < 4; ++r) acc[r] = _mm256_fmadd_ps(_mm256_set1_ps(y[r][i].d * d), _mm256_cvtepi32_ps(sumi[r]), acc[r]);
  }
  for (int r = 0; r < 4; ++r) out[r] = hsum_ps(acc[r]);
}

// ------------------------------------------------------------------ AVX-512 prefill kernels
// One weight row times eight prepared activation rows: each weight block is loaded and unpacked
// once for eight tokens. VNNI fuses the integer multiply-adds; 512-bit lanes cover two Q4_K
// sub-blocks at once. The float steps repeat the AVX2 kernels' exactly.

#define LB_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")))

// The upper 256 bits of a 512-bit vector.
LB_AVX512 inline __m256i hi256_si(__m512i v) { return _mm512_extracti64x4_epi64(v, 1); }

// Bit-identical to dot_q8_0_avx2 per row: dpbusd forms the same four-product int32 lanes as
// maddubs+madd. One block (32 bytes) per step in 256-bit lanes: pairing blocks into 512-bit
// vectors (34-byte stride) cost more in inserts and extracts than it saved (measured).
// R rows per weight-row load (8: prefill). The one-row form measured no faster than AVX2's
// single-row kernel (BM_VecDot), so decode keeps that.
template <int R>
LB_AVX512 void dotn_q8_0_avx512(int64_t n, const void* w, const void* const a[], float out[]) {
  const BlockQ8_0* x = static_cast<const BlockQ8_0*>(w);
  const BlockQ8_0* y[R];
  for (int r = 0; r < R; ++r) y[r] = static_cast<const BlockQ8_0*>(a[r]);
  __m256 acc[R];
  for (int r = 0; r < R; ++r) acc[r] = _mm256_setzero_ps();
  const int64_t nb = n / kQK8_0;
  for (int64_t i = 0; i < nb; ++i) {
    const __m256i qx = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x[i].qs));
    // |x| as unsigned bytes (-128 -> 128) times y with x's sign: dpbusd's u8 x s8 form.
    const __m256i ax = _mm256_sign_epi8(qx, qx);
    const float dx = h2f(x[i].d);
    for (int r = 0; r < R; ++r) {
      const __m256i qy = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(y[r][i].qs));
      const __m256i p = _mm256_dpbusd_epi32(_mm256_setzero_si256(), ax, _mm256_sign_epi8(qy, qx));
      acc[r] = _mm256_fmadd_ps(_mm256_set1_ps(dx * h2f(y[r][i].d)), _mm256_cvtepi32_ps(p), acc[r]);
    }
  }
  for (int r = 0; r < R; ++r) out[r] = hsum_ps(acc[r]);
}

// Q4_K: the 32 quant bytes of sub-blocks 2j/2j+1 as one vector, low nibbles (sub-block 2j) in
// bytes 0..31 and high nibbles (2j+1) in 32..63 -- the order of the Q8_K quants 64j..64j+63.
LB_AVX512 inline __m512i q4_k_unpack512(const uint8_t* q4) {
  const __m512i v = _mm512_broadcast_i64x4(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(q4)));
  const __m512i both = _mm512_mask_blend_epi64(0xF0, v, _mm512_srli_epi16(v, 4));
  return _mm512_and_si512(both, _mm512_set1_epi8(0xF));
}
LB_AVX512 inline __m512i q4_k_quants512(const BlockQ4_K& x, int j) { return q4_k_unpack512(x.qs + 32 * j); }

// Q5_K: Q4_K's nibbles plus the fifth bit, bit 2j of qh (lower half) or 2j+1 (upper half) at
// bit 4. 16-bit shifts are safe because the mask keeps one bit per byte.
LB_AVX512 inline __m512i q5_k_quants512(const BlockQ5_K& x, int j) {
  const __m512i hb = _mm512_broadcast_i64x4(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(x.qh)));
  const __m512i h = _mm512_mask_blend_epi64(0xF0, _mm512_srli_epi16(hb, 2 * j), _mm512_srli_epi16(hb, 2 * j + 1));
  const __m512i h4 = _mm512_slli_epi16(_mm512_and_si512(h, _mm512_set1_epi8(1)), 4);
  return _mm512_or_si512(q4_k_unpack512(x.qs + 32 * j), h4);
}

// int16 scales: sc[2j] in the lower 16 lanes, sc[2j+1] in the upper 16.
LB_AVX512 inline __m512i q4_k_scale_pair(const uint8_t* sc, int j) {
  return _mm512_inserti64x4(_mm512_zextsi256_si512(_mm256_set1_epi16(sc[2 * j])), _mm256_set1_epi16(sc[2 * j + 1]), 1);
}

// Q4_K and Q5_K (Quants unpacks one block's sub-blocks 2j/2j+1), R rows per weight-row load.
// Bit-identical to dot_q4_k_avx2 / dot_q5_k_avx2 per row: the 16 int32 lanes (sub-block 2j in
// 0..7, 2j+1 in 8..15) are folded to the AVX2 kernel's 8 lanes in integer arithmetic, which is
// exact, and the float steps are the AVX2 kernels'.
template <int R, typename Block, __m512i (*Quants)(const Block&, int)>
LB_AVX512 void dotn_k_mins_avx512(int64_t n, const void* w, const void* const a[], float out[]) {
  const Block* x = static_cast<const Block*>(w);
  const BlockQ8_K* y[R];
  for (int r = 0; r < R; ++r) y[r] = static_cast<const BlockQ8_K*>(a[r]);
  __m256 acc[R];
  __m128 acc_m[R];
  for (int r = 0; r < R; ++r) {
    acc[r] = _mm256_setzero_ps();
    acc_m[r] = _mm_setzero_ps();
  }
  const int64_t nb = n / kQK_K;
  for (int64_t i = 0; i < nb; ++i) {
    if constexpr (R == 1) prefetch_block<8>(x + i);  // eight rows reuse each block: no need
    uint32_t u[4];
    unpack_k_scales(x[i].scales, u);
    const uint8_t* sc = reinterpret_cast<const uint8_t*>(u);
    __m512i q[4], s[4];
    for (int j = 0; j < 4; ++j) {
      q[j] = Quants(x[i], j);
      s[j] = q4_k_scale_pair(sc, j);
    }
    const float d = h2f(x[i].d), dmin = h2f(x[i].dmin);
    for (int r = 0; r < R; ++r) {
      const int8_t* q8 = y[r][i].qs;
      __m512i sumi = _mm512_setzero_si512();
      for (int j = 0; j < 4; ++j) {
        // u5 x s8 pairs fit int16 (2 * 31 * 128); dpwssd applies the scale and accumulates.
        const __m512i p16 = _mm512_maddubs_epi16(q[j], _mm512_loadu_si512(q8 + 64 * j));
        sumi = _mm512_dpwssd_epi32(sumi, p16, s[j]);
      }
      const __m256i sumi8 = _mm256_add_epi32(_mm512_castsi512_si256(sumi), hi256_si(sumi));
      acc[r] = _mm256_fmadd_ps(_mm256_set1_ps(y[r][i].d * d), _mm256_cvtepi32_ps(sumi8), acc[r]);
      acc_m[r] = _mm_fmadd_ps(_mm_set1_ps(y[r][i].d * dmin), _mm_cvtepi32_ps(k_mins_dot(u, y[r][i])), acc_m[r]);
    }
  }
  for (int r = 0; r < R; ++r) out[r] = hsum_ps(acc[r]) - hsum_ps128(acc_m[r]);
}

// Q6_K: the quants of Q8_K positions 128c + 64p .. +63 (p = 0, 1) of one block: ql[64c..64c+63]
// holds their low nibbles (p = 0 low, p = 1 high nibbles), qh[32c..32c+31] two high bits per
// 32-run (bits 0-1, 2-3 for p = 0; 4-5, 6-7 for p = 1). Values 0..63, offset 32 not removed.
LB_AVX512 inline void q6_k_quants512(const BlockQ6_K& x, int c, __m512i q[2]) {
  const __m512i m4 = _mm512_set1_epi8(0xF), m2 = _mm512_set1_epi8(3);
  const __m512i l = _mm512_loadu_si512(x.ql + 64 * c);
  const __m512i hb = _mm512_broadcast_i64x4(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(x.qh + 32 * c)));
  const __m512i h = _mm512_mask_blend_epi64(0xF0, hb, _mm512_srli_epi16(hb, 2));
  q[0] = _mm512_or_si512(_mm512_and_si512(l, m4), _mm512_slli_epi16(_mm512_and_si512(h, m2), 4));
  q[1] = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(l, 4), m4),
                         _mm512_slli_epi16(_mm512_and_si512(_mm512_srli_epi16(h, 4), m2), 4));
}

// The int16 scales for quant vector v (0..3) of a Q6_K block: 128-bit lane g holds the scale
// of its 16 quants, scales[4v + g].
LB_AVX512 inline void q6_k_scales512(const BlockQ6_K& x, __m512i s[4]) {
  alignas(64) static constexpr int16_t kLaneGroup[32] = {0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1,
                                                         2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3};
  const __m512i all = _mm512_castsi256_si512(
      _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(x.scales))));
  const __m512i group = _mm512_load_si512(kLaneGroup);
  for (int v = 0; v < 4; ++v) s[v] = _mm512_permutexvar_epi16(_mm512_add_epi16(group, _mm512_set1_epi16(static_cast<short>(4 * v))), all);
}

// Bit-identical to dot_q6_k_avx2 per row: the same int16 pair sums (q*y - 32*y), each 512-bit
// vector covering two of its 32-quant chunks, folded to its 8 int32 lanes exactly.
template <int R>
LB_AVX512 void dotn_q6_k_avx512(int64_t n, const void* w, const void* const a[], float out[]) {
  const BlockQ6_K* x = static_cast<const BlockQ6_K*>(w);
  const BlockQ8_K* y[R];
  for (int r = 0; r < R; ++r) y[r] = static_cast<const BlockQ8_K*>(a[r]);
  const __m512i m32 = _mm512_set1_epi8(32);
  __m256 acc[R];
  for (int r = 0; r < R; ++r) acc[r] = _mm256_setzero_ps();
  const int64_t nb = n / kQK_K;
  for (int64_t i = 0; i < nb; ++i) {
    if constexpr (R == 1) prefetch_block<8>(x + i);
    __m512i q[4], s[4];
    q6_k_quants512(x[i], 0, q);
    q6_k_quants512(x[i], 1, q + 2);
    q6_k_scales512(x[i], s);
    const float d = h2f(x[i].d);
    for (int r = 0; r < R; ++r) {
      __m512i sumi = _mm512_setzero_si512();
      for (int v = 0; v < 4; ++v) {
        const __m512i yv = _mm512_loadu_si512(y[r][i].qs + 64 * v);
        const __m512i p = _mm512_sub_epi16(_mm512_maddubs_epi16(q[v], yv), _mm512_maddubs_epi16(m32, yv));
        sumi = _mm512_dpwssd_epi32(sumi, p, s[v]);
      }
      const __m256i sumi8 = _mm256_add_epi32(_mm512_castsi512_si256(sumi), hi256_si(sumi));
      acc[r] = _mm256_fmadd_ps(_mm256_set1_ps(y[r][i].d * d), _mm256_cvtepi32_ps(sumi8), acc[r]);
    }
  }
  for (int r = 0; r < R; ++r) out[r] = hsum_ps(acc[r]);
}

// The prefill (eight-row) forms, and the decode (one-row) forms where they measured faster than
// AVX2's (BM_VecDot, single 2048-wide rows: Q6_K 1.5x, Q4_K 1.15x; Q5_K's was 10% slower, its
// per-block unpack of the fifth bits is not shared by eight rows).
template <void (*Dot)(int64_t, const void*, const void* const[], float[])>
LB_AVX512 float dot1_avx512(int64_t n, const void* w, const void* a) {
  const void* a1[1] = {a};
  float out;
  Dot(n, w, a1, &out);
  return out;
}
constexpr VecDot8Fn dot8_q8_0_avx512 = dotn_q8_0_avx512<8>;
constexpr VecDot8Fn dot8_q4_k_avx512 = dotn_k_mins_avx512<8, BlockQ4_K, q4_k_quants512>;
constexpr VecDot8Fn dot8_q5_k_avx512 = dotn_k_mins_avx512<8, BlockQ5_K, q5_k_quants512>;
constexpr VecDot8Fn dot8_q6_k_avx512 = dotn_q6_k_avx512<8>;
constexpr VecDotFn dot_q4_k_avx512 = dot1_avx512<dotn_k_mins_avx512<1, BlockQ4_K, q4_k_quants512>>;
constexpr VecDotFn dot_q6_k_avx512 = dot1_avx512<dotn_q6_k_avx512<1>>;

LB_AVX2 void axpy_avx2(int64_t n, float a, const float* x, float* y) {
  const __m256 va = _mm256_set1_ps(a);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, _mm256_fmadd_ps(va, _mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i)));
  for (; i < n; ++i) y[i] += a * x[i];
}

LB_AVX2 void axpy_f16_avx2(int64_t n, float a, const uint16_t* x, float* y) {
  const __m256 va = _mm256_set1_ps(a);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 xv = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(x + i)));
    _mm256_storeu_ps(y + i, _mm256_fmadd_ps(va, xv, _mm256_loadu_ps(y + i)));
  }
  for (; i < n; ++i) y[i] += a * h2f(x[i]);
}

LB_AVX2 void axpy_q8_0_avx2(int64_t n, float a, const BlockQ8_0* x, float* y) {
  for (int64_t b = 0; b < n / kQK8_0; ++b) {
    const __m256 va = _mm256_set1_ps(a * h2f(x[b].d));
    float* yb = y + b * kQK8_0;
    for (int j = 0; j < kQK8_0; j += 8) {
      const __m128i q = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(x[b].qs + j));
      const __m256 xv = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(q));
      _mm256_storeu_ps(yb + j, _mm256_fmadd_ps(va, xv, _mm256_loadu_ps(yb + j)));
    }
  }
}

std::atomic<bool> g_force_scalar{false};
std::atomic<bool> g_no_avx512{false};

}  // namespace

void axpy_f32(int64_t n, float a, const float* x, float* y) {
  if (cpu_has_avx2() && !g_force_scalar.load(std::memory_order_relaxed)) return axpy_avx2(n, a, x, y);
  for (int64_t i = 0; i < n; ++i) y[i] += a * x[i];
}

void axpy_row(TensorType t, int64_t n, float a, const void* x, float* y) {
  const bool simd = cpu_has_avx2() && !g_force_scalar.load(std::memory_order_relaxed);
  switch (t) {
    case TensorType::f16: {
      const uint16_t* h = static_cast<const uint16_t*>(x);
      if (simd) return axpy_f16_avx2(n, a, h, y);
      for (int64_t i = 0; i < n; ++i) y[i] += a * fp16_to_fp32(h[i]);
      return;
    }
    case TensorType::q8_0: {
      const BlockQ8_0* q = static_cast<const BlockQ8_0*>(x);
      if (simd) return axpy_q8_0_avx2(n, a, q, y);
      for (int64_t b = 0; b < n / kQK8_0; ++b) {
        const float ad = a * fp16_to_fp32(q[b].d);
        for (int j = 0; j < kQK8_0; ++j) y[b * kQK8_0 + j] += ad * q[b].qs[j];
      }
      return;
    }
    default: return axpy_f32(n, a, static_cast<const float*>(x), y);
  }
}

bool cpu_has_avx2() {
  static const bool has = [] {
    __builtin_cpu_init();
    // F16C via cpuid (leaf 1, ECX bit 29): not every compiler knows it as a feature string.
    unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
    const bool f16c = __get_cpuid(1, &eax, &ebx, &ecx, &edx) && (ecx & (1u << 29)) != 0;
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && f16c;
  }();
  return has;
}

bool cpu_has_avx512_vnni() {
  static const bool has = [] {
    __builtin_cpu_init();
    return cpu_has_avx2() && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vnni");
  }();
  return has;
}

void force_scalar_kernels(bool on) { g_force_scalar.store(on); }
void disable_avx512_kernels(bool on) { g_no_avx512.store(on); }
bool avx512_kernels_enabled() { return !g_force_scalar.load() && !g_no_avx512.load(); }

bool dequantize_row(TensorType t, const void* x, float* y, int64_t n) {
  switch (t) {
    case TensorType::f32: std::memcpy(y, x, static_cast<size_t>(n) * 4); return true;
    case TensorType::f16: {
      const uint16_t* h = static_cast<const uint16_t*>(x);
      for (int64_t i = 0; i < n; ++i) y[i] = fp16_to_fp32(h[i]);
      return true;
    }
    case TensorType::bf16: {
      const uint16_t* h = static_cast<const uint16_t*>(x);
      for (int64_t i = 0; i < n; ++i) y[i] = bf16_to_fp32(h[i]);
      return true;
    }
    case TensorType::q8_0: dequant_q8_0(static_cast<const BlockQ8_0*>(x), y, n); return true;
    case TensorType::q4_k: dequant_q4_k(static_cast<const BlockQ4_K*>(x), y, n); return true;
    case TensorType::q5_k: dequant_q5_k(static_cast<const BlockQ5_K*>(x), y, n); return true;
    case TensorType::q6_k: dequant_q6_k(static_cast<const BlockQ6_K*>(x), y, n); return true;
    default: return legacy_dequantize_row(t, x, y, n);
  }
}

void quantize_row_q8_0(const float* x, BlockQ8_0* y, int64_t n) {
  for (int64_t i = 0; i < n / kQK8_0; ++i) {
    float amax = 0;
    for (int j = 0; j < kQK8_0; ++j) amax = std::max(amax, std::fabs(x[i * kQK8_0 + j]));
    const float d = amax / 127.f;
    const float id = d != 0 ? 1.0f / d : 0.0f;
    y[i].d = fp32_to_fp16(d);
    for (int j = 0; j < kQK8_0; ++j) y[i].qs[j] = static_cast<int8_t>(std::roundf(x[i * kQK8_0 + j] * id));
  }
}

void quantize_row_q8_k(const float* x, BlockQ8_K* y, int64_t n) {
  for (int64_t i = 0; i < n / kQK_K; ++i) {
    const float* xb = x + i * kQK_K;
    float max = 0, amax = 0;
    for (int j = 0; j < kQK_K; ++j) {
      const float ax = std::fabs(xb[j]);
      if (ax > amax) {
        amax = ax;
        max = xb[j];
      }
    }
    if (amax == 0) {
      y[i].d = 0;
      std::memset(y[i].qs, 0, sizeof y[i].qs);
      std::memset(y[i].bsums, 0, sizeof y[i].bsums);
      continue;
    }
    const float iscale = -127.f / max;
    for (int j = 0; j < kQK_K; ++j) y[i].qs[j] = static_cast<int8_t>(std::min(127, nearest_int(iscale * xb[j])));
    for (int j = 0; j < kQK_K / 16; ++j) {
      int s = 0;
      for (int l = 0; l < 16; ++l) s += y[i].qs[j * 16 + l];
      y[i].bsums[j] = static_cast<int16_t>(s);
    }
    y[i].d = 1 / iscale;
  }
}

namespace {

// Scales, mins and quants (0..nmax) of one 256-value block in the Q4_K/Q5_K scale format:
// 8 sub-blocks of 32, each with a 6-bit scale and min under fp16 super-scales.
void quantize_k_sub_blocks(const float* xb, int nmax, uint8_t scales[kKScaleSize], uint16_t* d16,
                           uint16_t* dmin16, uint8_t L[kQK_K]) {
  float sub_scale[8], sub_min[8];
  float max_scale = 0, max_min = 0;
  for (int j = 0; j < 8; ++j) {
    float mn = 0, mx = xb[32 * j];
    for (int l = 0; l < 32; ++l) {
      mn = std::min(mn, xb[32 * j + l]);
      mx = std::max(mx, xb[32 * j + l]);
    }
    sub_scale[j] = (mx - mn) / static_cast<float>(nmax);
    sub_min[j] = -mn;
    max_scale = std::max(max_scale, sub_scale[j]);
    max_min = std::max(max_min, sub_min[j]);
  }
  const float d = max_scale / 63.f, dmin = max_min / 63.f;
  const float id = d > 0 ? 1 / d : 0, idm = dmin > 0 ? 1 / dmin : 0;
  uint8_t ls[8], lm[8];
  for (int j = 0; j < 8; ++j) {
    ls[j] = static_cast<uint8_t>(std::clamp(nearest_int(id * sub_scale[j]), 0, 63));
    lm[j] = static_cast<uint8_t>(std::clamp(nearest_int(idm * sub_min[j]), 0, 63));
  }
  std::memset(scales, 0, kKScaleSize);
  for (int j = 0; j < 8; ++j) {
    if (j < 4) {
      scales[j] = ls[j];
      scales[j + 4] = lm[j];
    } else {
      scales[j + 4] = static_cast<uint8_t>((ls[j] & 0xF) | ((lm[j] & 0xF) << 4));
      scales[j - 4] |= static_cast<uint8_t>((ls[j] >> 4) << 6);
      scales[j - 0] |= static_cast<uint8_t>((lm[j] >> 4) << 6);
    }
  }
  *d16 = fp32_to_fp16(d);
  *dmin16 = fp32_to_fp16(dmin);
  for (int j = 0; j < 8; ++j) {
    uint8_t sc, m;
    q4k_scale_min(j, scales, &sc, &m);
    const float dl = fp16_to_fp32(*d16) * sc;
    const float ml = fp16_to_fp32(*dmin16) * m;
    for (int l = 0; l < 32; ++l) {
      const int q = dl > 0 ? nearest_int((xb[32 * j + l] + ml) / dl) : 0;
      L[32 * j + l] = static_cast<uint8_t>(std::clamp(q, 0, nmax));
    }
  }
}

}  // namespace

void quantize_row_q4_k(const float* x, BlockQ4_K* y, int64_t n) {
  for (int64_t i = 0; i < n / kQK_K; ++i) {
    uint8_t L[kQK_K];
    quantize_k_sub_blocks(x + i * kQK_K, 15, y[i].scales, &y[i].d, &y[i].dmin, L);
    uint8_t* q = y[i].qs;
    for (int j = 0; j < kQK_K; j += 64) {
      for (int l = 0; l < 32; ++l) q[l] = static_cast<uint8_t>(L[j + l] | (L[j + l + 32] << 4));
      q += 32;
    }
  }
}

void quantize_row_q5_k(const float* x, BlockQ5_K* y, int64_t n) {
  for (int64_t i = 0; i < n / kQK_K; ++i) {
    uint8_t L[kQK_K];
    quantize_k_sub_blocks(x + i * kQK_K, 31, y[i].scales, &y[i].d, &y[i].dmin, L);
    std::memset(y[i].qh, 0, sizeof y[i].qh);
    uint8_t* q = y[i].qs;
    for (int j = 0; j < 8; j += 2) {
      for (int l = 0; l < 32; ++l) {
        const uint8_t lo = L[32 * j + l], hi = L[32 * (j + 1) + l];
        q[l] = static_cast<uint8_t>((lo & 0xF) | ((hi & 0xF) << 4));
        y[i].qh[l] = static_cast<uint8_t>(y[i].qh[l] | ((lo >> 4) << j) | ((hi >> 4) << (j + 1)));
      }
      q += 32;
    }
  }
}

void quantize_row_q6_k(const float* x, BlockQ6_K* y, int64_t n) {
  for (int64_t i = 0; i < n / kQK_K; ++i) {
    const float* xb = x + i * kQK_K;
    float scales[16];
    float max_scale = 0;
    for (int j = 0; j < 16; ++j) {
      float amax = 0;
      for (int l = 0; l < 16; ++l) amax = std::max(amax, std::fabs(xb[16 * j + l]));
      scales[j] = amax / 31.f;
      max_scale = std::max(max_scale, scales[j]);
    }
    const float d = max_scale / 127.f;
    const float id = d > 0 ? 1 / d : 0;
    y[i].d = fp32_to_fp16(d);
    uint8_t L[kQK_K];
    for (int j = 0; j < 16; ++j) {
      y[i].scales[j] = static_cast<int8_t>(std::clamp(nearest_int(id * scales[j]), -128, 127));
      const float dl = fp16_to_fp32(y[i].d) * y[i].scales[j];
      for (int l = 0; l < 16; ++l) {
        const int q = dl != 0 ? nearest_int(xb[16 * j + l] / dl) : 0;
        L[16 * j + l] = static_cast<uint8_t>(std::clamp(q, -32, 31) + 32);
      }
    }
    uint8_t* ql = y[i].ql;
    uint8_t* qh = y[i].qh;
    for (int j = 0; j < kQK_K; j += 128) {
      for (int l = 0; l < 32; ++l) {
        const uint8_t q1 = L[j + l + 0] & 0xF, q2 = L[j + l + 32] & 0xF;
        const uint8_t q3 = L[j + l + 64] & 0xF, q4 = L[j + l + 96] & 0xF;
        ql[l + 0] = static_cast<uint8_t>(q1 | (q3 << 4));
        ql[l + 32] = static_cast<uint8_t>(q2 | (q4 << 4));
        qh[l] = static_cast<uint8_t>((L[j + l] >> 4) | ((L[j + l + 32] >> 4) << 2) |
                                     ((L[j + l + 64] >> 4) << 4) | ((L[j + l + 96] >> 4) << 6));
      }
      ql += 64;
      qh += 32;
    }
  }
}

bool quantize_row(TensorType t, const float* x, void* y, int64_t n) {
  switch (t) {
    case TensorType::f32: std::memcpy(y, x, static_cast<size_t>(n) * 4); return true;
    case TensorType::f16: {
      uint16_t* h = static_cast<uint16_t*>(y);
      for (int64_t i = 0; i < n; ++i) h[i] = fp32_to_fp16(x[i]);
      return true;
    }
    case TensorType::bf16: {
      uint16_t* h = static_cast<uint16_t*>(y);
      for (int64_t i = 0; i < n; ++i) h[i] = fp32_to_bf16(x[i]);
      return true;
    }
    case TensorType::q8_0: quantize_row_q8_0(x, static_cast<BlockQ8_0*>(y), n); return true;
    case TensorType::q4_k: quantize_row_q4_k(x, static_cast<BlockQ4_K*>(y), n); return true;
    case TensorType::q5_k: quantize_row_q5_k(x, static_cast<BlockQ5_K*>(y), n); return true;
    case TensorType::q6_k: quantize_row_q6_k(x, static_cast<BlockQ6_K*>(y), n); return true;
    default: return legacy_quantize_row(t, x, y, n);
  }
}

ActFormat act_format_for(TensorType t) {
  switch (t) {
    case TensorType::q8_0:
    case TensorType::q4_0:
    case TensorType::q4_1:
    case TensorType::q5_0:
    case TensorType::q5_1: return ActFormat::q8_0;
    case TensorType::q4_k:
    case TensorType::q5_k:
    case TensorType::q6_k: return ActFormat::q8_k;
    default: return ActFormat::f32;
  }
}

size_t act_format_row_bytes(ActFormat f, int64_t n) {
  switch (f) {
    case ActFormat::q8_0: return static_cast<size_t>(n / kQK8_0) * sizeof(BlockQ8_0);
    case ActFormat::q8_k: return static_cast<size_t>(n / kQK_K) * sizeof(BlockQ8_K);
    case ActFormat::q8_0_sum: return static_cast<size_t>(n / kQK8_0) * sizeof(BlockQ8_0Sum);
    case ActFormat::f32: break;
  }
  return static_cast<size_t>(n) * sizeof(float);
}

size_t act_row_bytes(TensorType t, int64_t n) { return act_format_row_bytes(act_format_for(t), n); }

void prepare_activation_as(ActFormat f, const float* x, int64_t n, void* out) {
  switch (f) {
    case ActFormat::q8_0: quantize_row_q8_0(x, static_cast<BlockQ8_0*>(out), n); return;
    case ActFormat::q8_k: quantize_row_q8_k(x, static_cast<BlockQ8_K*>(out), n); return;
    case ActFormat::q8_0_sum: quantize_row_q8_0_sum(x, static_cast<BlockQ8_0Sum*>(out), n); return;
    case ActFormat::f32: std::memcpy(out, x, static_cast<size_t>(n) * sizeof(float)); return;
  }
}

void prepare_activation(TensorType t, const float* x, int64_t n, void* out) { prepare_activation_as(act_format_for(t), x, n, out); }

VecDotFn vec_dot_scalar(TensorType t) {
  switch (t) {
    case TensorType::f32: return dot_f32_scalar;
    case TensorType::f16: return dot_f16_scalar;
    case TensorType::bf16: return dot_bf16_scalar;
    case TensorType::q8_0: return dot_q8_0_scalar;
    case TensorType::q4_k: return dot_q4_k_scalar;
    case TensorType::q5_k: return dot_q5_k_scalar;
    case TensorType::q6_k: return dot_q6_k_scalar;
    default: return legacy_dot_scalar(t);
  }
}

VecDotFn vec_dot_avx2(TensorType t) {
  if (!cpu_has_avx2()) return nullptr;
  switch (t) {
    case TensorType::f32: return dot_f32_avx2;
    case TensorType::f16: return dot_f16_avx2;
    case TensorType::bf16: return dot_bf16_avx2;
    case TensorType::q8_0: return dot_q8_0_avx2;
    case TensorType::q4_k: return dot_q4_k_avx2;
    case TensorType::q5_k: return dot_q5_k_avx2;
    case TensorType::q6_k: return dot_q6_k_avx2;
    default: return legacy_dot_avx2(t);
  }
}

VecDot4Fn vec_dot4_fn(TensorType t) {
  if (g_force_scalar.load() || !cpu_has_avx2()) return nullptr;
  switch (t) {
    case TensorType::q8_0: return dot4_q8_0_avx2;
    case TensorType::q4_k: return dot4_q4_k_avx2;
    case TensorType::q5_k: return dot4_q5_k_avx2;
    case TensorType::q6_k: return dot4_q6_k_avx2;
    default: return legacy_dot4_avx2(t);
  }
}

VecDot8Fn vec_dot8_avx512(TensorType t) {
  if (!cpu_has_avx512_vnni()) return nullptr;
  switch (t) {
    case TensorType::q8_0: return dot8_q8_0_avx512;
    case TensorType::q4_k: return dot8_q4_k_avx512;
    case TensorType::q5_k: return dot8_q5_k_avx512;
    case TensorType::q6_k: return dot8_q6_k_avx512;
    default: return float_dot8_avx512(t);
  }
}

VecDotFn vec_dot_avx512(TensorType t) {
  if (!cpu_has_avx512_vnni()) return nullptr;
  switch (t) {
    case TensorType::q4_k: return dot_q4_k_avx512;
    case TensorType::q6_k: return dot_q6_k_avx512;
    default: return float_dot_avx512(t);
  }
}

VecDot8Fn vec_dot8_fn(TensorType t) {
  if (g_force_scalar.load() || g_no_avx512.load()) return nullptr;
  return vec_dot8_avx512(t);
}

VecDotFn vec_dot_fn(TensorType t) {
  if (!g_force_scalar.load()) {
    if (!g_no_avx512.load()) {
      if (VecDotFn f = vec_dot_avx512(t)) return f;
    }
    if (VecDotFn f = vec_dot_avx2(t)) return f;
  }
  return vec_dot_scalar(t);
}

}  // namespace local_backend
