// KV cache element types: sizes, row conversion, the attention kernels that read each type, and
// the forward pass with F16/Q8_0 caches against the same pass with an F32 cache.
#include "local_backend/kv_cache.h"

#include <gtest/gtest.h>

#include "test_dir.h"

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "local_backend/model.h"
#include "local_backend/quants.h"
#include "local_backend/test_model.h"

namespace local_backend {
namespace {

HParams qwen3_30b_a3b_attention() {
  HParams hp;
  hp.n_layer = 48;
  hp.n_head = 32;
  hp.n_head_kv = 4;
  hp.head_dim = 128;
  return hp;
}

TEST(KvType, BytesPerTokenAtQwen3Shapes) {
  const HParams hp = qwen3_30b_a3b_attention();
  EXPECT_EQ(kv_bytes_per_token(hp, KvType::f32), 192u * 1024);  // 2 * 48 * 512 * 4
  EXPECT_EQ(kv_bytes_per_token(hp, KvType::f16), 96u * 1024);
  EXPECT_EQ(kv_bytes_per_token(hp, KvType::q8_0), 2u * 48 * 16 * 34);  // 16 blocks of 34 bytes per row
}

TEST(KvType, NamesParseAndUnknownIsRefused) {
  for (KvType t : {KvType::f32, KvType::f16, KvType::q8_0}) EXPECT_EQ(parse_kv_type(kv_type_name(t)), t);
  EXPECT_FALSE(parse_kv_type("q4_0"));
  EXPECT_FALSE(parse_kv_type(""));
  EXPECT_FALSE(parse_kv_type("F16"));
  HParams hp = qwen3_30b_a3b_attention();
  hp.head_dim = 80;
  EXPECT_TRUE(kv_type_fits(KvType::f16, hp));
  EXPECT_FALSE(kv_type_fits(KvType::q8_0, hp));
}

std::vector<float> random_vec(int64_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  std::vector<float> v(static_cast<size_t>(n));
  for (auto& x : v) x = dist(rng);
  return v;
}

// axpy over a stored row equals axpy over its dequantised copy, on the SIMD and scalar paths.
TEST(KvKernels, AxpyRowMatchesDequantised) {
  const int64_t n = 256;
  for (bool scalar : {false, true}) {
    force_scalar_kernels(scalar);
    for (TensorType t : {TensorType::f32, TensorType::f16, TensorType::q8_0}) {
      auto x = random_vec(n, 3);
      std::vector<uint8_t> row(row_size(t, n));
      ASSERT_TRUE(quantize_row(t, x.data(), row.data(), n));
      std::vector<float> xd(n);
      ASSERT_TRUE(dequantize_row(t, row.data(), xd.data(), n));
      auto y = random_vec(n, 4), want = y;
      axpy_row(t, n, 0.37f, row.data(), y.data());
      for (int64_t i = 0; i < n; ++i) want[i] += 0.37f * xd[i];
      for (int64_t i = 0; i < n; ++i) ASSERT_NEAR(y[i], want[i], 1e-6) << type_name(t) << " scalar=" << scalar << " " << i;
    }
  }
  force_scalar_kernels(false);
}

TEST(KvCache, StoreConvertsAndCopyPrefixCopies) {
  HParams hp;
  hp.n_layer = 2;
  hp.n_head_kv = 2;
  hp.head_dim = 64;
  for (KvType t : {KvType::f32, KvType::f16, KvType::q8_0}) {
    KvCache a(hp, 8, t), b(hp, 8, t);
    ASSERT_TRUE(a.reserve(3));
    for (int p = 0; p < 3; ++p) {
      auto k = random_vec(128, 10 + p), v = random_vec(128, 20 + p);
      a.store(1, p, k.data(), v.data());
      std::vector<float> kd(128);
      ASSERT_TRUE(dequantize_row(kv_tensor_type(t), a.k(1, p), kd.data(), 128));
      // F16 keeps 11 bits, Q8_0 rounds to amax/254 per 32 values (amax of N(0,1) samples < 4.5).
      const double tol = t == KvType::f32 ? 0 : t == KvType::f16 ? 2e-3 : 4.5 / 254 + 1e-6;
      for (int i = 0; i < 128; ++i) ASSERT_NEAR(kd[static_cast<size_t>(i)], k[static_cast<size_t>(i)], tol);
    }
    ASSERT_TRUE(b.copy_prefix(a, 3));
    for (int p = 0; p < 3; ++p) {
      const size_t rb = row_size(kv_tensor_type(t), 128);
      EXPECT_TRUE(std::equal(a.k(1, p), a.k(1, p) + rb, b.k(1, p)));
      EXPECT_TRUE(std::equal(a.v(1, p), a.v(1, p) + rb, b.v(1, p)));
    }
    KvCache other(hp, 8, t == KvType::f32 ? KvType::f16 : KvType::f32);
    EXPECT_FALSE(other.copy_prefix(a, 3));  // a different element type cannot be copied bytewise
    KvCache small(hp, 2, t);
    EXPECT_FALSE(small.copy_prefix(a, 3));  // beyond the bound
  }
}

// Logits after each position of `toks` (prefill of the first `n_prefill` in one batch, then one
// token per step), with a cache of type kv.
std::vector<std::vector<float>> forced_logits(const Model& m, KvType kv, const std::vector<int32_t>& toks, size_t n_prefill,
                                              ThreadPool& pool) {
  KvCache cache(m.hparams(), static_cast<int>(toks.size()) + 1, kv);
  std::vector<BatchEntry> batch;
  for (size_t p = 0; p < n_prefill; ++p) batch.push_back({toks[p], static_cast<int32_t>(p), &cache, p + 1 == n_prefill});
  std::vector<float> logits;
  EXPECT_TRUE(m.forward(batch, pool, &logits).ok());
  std::vector<std::vector<float>> out = {logits};
  for (size_t p = n_prefill; p < toks.size(); ++p) {
    logits.clear();
    BatchEntry e{toks[p], static_cast<int32_t>(p), &cache, true};
    EXPECT_TRUE(m.forward(std::span<const BatchEntry>(&e, 1), pool, &logits).ok());
    out.push_back(logits);
  }
  return out;
}

int32_t argmax(const std::vector<float>& v) { return static_cast<int32_t>(std::max_element(v.begin(), v.end()) - v.begin()); }

// Greedy continuation of `prompt` with an F32 cache: the sequence all caches are then fed.
std::vector<int32_t> greedy_f32(const Model& m, const std::vector<int32_t>& prompt, int n, ThreadPool& pool) {
  std::vector<int32_t> toks = prompt;
  for (int i = 0; i < n; ++i) toks.push_back(argmax(forced_logits(m, KvType::f32, toks, toks.size(), pool).back()));
  return toks;
}

TestModelSpec small_spec(const char* arch, const char* type) {
  TestModelSpec s;
  s.arch = arch;
  s.type = type;
  s.n_layer = 2;
  s.n_embd = 256;
  s.n_head = 4;
  s.n_head_kv = 2;
  s.n_expert = 8;
  s.n_expert_used = 2;
  s.head_dim = 64;
  s.seed = 11;
  return s;
}

// The same token sequence (a greedy continuation under an F32 cache) fed with F16 and Q8_0
// caches: the logits at every step stay within a bound of the F32-cache logits. F16 keeps 11
// significant bits of K and V; Q8_0 rounds each block of 32 to amax/254 and the query to Q8_0 as
// llama.cpp does. F32 weights isolate the cache's error; with quantized weights the activations
// are rounded to 8 bits as well, and a rounding or expert choice that flips moves logits more.
// Greedy tokens agree at every step whose F32 top-2 margin exceeds twice the logit difference
// (which the bound then guarantees); on these random-weight models margins can be < 0.01, so equal
// free-running greedy sequences cannot be promised for Q8_0 (nor for llama.cpp's Q8_0 cache).
TEST(KvForward, LogitsStayNearF32Cache) {
  ThreadPool pool(2);
  std::vector<int32_t> prompt;
  for (int i = 0; i < 40; ++i) prompt.push_back((i * 53 + 17) % 300);
  struct Case {
    const char* weights;
    double f16_bound, q8_bound;
  };
  for (const Case c : {Case{"f32", 0.02, 0.3}, Case{"q8_0", 0.3, 0.6}, Case{"q4_k_m", 0.3, 1.5}}) {
    const std::string path = test_dir() + "/kv_" + c.weights + ".gguf";
    ASSERT_TRUE(write_test_model(small_spec("qwen3moe", c.weights), synthetic_vocab(), path).ok());
    auto model = Model::load(path);
    ASSERT_TRUE(model.ok()) << model.error().message;
    const auto toks = greedy_f32(**model, prompt, 16, pool);
    const auto ref = forced_logits(**model, KvType::f32, toks, prompt.size(), pool);
    for (KvType kv : {KvType::f16, KvType::q8_0}) {
      const auto got = forced_logits(**model, kv, toks, prompt.size(), pool);
      ASSERT_EQ(got.size(), ref.size());
      double max_diff = 0;
      int decided = 0;
      for (size_t s = 0; s < ref.size(); ++s) {
        double d = 0;
        for (size_t i = 0; i < ref[s].size(); ++i) d = std::max(d, static_cast<double>(std::fabs(got[s][i] - ref[s][i])));
        max_diff = std::max(max_diff, d);
        auto sorted = ref[s];
        std::sort(sorted.begin(), sorted.end());
        if (sorted[sorted.size() - 1] - sorted[sorted.size() - 2] > 2 * d) {
          ++decided;
          EXPECT_EQ(argmax(got[s]), argmax(ref[s])) << c.weights << " kv " << kv_type_name(kv) << " step " << s;
        }
      }
      EXPECT_LE(max_diff, kv == KvType::f16 ? c.f16_bound : c.q8_bound) << c.weights << " kv " << kv_type_name(kv);
      std::printf("[ kv ] %s weights, %s cache: max|logit diff| vs F32 cache %.3g over %zu steps (%d decided by margin)\n",
                  c.weights, kv_type_name(kv), max_diff, ref.size(), decided);
    }
  }
}

// The engine's default: with an F16 cache the free-running greedy tokens of the F32-weight test
// model are those of an F32 cache (its margins exceed the F16 error at every step).
TEST(KvForward, F16CacheKeepsGreedyTokensOfF32Weights) {
  ThreadPool pool(2);
  std::vector<int32_t> prompt;
  for (int i = 0; i < 40; ++i) prompt.push_back((i * 53 + 17) % 300);
  const std::string path = test_dir() + "/kv_greedy_f32.gguf";
  ASSERT_TRUE(write_test_model(small_spec("qwen3moe", "f32"), synthetic_vocab(), path).ok());
  auto model = Model::load(path);
  ASSERT_TRUE(model.ok());
  std::vector<int32_t> a = prompt, b = prompt;
  for (int i = 0; i < 24; ++i) {
    a.push_back(argmax(forced_logits(**model, KvType::f32, a, a.size(), pool).back()));
    b.push_back(argmax(forced_logits(**model, KvType::f16, b, b.size(), pool).back()));
  }
  EXPECT_EQ(a, b);
}

TEST(KvForward, Q8_0CacheNeedsHeadDimMultipleOf32) {
  TestModelSpec s = small_spec("qwen3moe", "f32");
  s.head_dim = 48;  // 4 heads * 48 = 192, a multiple of 32 as the writer needs
  const std::string path = test_dir() + "/kv_hd48.gguf";
  ASSERT_TRUE(write_test_model(s, synthetic_vocab(), path).ok());
  auto model = Model::load(path);
  ASSERT_TRUE(model.ok()) << model.error().message;
  ThreadPool pool(1);
  KvCache bad((*model)->hparams(), 4, KvType::q8_0);
  std::vector<float> logits;
  BatchEntry e{1, 0, &bad, true};
  auto st = (*model)->forward(std::span<const BatchEntry>(&e, 1), pool, &logits);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error().message.find("multiple of 32"), std::string::npos) << st.error().message;
  KvCache ok((*model)->hparams(), 4, KvType::f16);
  BatchEntry e2{1, 0, &ok, true};
  EXPECT_TRUE((*model)->forward(std::span<const BatchEntry>(&e2, 1), pool, &logits).ok());
}

}  // namespace
}  // namespace local_backend
