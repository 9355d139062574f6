// Repacked (16-row interleaved) AVX-512 VNNI kernels for Q4_K, Q5_K and Q6_K weights against the
// Q8_K activation (interface and numerics: quants_repack.h).
//
// Quants of a group are stored per super-block (256 columns) as 512-bit vectors whose 32-bit lane k
// belongs to row k. A "nibble vector" covers eight consecutive quants c..c+7 of each row: byte b of
// lane k holds quant c+b in its low nibble and c+4+b in its high nibble, so masking gives the u8
// operand for the activation dword c..c+3 and shifting for c+4..c+7. The 6-bit scales and mins are
// unpacked at pack time into bytes per row, widened in the kernel once per super-block and shared by
// all tokens of the call. fp16 super-block scales stay fp16 (widened with vcvtph2ps, which is exact).
//
// Bytes per super-block of 16 rows (file: 16 x block size):
//   Q4_K 2368 vs 2304 (+2.8%), Q5_K 2880 vs 2816 (+2.3%), Q6_K 3392 vs 3360 (+1.0%, the fp16 scales'
//   padding to 64 bytes).
//
// This file is compiled with -ffp-contract=off: the float steps must round like the scalar kernel's
// separate multiplies and adds.
#include "local_backend/quants_repack.h"

#include <immintrin.h>

#include <cstring>

#include "local_backend/quants_repack_detail.h"
#include "local_backend/tensor_types.h"

