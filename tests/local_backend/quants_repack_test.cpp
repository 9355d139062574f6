// Repacked 16-row kernels: every output bit-identical to the scalar kernel, padding rows 0.
#include "local_backend/quants_repack.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>
#include <random>
#include <vector>

namespace local_backend {
namespace {

// A finite normal fp16 (random sign, exponent 1..30), so results never hold NaN.
uint16_t normal_fp16(std::mt19937& rng) {
  return static_cast<uint16_t>((rng() & 0x8000) | ((1 + rng() % 30) << 10) | (rng() & 0x3FF));
}

// Q8_0: random quants (including -128, which the file format allows) under random normal scales;
// every fourth row all -128 or all 127.
void raw_q8_0_rows(int64_t cols, int rows, std::mt19937& rng, std::vector<uint8_t>& w) {
  const size_t rb = row_size(TensorType::q8_0, cols);
  w.resize(rb * rows);
  for (auto& b : w) b = static_cast<uint8_t>(rng());
  for (int r = 0; r < rows; ++r)
    for (int64_t i = 0; i < cols / kQK8_0; ++i) {
      BlockQ8_0* blk = reinterpret_cast<BlockQ8_0*>(w.data() + r * rb) + i;
      if (r % 4 == 3) std::memset(blk->qs, (r / 4) % 2 ? 0x80 : 0x7F, sizeof blk->qs);
      blk->d = normal_fp16(rng);
    }
}

// Raw random blocks with valid fp16 scales; every fourth row an extreme (all bits set or clear).
void raw_rows(TensorType t, int64_t cols, int rows, std::mt19937& rng, std::vector<uint8_t>& w) {
  if (t == TensorType::q8_0) return raw_q8_0_rows(cols, rows, rng, w);
  const size_t rb = row_size(t, cols), bs = row_size(t, kQK_K);
  w.resize(rb * rows);
  for (auto& b : w) b = static_cast<uint8_t>(rng());
  for (int r = 0; r < rows; ++r)
    for (int64_t i = 0; i < cols / kQK_K; ++i) {
      uint8_t* blk = w.data() + r * rb + i * bs;
      if (r % 4 == 3) std::memset(blk, (r / 4) % 2 ? 0xFF : 0x00, bs);
      if (r % 8 == 7 && t != TensorType::q6_k) std::memset(blk + 4, 0xFF, kKScaleSize);  // all scale/min bits
      const size_t d_at = t == TensorType::q6_k ? bs - 2 : 0;
      for (int h = 0; h < (t == TensorType::q6_k ? 1 : 2); ++h) {
        const uint16_t f = normal_fp16(rng);
        std::memcpy(blk + d_at + 2 * h, &f, 2);
      }
    }
}

void quantised_rows(TensorType t, int64_t cols, int rows, std::mt19937& rng, std::vector<uint8_t>& w) {
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  std::vector<float> x(cols);
  w.resize(row_size(t, cols) * rows);
  for (int r = 0; r < rows; ++r) {
    for (auto& v : x) v = u(rng) * (1 + r % 3);
    ASSERT_TRUE(quantize_row(t, x.data(), w.data() + r * row_size(t, cols), cols));
  }
}

void check(TensorType t, const PackKernels& pk, int64_t cols, int rows, const std::vector<uint8_t>& w,
           std::mt19937& rng) {
  // The kernel's activation (pk.act) and the scalar kernel's (Q8_0 for a Q8_0_sum) of the same floats.
  const size_t rb = row_size(t, cols), ab = act_format_row_bytes(pk.act, cols), rab = act_row_bytes(t, cols);
  std::vector<uint8_t> act(ab * kPackMaxTokens), ref_act(rab * kPackMaxTokens);
  std::uniform_real_distribution<float> u(-2.f, 2.f);
  std::vector<float> x(cols);
  const void* a[kPackMaxTokens];
  const void* ra[kPackMaxTokens];
  for (int k = 0; k < kPackMaxTokens; ++k) {
    for (auto& v : x) v = u(rng);
    prepare_activation_as(pk.act, x.data(), cols, act.data() + k * ab);
    prepare_activation(t, x.data(), cols, ref_act.data() + k * rab);
    a[k] = act.data() + k * ab;
    ra[k] = ref_act.data() + k * rab;
  }
  const size_t gb = pk.group_bytes(cols);
  ASSERT_EQ(gb % 64, 0u);
  uint8_t* group = static_cast<uint8_t*>(std::aligned_alloc(64, gb));
  const VecDotFn ref = vec_dot_scalar(t);
  for (int g0 = 0; g0 < rows; g0 += kPackRows) {
    const uint8_t* rp[kPackRows];
    for (int k = 0; k < kPackRows; ++k) rp[k] = g0 + k < rows ? w.data() + (g0 + k) * rb : nullptr;
    pk.pack(rp, cols, group);
    for (int n = 1; n <= kPackMaxTokens; ++n) {
      float out[kPackMaxTokens][kPackRows];
      pk.gemm(cols, group, n, a, out);
      for (int tk = 0; tk < n; ++tk)
        for (int k = 0; k < kPackRows; ++k) {
          if (!rp[k]) {
            EXPECT_EQ(out[tk][k], 0.0f);
            continue;
          }
          const float want = ref(cols, rp[k], ra[tk]);
          EXPECT_EQ(std::memcmp(&want, &out[tk][k], 4), 0)
              << "row " << g0 + k << " token " << tk << " of " << n << ": " << want << " vs " << out[tk][k];
        }
    }
  }
  std::free(group);
}

void run_type(TensorType t, const PackKernels& pk) {
  if (!cpu_has_avx512_vnni()) GTEST_SKIP() << "no AVX-512 VNNI";
  ASSERT_TRUE(pk);
  std::mt19937 rng(1234);
  for (int64_t cols : {256, 768, 2048})
    for (int rows : {16, 5, 33}) {
      std::vector<uint8_t> w;
      quantised_rows(t, cols, rows, rng, w);
      check(t, pk, cols, rows, w, rng);
      raw_rows(t, cols, rows, rng, w);
      check(t, pk, cols, rows, w, rng);
    }
}

TEST(QuantsRepack, Q8_0MatchesScalar) { run_type(TensorType::q8_0, pack_kernels_q8_0()); }
TEST(QuantsRepack, Q4_KMatchesScalar) { run_type(TensorType::q4_k, pack_kernels_q4_k()); }
TEST(QuantsRepack, Q5_KMatchesScalar) { run_type(TensorType::q5_k, pack_kernels_q5_k()); }
TEST(QuantsRepack, Q6_KMatchesScalar) { run_type(TensorType::q6_k, pack_kernels_q6_k()); }

}  // namespace
}  // namespace local_backend
