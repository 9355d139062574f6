#include "local_backend/quants_legacy.h"

#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "local_backend/quants_simd.h"

namespace local_backend {
namespace {

using namespace simd;

// The four types differ only in whether they carry qh (a fifth bit) and m (a min); the code is
// written once over these two properties.
template <typename B>
constexpr bool kFive = requires(B b) { b.qh; };
template <typename B>
constexpr bool kHasMin = requires(B b) { b.m; };
// Largest quant, and the offset the _0 types subtract (their quants are stored unsigned).
template <typename B>
constexpr int kMaxQ = kFive<B> ? 31 : 15;
template <typename B>
constexpr int kOffset = kHasMin<B> ? 0 : kMaxQ<B> / 2 + 1;

inline uint32_t le32(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

// The 32 quants of a block with the offset removed (_0 types: -8..7 or -16..15; _1: 0..31).
template <typename B>
inline void unpack_quants(const B& b, int q[kQK4]) {
  uint32_t qh = 0;
  if constexpr (kFive<B>) qh = le32(b.qh);
  for (int j = 0; j < 16; ++j) {
    q[j] = ((b.qs[j] & 0xF) | static_cast<int>((qh >> j) & 1) << 4) - kOffset<B>;
    q[j + 16] = ((b.qs[j] >> 4) | static_cast<int>((qh >> (j + 16)) & 1) << 4) - kOffset<B>;
  }
}

template <typename B>
inline float min_of(const B& b) {
  if constexpr (kHasMin<B>) return fp16_to_fp32(b.m);
  return 0.0f;
}

template <typename B>
void dequant(const B* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n / kQK4; ++i) {
    const float d = fp16_to_fp32(x[i].d), m = min_of(x[i]);
    int q[kQK4];
    unpack_quants(x[i], q);
    for (int j = 0; j < kQK4; ++j) *y++ = d * static_cast<float>(q[j]) + m;
  }
}

// Round to nearest, as ggml's reference quantisers: _0 types scale by the value of largest
// magnitude (d = max / -(offset), so max maps to quant 0); _1 types span [min, max].
template <typename B>
void quantize(const float* x, B* y, int64_t n) {
  for (int64_t i = 0; i < n / kQK4; ++i) {
    const float* xb = x + i * kQK4;
    float lo = 0, d = 0;
    if constexpr (kHasMin<B>) {
      float mn = xb[0], mx = xb[0];
      for (int j = 1; j < kQK4; ++j) {
        mn = std::min(mn, xb[j]);
        mx = std::max(mx, xb[j]);
      }
      d = (mx - mn) / kMaxQ<B>;
      lo = mn;
      y[i].m = fp32_to_fp16(mn);
    } else {
      float amax = 0, max = 0;
      for (int j = 0; j < kQK4; ++j)
        if (std::fabs(xb[j]) > amax) {
          amax = std::fabs(xb[j]);
          max = xb[j];
        }
      d = max / -static_cast<float>(kOffset<B>);
    }
    const float id = d != 0 ? 1.0f / d : 0.0f;
    y[i].d = fp32_to_fp16(d);
    std::memset(y[i].qs, 0, sizeof y[i].qs);
    uint32_t qh = 0;
    for (int j = 0; j < kQK4; ++j) {
      // (x - lo) * id + offset lies in [0, kMaxQ + 1]: truncating after + 0.5 rounds.
      const int q = std::min(kMaxQ<B>, static_cast<int>((xb[j] - lo) * id + static_cast<float>(kOffset<B>) + 0.5f));
      y[i].qs[j % 16] = static_cast<uint8_t>(y[i].qs[j % 16] | (q & 0xF) << (j < 16 ? 0 : 4));
      qh |= static_cast<uint32_t>(q >> 4) << j;
    }
    if constexpr (kFive<B>) std::memcpy(y[i].qh, &qh, 4);
  }
}

// Per block: d_x * d_y * sum((q - offset) * y) + m * d_y * sum(y), the integer sums exact.
template <typename B>
float dot_scalar(int64_t n, const void* w, const void* a) {
  const B* x = static_cast<const B*>(w);
  const BlockQ8_0* y = static_cast<const BlockQ8_0*>(a);
  float s = 0;
  for (int64_t i = 0; i < n / kQK4; ++i) {
    int q[kQK4];
    unpack_quants(x[i], q);
    int sumi = 0, sumy = 0;
    for (int j = 0; j < kQK4; ++j) {
      sumi += q[j] * y[i].qs[j];
      sumy += y[i].qs[j];
    }
    const float dy = fp16_to_fp32(y[i].d);
    s += fp16_to_fp32(x[i].d) * dy * static_cast<float>(sumi);
    if constexpr (kHasMin<B>) s += min_of(x[i]) * dy * static_cast<float>(sumy);
  }
  return s;
}

// ------------------------------------------------------------------ AVX2

// The 32 unsigned quants of a block, quant j in byte j.
template <typename B>
LB_AVX2 inline __m256i quants256(const B& b) {
  const __m128i q = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b.qs));
  const __m128i m4 = _mm_set1_epi8(0xF);
  __m256i v = _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(q, 4), m4), _mm_and_si128(q, m4));
  if constexpr (kFive<B>) {
    // Byte j gets qh byte j / 8 (in-lane shuffle of the broadcast word: the upper lane takes
    // bytes 2 and 3), then keeps bit j % 8, widened to 0x10 where it is set.
    const __m256i spread = _mm256_shuffle_epi8(
        _mm256_set1_epi32(static_cast<int>(le32(b.qh))),
        _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3));
    const __m256i bit = _mm256_set1_epi64x(static_cast<long long>(0x8040201008040201ull));
    const __m256i set = _mm256_cmpeq_epi8(_mm256_and_si256(spread, bit), bit);
    v = _mm256_or_si256(v, _mm256_and_si256(set, _mm256_set1_epi8(0x10)));
  }
  return v;
}