namespace local_backend {
namespace {

#define LB_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")))

// ------------------------------------------------------------------ packing (plain C++)

// Per super-block offsets (bytes) of the Q4_K/Q5_K group layout.
struct KMinsLayout {
  static constexpr size_t kD = 0;          // 16 fp16 d, then 16 fp16 dmin
  static constexpr size_t kScales = 64;    // [sub-block 8][row 16] u8
  static constexpr size_t kMins = 192;     // [sub-block pair 4][row 16][2] u8: (m[2p], m[2p+1])
  static constexpr size_t kQs = 320;       // [nibble vector 32][row 16][4]
  static constexpr size_t kQh = 2368;      // Q5_K only: [sub-block 8][row 16][4] fifth bits
};
constexpr size_t kQ4kBytes = 2368;
constexpr size_t kQ5kBytes = 2880;

// Per super-block offsets of the Q6_K group layout.
struct Q6kLayout {
  static constexpr size_t kD = 0;          // 16 fp16 d, 32 bytes padding
  static constexpr size_t kScales = 64;    // [group pair 8][row 16][2] int8: (sc[2p], sc[2p+1])
  static constexpr size_t kLo = 320;       // [nibble vector 32][row 16][4]: low 4 bits
  static constexpr size_t kHi = 2368;      // [16-quant group 16][row 16][4]: high 2 bits
};
constexpr size_t kQ6kBytes = 3392;

// Writes the 256 quants q (low 4 bits used) of row k as 32 nibble vectors.
void put_nibbles(const uint8_t q[kQK_K], int k, uint8_t* dst) {
  for (int u = 0; u < 32; ++u)
    for (int b = 0; b < 4; ++b)
      dst[(u * kPackRows + k) * 4 + b] = static_cast<uint8_t>((q[8 * u + b] & 0xF) | (q[8 * u + 4 + b] & 0xF) << 4);
}

void put_fp16(uint16_t h, uint8_t* dst) { std::memcpy(dst, &h, 2); }

// The 4-bit quants of a Q4_K/Q5_K block in element order.
void k_low_nibbles(const uint8_t* qs, uint8_t q[kQK_K]) {
  for (int e = 0; e < kQK_K; ++e) {
    const int j = e / 32;
    const uint8_t byte = qs[32 * (j / 2) + e % 32];
    q[e] = (j & 1) ? byte >> 4 : byte & 0xF;
  }
}

// Scales, mins and super-block scales of one Q4_K/Q5_K block as row k of a super-block group.
void put_k_scales(const uint8_t* scales, uint16_t d, uint16_t dmin, int k, uint8_t* g) {
  put_fp16(d, g + KMinsLayout::kD + 2 * k);
  put_fp16(dmin, g + KMinsLayout::kD + 32 + 2 * k);
  for (int j = 0; j < 8; ++j) {
    uint8_t sc, m;
    q4k_scale_min(j, scales, &sc, &m);
    g[KMinsLayout::kScales + kPackRows * j + k] = sc;
    g[KMinsLayout::kMins + 32 * (j / 2) + 2 * k + (j & 1)] = m;
  }
}

// Packs the rows of one group, one block writer call per (row, super-block); padding rows keep
// the zeroed bytes: zero scales and quants, so their outputs are 0.
template <typename Block, size_t kBytes, void (*PutBlock)(const Block&, int, uint8_t*)>
void pack_rows(const uint8_t* const rows[kPackRows], int64_t cols, uint8_t* dst) {
  const int64_t nb = cols / kQK_K;
  std::memset(dst, 0, static_cast<size_t>(nb) * kBytes);
  for (int k = 0; k < kPackRows; ++k) {
    if (!rows[k]) continue;
    const Block* x = reinterpret_cast<const Block*>(rows[k]);
    for (int64_t i = 0; i < nb; ++i) PutBlock(x[i], k, dst + i * kBytes);
  }
}

void put_q4_k(const BlockQ4_K& x, int k, uint8_t* g) {
  put_k_scales(x.scales, x.d, x.dmin, k, g);
  uint8_t q[kQK_K];
  k_low_nibbles(x.qs, q);
  put_nibbles(q, k, g + KMinsLayout::kQs);
}

// Q5_K's fifth bits of sub-block j, row k: byte b of the lane holds at bit 2v the bit of quant
// 32j+8v+b and at bit 2v+1 that of 32j+8v+4+b (v = 0..3: the sub-block's nibble vectors).
void put_q5_k_high(const uint8_t* qh, int k, uint8_t* dst) {
  for (int j = 0; j < 8; ++j)
    for (int b = 0; b < 4; ++b) {
      uint8_t byte = 0;
      for (int v = 0; v < 4; ++v) {
        byte |= static_cast<uint8_t>(((qh[8 * v + b] >> j) & 1) << (2 * v));
        byte |= static_cast<uint8_t>(((qh[8 * v + 4 + b] >> j) & 1) << (2 * v + 1));
      }
      dst[(j * kPackRows + k) * 4 + b] = byte;
    }
}

void put_q5_k(const BlockQ5_K& x, int k, uint8_t* g) {
  put_k_scales(x.scales, x.d, x.dmin, k, g);
  uint8_t q[kQK_K];
  k_low_nibbles(x.qs, q);
  put_nibbles(q, k, g + KMinsLayout::kQs);
  put_q5_k_high(x.qh, k, g + KMinsLayout::kQh);
}

// The unsigned (0..63) quants of a Q6_K block in element order.
void q6_k_quants(const BlockQ6_K& x, uint8_t q[kQK_K]) {
  for (int c = 0; c < 2; ++c)
    for (int l = 0; l < 32; ++l) {
      const uint8_t* ql = x.ql + 64 * c;
      const uint8_t h = x.qh[32 * c + l];
      q[128 * c + l + 0] = static_cast<uint8_t>((ql[l] & 0xF) | ((h >> 0) & 3) << 4);
      q[128 * c + l + 32] = static_cast<uint8_t>((ql[l + 32] & 0xF) | ((h >> 2) & 3) << 4);
      q[128 * c + l + 64] = static_cast<uint8_t>((ql[l] >> 4) | ((h >> 4) & 3) << 4);
      q[128 * c + l + 96] = static_cast<uint8_t>((ql[l + 32] >> 4) | ((h >> 6) & 3) << 4);
    }
}

// High two bits of 16-quant group n, row k: byte b of the lane holds, in bit pairs 0..3, those of
// quants 16n+b, 16n+4+b, 16n+8+b, 16n+12+b (the group's two nibble vectors, low then high nibbles).
void put_q6_k_high(const uint8_t q[kQK_K], int k, uint8_t* dst) {
  for (int n = 0; n < 16; ++n)
    for (int b = 0; b < 4; ++b) {
      uint8_t byte = 0;
      for (int p = 0; p < 4; ++p) byte |= static_cast<uint8_t>((q[16 * n + 4 * p + b] >> 4) << (2 * p));
      dst[(n * kPackRows + k) * 4 + b] = byte;
    }
}

void put_q6_k(const BlockQ6_K& x, int k, uint8_t* g) {
  put_fp16(x.d, g + Q6kLayout::kD + 2 * k);
  for (int n = 0; n < 16; ++n) g[Q6kLayout::kScales + 32 * (n / 2) + 2 * k + (n & 1)] = static_cast<uint8_t>(x.scales[n]);
  uint8_t q[kQK_K];
  q6_k_quants(x, q);
  put_nibbles(q, k, g + Q6kLayout::kLo);
  put_q6_k_high(q, k, g + Q6kLayout::kHi);
}

constexpr PackGroupFn pack_q4_k = pack_rows<BlockQ4_K, kQ4kBytes, put_q4_k>;
constexpr PackGroupFn pack_q5_k = pack_rows<BlockQ5_K, kQ5kBytes, put_q5_k>;
constexpr PackGroupFn pack_q6_k = pack_rows<BlockQ6_K, kQ6kBytes, put_q6_k>;

size_t q4_k_group_bytes(int64_t cols) { return static_cast<size_t>(cols / kQK_K) * kQ4kBytes; }
size_t q5_k_group_bytes(int64_t cols) { return static_cast<size_t>(cols / kQK_K) * kQ5kBytes; }
size_t q6_k_group_bytes(int64_t cols) { return static_cast<size_t>(cols / kQK_K) * kQ6kBytes; }

// ------------------------------------------------------------------ kernels

LB_AVX512 inline __m512i load512(const uint8_t* p) { return _mm512_load_si512(p); }

LB_AVX512 inline __m512i bcast(const int8_t* q8, int dword) {
  int32_t v;
  std::memcpy(&v, q8 + 4 * dword, 4);
  return _mm512_set1_epi32(v);
}

// The u8 operands of sub-block j (32 quants = 8 activation dwords) of a Q4_K super-block group.
struct Q4kWeights {
  LB_AVX512 static void get(const uint8_t* g, int j, __m512i w[8]) {
    const __m512i m4 = _mm512_set1_epi8(0xF);
    for (int v = 0; v < 4; ++v) {
      const __m512i p = load512(g + KMinsLayout::kQs + 256 * j + 64 * v);
      w[2 * v] = _mm512_and_si512(p, m4);
      w[2 * v + 1] = _mm512_and_si512(_mm512_srli_epi16(p, 4), m4);
    }
  }
};

// Q5_K: Q4_K's nibbles with the fifth bit moved to bit 4 (shifts stay inside each byte's masked bit).
struct Q5kWeights {
  template <int Shift>
  LB_AVX512 static __m512i bit4(__m512i h) {
    __m512i s;
    if constexpr (Shift >= 0) s = _mm512_slli_epi32(h, Shift);
    else s = _mm512_srli_epi32(h, -Shift);
    return _mm512_and_si512(s, _mm512_set1_epi8(0x10));
  }
  LB_AVX512 static void get(const uint8_t* g, int j, __m512i w[8]) {
    Q4kWeights::get(g, j, w);
    const __m512i h = load512(g + KMinsLayout::kQh + 64 * j);
    w[0] = _mm512_or_si512(w[0], bit4<4>(h));
    w[1] = _mm512_or_si512(w[1], bit4<3>(h));
    w[2] = _mm512_or_si512(w[2], bit4<2>(h));
    w[3] = _mm512_or_si512(w[3], bit4<1>(h));
    w[4] = _mm512_or_si512(w[4], bit4<0>(h));
    w[5] = _mm512_or_si512(w[5], bit4<-1>(h));
    w[6] = _mm512_or_si512(w[6], bit4<-2>(h));
    w[7] = _mm512_or_si512(w[7], bit4<-3>(h));
  }
};

// (bsums[4p] + bsums[4p+1], bsums[4p+2] + bsums[4p+3]) as an int16 pair, broadcast: the activation
// sums of sub-blocks 2p and 2p+1 for the mins' vpdpwssd. |sum| <= 2 * 16 * 127 fits int16.
LB_AVX512 inline void sub_block_sums(const BlockQ8_K& y, __m512i out[4]) {
  const __m256i pairs = _mm256_madd_epi16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(y.bsums)),
                                          _mm256_set1_epi16(1));
  const __m512i packed = _mm512_castsi256_si512(_mm256_packs_epi32(pairs, pairs));  // dwords 0, 1, 4, 5
  constexpr int kDword[4] = {0, 1, 4, 5};
  for (int p = 0; p < 4; ++p) out[p] = _mm512_permutexvar_epi32(_mm512_set1_epi32(kDword[p]), packed);
}

