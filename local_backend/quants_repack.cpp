#include "local_backend/quants_repack.h"

#include <immintrin.h>

#include <algorithm>
#include <atomic>
#include <cstring>

#include "local_backend/quants_repack_detail.h"
#include "local_backend/tensor_types.h"

// Compiled with -ffp-contract=off (CMakeLists.txt): the float steps below must stay separate
// multiplies and adds, as in the scalar kernels, or results would differ from them in the last bit.

namespace local_backend {
namespace {

#define LB_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")))

std::atomic<bool> g_no_repack{false};

// ------------------------------------------------------------------ Q8_0
// A group of 16 rows holds, for each block i of 32 columns, 512 quant bytes and then (after all
// blocks) 16 fp16 scales per block:
//   quants: block i at 512 * i; bytes 64 * c .. 64 * c + 63 hold quants 4c..4c+3 of rows 0..15
//           (four per row, row k at 4k), each stored as q + 128 so that they are vpdpbusd's unsigned
//           operand; the activation's -128 x sum of its quants removes the bias exactly.
//   scales: 16 x fp16 per block at 512 * nb + 32 * i (row k's d at k).
// 544 bytes per block and 16 rows, the file's 16 x 34: no memory overhead (rounded up to 64 bytes).
constexpr size_t kQ8GroupQuantBytes = kPackRows * kQK8_0;

size_t q8_0_group_bytes(int64_t cols) {
  const size_t nb = static_cast<size_t>(cols / kQK8_0);
  return (nb * (kQ8GroupQuantBytes + kPackRows * sizeof(uint16_t)) + 63) & ~size_t{63};
}

void q8_0_pack(const uint8_t* const rows[kPackRows], int64_t cols, uint8_t* dst) {
  const int64_t nb = cols / kQK8_0;
  std::memset(dst, 0, q8_0_group_bytes(cols));
  uint16_t* scales = reinterpret_cast<uint16_t*>(dst + static_cast<size_t>(nb) * kQ8GroupQuantBytes);
  for (int k = 0; k < kPackRows; ++k) {
    const BlockQ8_0* x = reinterpret_cast<const BlockQ8_0*>(rows[k]);
    for (int64_t i = 0; i < nb; ++i) {
      uint8_t* q = dst + static_cast<size_t>(i) * kQ8GroupQuantBytes;
      scales[i * kPackRows + k] = x ? x[i].d : 0;
      for (int j = 0; j < kQK8_0; ++j) {
        const int8_t v = x ? x[i].qs[j] : 0;
        q[(j / 4) * 64 + 4 * k + j % 4] = static_cast<uint8_t>(v + 128);
      }
    }
  }
}

LB_AVX512 inline __m512i bcast4(const int8_t* p) {
  int32_t v;
  std::memcpy(&v, p, sizeof v);
  return _mm512_set1_epi32(v);
}

// R tokens: each block's eight weight vectors and scales are loaded once for all of them. The
// integer sum per row is exact; the float steps are dot_q8_0_scalar's: s += (sumi * dx) * dy.
template <int R>
LB_AVX512 void q8_0_gemm_r(int64_t nb, const uint8_t* group, const void* const act[], float (*out)[kPackRows]) {
  const BlockQ8_0Sum* y[R];
  __m512 acc[R];
  for (int r = 0; r < R; ++r) {
    y[r] = static_cast<const BlockQ8_0Sum*>(act[r]);
    acc[r] = _mm512_setzero_ps();
  }
  const uint16_t* scales = reinterpret_cast<const uint16_t*>(group + static_cast<size_t>(nb) * kQ8GroupQuantBytes);
  for (int64_t i = 0; i < nb; ++i) {
    const uint8_t* q = group + static_cast<size_t>(i) * kQ8GroupQuantBytes;
    if constexpr (R <= 2) {
      repack_detail::prefetch_ahead<kQ8GroupQuantBytes, 12>(q);  // 6 KiB ahead
      if (i % 2 == 0) repack_detail::prefetch_ahead<64, 12>(reinterpret_cast<const uint8_t*>(scales + i * kPackRows));
    }
    __m512i w[8];
    for (int c = 0; c < 8; ++c) w[c] = _mm512_load_si512(q + 64 * c);
    const __m512 dx = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(scales + i * kPackRows)));
    for (int r = 0; r < R; ++r) {
      const BlockQ8_0Sum& b = y[r][i];
      // Two chains halve the dependency on vpdpbusd's latency when few tokens run.
      __m512i s0 = _mm512_set1_epi32(b.neg128_sum), s1 = _mm512_setzero_si512();
      for (int c = 0; c < 8; c += 2) {
        s0 = _mm512_dpbusd_epi32(s0, w[c], bcast4(b.qs + 4 * c));
        s1 = _mm512_dpbusd_epi32(s1, w[c + 1], bcast4(b.qs + 4 * c + 4));
      }
      const __m512 sumi = _mm512_cvtepi32_ps(_mm512_add_epi32(s0, s1));
      acc[r] = _mm512_add_ps(acc[r], _mm512_mul_ps(_mm512_mul_ps(sumi, dx), _mm512_set1_ps(b.d)));
    }
  }
  for (int r = 0; r < R; ++r) _mm512_storeu_ps(out[r], acc[r]);
}

template <int R>
struct Q8_0Gemm {
  static void run(int64_t nb, const uint8_t* g, const void* const* act, float (*out)[kPackRows]) {
    q8_0_gemm_r<R>(nb, g, act, out);
  }
};

void q8_0_gemm(int64_t cols, const uint8_t* group, int n_tok, const void* const act[], float (*out)[kPackRows]) {
  repack_detail::by_tokens<Q8_0Gemm>(n_tok, cols / kQK8_0, group, act, out);
}

}  // namespace

void quantize_row_q8_0_sum(const float* x, BlockQ8_0Sum* y, int64_t n) {
  for (int64_t i = 0; i < n / kQK8_0; ++i) {
    BlockQ8_0 b;
    quantize_row_q8_0(x + i * kQK8_0, &b, kQK8_0);
    int32_t sum = 0;
    for (int j = 0; j < kQK8_0; ++j) sum += b.qs[j];
    y[i].d = fp16_to_fp32(b.d);
    y[i].neg128_sum = -128 * sum;
    std::memcpy(y[i].qs, b.qs, sizeof b.qs);
  }
}

PackKernels pack_kernels_q8_0() { return {q8_0_group_bytes, q8_0_pack, q8_0_gemm, ActFormat::q8_0_sum}; }

PackKernels pack_kernels_any(TensorType t) {
  if (!cpu_has_avx512_vnni()) return {};
  switch (t) {
    case TensorType::q8_0: return pack_kernels_q8_0();
    case TensorType::q4_k: return pack_kernels_q4_k();
    case TensorType::q5_k: return pack_kernels_q5_k();
    case TensorType::q6_k: return pack_kernels_q6_k();
    default: return {};
  }
}

PackKernels pack_kernels(TensorType t) {
  if (g_no_repack.load() || !avx512_kernels_enabled()) return {};
  return pack_kernels_any(t);
}

void disable_weight_repack(bool on) { g_no_repack.store(on); }

}  // namespace local_backend