// R activation rows per weight-row load (1: decode, 4: prefill). The _0 types use Q8_0's sign
// trick on q - offset (one maddubs); the _1 types multiply the unsigned quants and sum y with a
// second maddubs against ones. Same integer sums as dot_scalar; float order per block the same
// for every R, so the four-row form is bit-identical to four single-row calls.
template <int R, typename B>
LB_AVX2 void dotn_avx2(int64_t n, const void* w, const void* const a[], float out[]) {
  const B* x = static_cast<const B*>(w);
  const BlockQ8_0* y[R];
  for (int r = 0; r < R; ++r) y[r] = static_cast<const BlockQ8_0*>(a[r]);
  const __m256i ones16 = _mm256_set1_epi16(1), ones8 = _mm256_set1_epi8(1);
  __m256 acc[R], acc_m[R];
  for (int r = 0; r < R; ++r) acc[r] = acc_m[r] = _mm256_setzero_ps();
  const int64_t nb = n / kQK4;
  for (int64_t i = 0; i < nb; ++i) {
    if constexpr (R == 1) prefetch_block<32>(x + i);
    __m256i q = quants256(x[i]);
    if constexpr (!kHasMin<B>) q = _mm256_sub_epi8(q, _mm256_set1_epi8(static_cast<char>(kOffset<B>)));
    const __m256i aq = kHasMin<B> ? q : _mm256_sign_epi8(q, q);
    const float dx = h2f(x[i].d);
    for (int r = 0; r < R; ++r) {
      const __m256i qy = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(y[r][i].qs));
      const float dy = h2f(y[r][i].d);
      const __m256i sy = kHasMin<B> ? qy : _mm256_sign_epi8(qy, q);
      const __m256i p = _mm256_madd_epi16(_mm256_maddubs_epi16(aq, sy), ones16);
      acc[r] = _mm256_fmadd_ps(_mm256_set1_ps(dx * dy), _mm256_cvtepi32_ps(p), acc[r]);
      if constexpr (kHasMin<B>) {
        const __m256i ysum = _mm256_madd_epi16(_mm256_maddubs_epi16(ones8, qy), ones16);
        acc_m[r] = _mm256_fmadd_ps(_mm256_set1_ps(h2f(x[i].m) * dy), _mm256_cvtepi32_ps(ysum), acc_m[r]);
      }
    }
  }
  for (int r = 0; r < R; ++r) out[r] = hsum_ps(acc[r]) + hsum_ps(acc_m[r]);
}

template <typename B>
LB_AVX2 float dot1_avx2(int64_t n, const void* w, const void* a) {
  const void* a1[1] = {a};
  float out;
  dotn_avx2<1, B>(n, w, a1, &out);
  return out;
}

}  // namespace

bool legacy_dequantize_row(TensorType t, const void* x, float* y, int64_t n) {
  switch (t) {
    case TensorType::q4_0: dequant(static_cast<const BlockQ4_0*>(x), y, n); return true;
    case TensorType::q4_1: dequant(static_cast<const BlockQ4_1*>(x), y, n); return true;
    case TensorType::q5_0: dequant(static_cast<const BlockQ5_0*>(x), y, n); return true;
    case TensorType::q5_1: dequant(static_cast<const BlockQ5_1*>(x), y, n); return true;
    default: return false;
  }
}

bool legacy_quantize_row(TensorType t, const float* x, void* y, int64_t n) {
  switch (t) {
    case TensorType::q4_0: quantize(x, static_cast<BlockQ4_0*>(y), n); return true;
    case TensorType::q4_1: quantize(x, static_cast<BlockQ4_1*>(y), n); return true;
    case TensorType::q5_0: quantize(x, static_cast<BlockQ5_0*>(y), n); return true;
    case TensorType::q5_1: quantize(x, static_cast<BlockQ5_1*>(y), n); return true;
    default: return false;
  }
}

VecDotFn legacy_dot_scalar(TensorType t) {
  switch (t) {
    case TensorType::q4_0: return dot_scalar<BlockQ4_0>;
    case TensorType::q4_1: return dot_scalar<BlockQ4_1>;
    case TensorType::q5_0: return dot_scalar<BlockQ5_0>;
    case TensorType::q5_1: return dot_scalar<BlockQ5_1>;
    default: return nullptr;
  }
}

VecDotFn legacy_dot_avx2(TensorType t) {
  if (!cpu_has_avx2()) return nullptr;
  switch (t) {
    case TensorType::q4_0: return dot1_avx2<BlockQ4_0>;
    case TensorType::q4_1: return dot1_avx2<BlockQ4_1>;
    case TensorType::q5_0: return dot1_avx2<BlockQ5_0>;
    case TensorType::q5_1: return dot1_avx2<BlockQ5_1>;
    default: return nullptr;
  }
}

VecDot4Fn legacy_dot4_avx2(TensorType t) {
  if (!cpu_has_avx2()) return nullptr;
  switch (t) {
    case TensorType::q4_0: return dotn_avx2<4, BlockQ4_0>;
    case TensorType::q4_1: return dotn_avx2<4, BlockQ4_1>;
    case TensorType::q5_0: return dotn_avx2<4, BlockQ5_0>;
    case TensorType::q5_1: return dotn_avx2<4, BlockQ5_1>;
    default: return nullptr;
  }
}

}  // namespace local_backend