// Q4_K/Q5_K, R tokens. Per super-block and lane: sumi = sum_j sc[j] * (sub-block j's quant dot),
// summ = sum_j m[j] * (sub-block j's activation sum), then the scalar kernel's
// s += y.d * (d * sumi - dmin * summ).
template <int R, typename Weights, size_t kBytes>
LB_AVX512 void gemm_k_mins(int64_t cols, const uint8_t* group, const void* const act[], float (*out)[kPackRows]) {
  const BlockQ8_K* y[R];
  for (int r = 0; r < R; ++r) y[r] = static_cast<const BlockQ8_K*>(act[r]);
  __m512 s[R];
  for (int r = 0; r < R; ++r) s[r] = _mm512_setzero_ps();
  const int64_t nb = cols / kQK_K;
  for (int64_t i = 0; i < nb; ++i) {
    const uint8_t* g = group + i * kBytes;
    if constexpr (R <= 2) repack_detail::prefetch_ahead<kBytes, 2>(g);
    __m512i sumi[R];
    for (int r = 0; r < R; ++r) sumi[r] = _mm512_setzero_si512();
    for (int j = 0; j < 8; ++j) {
      const __m512i sc = _mm512_cvtepu8_epi32(_mm_load_si128(reinterpret_cast<const __m128i*>(g + KMinsLayout::kScales + 16 * j)));
      __m512i w[8];
      Weights::get(g, j, w);
      for (int r = 0; r < R; ++r) {
        const int8_t* q8 = y[r][i].qs + 32 * j;
        __m512i t = _mm512_setzero_si512();
        for (int u = 0; u < 8; ++u) t = _mm512_dpbusd_epi32(t, w[u], bcast(q8, u));
        sumi[r] = _mm512_add_epi32(sumi[r], _mm512_mullo_epi32(t, sc));
      }
    }
    __m512i mins[4];
    for (int p = 0; p < 4; ++p)
      mins[p] = _mm512_cvtepu8_epi16(_mm256_load_si256(reinterpret_cast<const __m256i*>(g + KMinsLayout::kMins + 32 * p)));
    const __m512 d = _mm512_cvtph_ps(_mm256_load_si256(reinterpret_cast<const __m256i*>(g + KMinsLayout::kD)));
    const __m512 dmin = _mm512_cvtph_ps(_mm256_load_si256(reinterpret_cast<const __m256i*>(g + KMinsLayout::kD + 32)));
    for (int r = 0; r < R; ++r) {
      __m512i bs[4];
      sub_block_sums(y[r][i], bs);
      __m512i summ = _mm512_setzero_si512();
      for (int p = 0; p < 4; ++p) summ = _mm512_dpwssd_epi32(summ, mins[p], bs[p]);
      const __m512 dm = _mm512_sub_ps(_mm512_mul_ps(d, _mm512_cvtepi32_ps(sumi[r])),
                                      _mm512_mul_ps(dmin, _mm512_cvtepi32_ps(summ)));
      s[r] = _mm512_add_ps(s[r], _mm512_mul_ps(_mm512_set1_ps(y[r][i].d), dm));
    }
  }
  for (int r = 0; r < R; ++r) _mm512_storeu_ps(out[r], s[r]);
}

// The u8 operands (0..63) of 16-quant group n of a Q6_K super-block group (4 activation dwords).
LB_AVX512 inline void q6_k_weights(const uint8_t* g, int n, __m512i w[4]) {
  const __m512i m4 = _mm512_set1_epi8(0xF), m2 = _mm512_set1_epi8(0x30);
  const __m512i l0 = load512(g + Q6kLayout::kLo + 128 * n);
  const __m512i l1 = load512(g + Q6kLayout::kLo + 128 * n + 64);
  const __m512i h = load512(g + Q6kLayout::kHi + 64 * n);
  w[0] = _mm512_or_si512(_mm512_and_si512(l0, m4), _mm512_and_si512(_mm512_slli_epi32(h, 4), m2));
  w[1] = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi32(l0, 4), m4), _mm512_and_si512(_mm512_slli_epi32(h, 2), m2));
  w[2] = _mm512_or_si512(_mm512_and_si512(l1, m4), _mm512_and_si512(h, m2));
  w[3] = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi32(l1, 4), m4), _mm512_and_si512(_mm512_srli_epi32(h, 2), m2));
}

// Q6_K, R tokens. Per super-block and lane: sumi = sum_n sc[n] * (group n's dot of the unsigned
// quants) - 32 * sum_n sc[n] * bsums[n], the second term by vpdpwssd with -32 * sc (fits int16)
// against the activation's bsums pairs; then the scalar kernel's s += y.d * d * sumi.
template <int R>
LB_AVX512 void gemm_q6_k(int64_t cols, const uint8_t* group, const void* const act[], float (*out)[kPackRows]) {
  const BlockQ8_K* y[R];
  for (int r = 0; r < R; ++r) y[r] = static_cast<const BlockQ8_K*>(act[r]);
  __m512 s[R];
  for (int r = 0; r < R; ++r) s[r] = _mm512_setzero_ps();
  const int64_t nb = cols / kQK_K;
  for (int64_t i = 0; i < nb; ++i) {
    const uint8_t* g = group + i * kQ6kBytes;
    if constexpr (R <= 2) repack_detail::prefetch_ahead<kQ6kBytes, 2>(g);
    __m512i sumi[R];
    for (int r = 0; r < R; ++r) sumi[r] = _mm512_setzero_si512();
    for (int p = 0; p < 8; ++p) {
      const __m512i sp = _mm512_cvtepi8_epi16(_mm256_load_si256(reinterpret_cast<const __m256i*>(g + Q6kLayout::kScales + 32 * p)));
      const __m512i neg32 = _mm512_sub_epi16(_mm512_setzero_si512(), _mm512_slli_epi16(sp, 5));
      for (int r = 0; r < R; ++r) {
        int32_t bs;
        std::memcpy(&bs, y[r][i].bsums + 2 * p, 4);
        sumi[r] = _mm512_dpwssd_epi32(sumi[r], neg32, _mm512_set1_epi32(bs));
      }
      const __m512i sc[2] = {_mm512_srai_epi32(_mm512_slli_epi32(sp, 16), 16), _mm512_srai_epi32(sp, 16)};
      for (int h = 0; h < 2; ++h) {
        const int n = 2 * p + h;
        __m512i w[4];
        q6_k_weights(g, n, w);
        for (int r = 0; r < R; ++r) {
          const int8_t* q8 = y[r][i].qs + 16 * n;
          __m512i t = _mm512_setzero_si512();
          for (int u = 0; u < 4; ++u) t = _mm512_dpbusd_epi32(t, w[u], bcast(q8, u));
          sumi[r] = _mm512_add_epi32(sumi[r], _mm512_mullo_epi32(t, sc[h]));
        }
      }
    }
    const __m512 d = _mm512_cvtph_ps(_mm256_load_si256(reinterpret_cast<const __m256i*>(g + Q6kLayout::kD)));
    for (int r = 0; r < R; ++r)
      s[r] = _mm512_add_ps(s[r], _mm512_mul_ps(_mm512_mul_ps(_mm512_set1_ps(y[r][i].d), d), _mm512_cvtepi32_ps(sumi[r])));
  }
  for (int r = 0; r < R; ++r) _mm512_storeu_ps(out[r], s[r]);
}

template <int R>
struct Q4kGemm {
  static void run(int64_t c, const uint8_t* g, const void* const a[], float (*o)[kPackRows]) {
    gemm_k_mins<R, Q4kWeights, kQ4kBytes>(c, g, a, o);
  }
};
template <int R>
struct Q5kGemm {
  static void run(int64_t c, const uint8_t* g, const void* const a[], float (*o)[kPackRows]) {
    gemm_k_mins<R, Q5kWeights, kQ5kBytes>(c, g, a, o);
  }
};
template <int R>
struct Q6kGemm {
  static void run(int64_t c, const uint8_t* g, const void* const a[], float (*o)[kPackRows]) { gemm_q6_k<R>(c, g, a, o); }
};

template <template <int> class K>
void gemm_group(int64_t cols, const uint8_t* group, int n_tok, const void* const act[], float (*out)[kPackRows]) {
  repack_detail::by_tokens<K>(n_tok, cols, group, act, out);
}

}  // namespace

PackKernels pack_kernels_q4_k() { return {q4_k_group_bytes, pack_q4_k, gemm_group<Q4kGemm>, ActFormat::q8_k}; }
PackKernels pack_kernels_q5_k() { return {q5_k_group_bytes, pack_q5_k, gemm_group<Q5kGemm>, ActFormat::q8_k}; }
PackKernels pack_kernels_q6_k() { return {q6_k_group_bytes, pack_q6_k, gemm_group<Q6kGemm>, ActFormat::q8_k}; }

}  // namespace local_backend
