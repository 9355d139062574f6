// The prompt (prefix) cache: the cache on its own (longest match, block granularity, LRU
// bound, replacing entries a longer one extends), and the engine with it on, whose greedy
// tokens and first-token logits must be bitwise those of an engine with it off.
#include "local_backend/prefix_cache.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <random>

#include "local_backend/engine.h"
#include "local_backend/model.h"
#include "local_backend/test_model.h"
#include "test_dir.h"

namespace local_backend {
namespace {

const std::string& model_path() {
  static const std::string path = [] {
    std::string p = test_dir() + "/prefix_cache_model.gguf";
    EXPECT_TRUE(write_test_model(TestModelSpec{}, synthetic_vocab(), p).ok());
    return p;
  }();
  return path;
}

// Deterministic token ids among the synthetic vocabulary's 256 byte tokens.
std::vector<int32_t> tokens(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<int32_t> t(n);
  for (auto& x : t) x = static_cast<int32_t>(rng() % 256);
  return t;
}

std::vector<int32_t> cat(std::vector<int32_t> a, const std::vector<int32_t>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

// ---- the cache alone -------------------------------------------------------------------

HParams small_hparams() {
  HParams hp;
  hp.n_layer = 1;
  hp.n_head_kv = 1;
  hp.head_dim = 32;
  return hp;
}

// A cache whose position p holds K = V = p + marker, so copied rows can be recognised.
std::unique_ptr<KvCache> filled(int n, float marker) {
  auto c = std::make_unique<KvCache>(small_hparams(), n, KvType::f32);
  EXPECT_TRUE(c->reserve(n));
  std::vector<float> row(32);
  for (int p = 0; p < n; ++p) {
    std::fill(row.begin(), row.end(), static_cast<float>(p) + marker);
    c->store(0, p, row.data(), row.data());
  }
  return c;
}

float first_k(const KvCache& c, int pos) {
  float f;
  std::memcpy(&f, c.k(0, pos), sizeof f);
  return f;
}

TEST(PrefixCache, LongestMatchAtTokenGranularityAfterAWholeBlock) {
  PrefixCache pc(1 << 20);
  const auto base = tokens(150, 1);
  pc.insert(cat(base, tokens(20, 2)), filled(170, 0.0f));
  pc.insert(cat(std::vector<int32_t>(base.begin(), base.begin() + 100), tokens(30, 3)), filled(130, 1000.0f));
  KvCache into(small_hparams(), 400, KvType::f32);
  EXPECT_EQ(pc.reuse(cat(base, tokens(5, 4)), &into), 150);  // 2 blocks + 22 tokens of the third
  EXPECT_EQ(first_k(into, 149), 149.0f);                      // from the longer entry
  EXPECT_EQ(pc.stats().hits, 1u);
  EXPECT_EQ(pc.stats().tokens_reused, 150u);
}

TEST(PrefixCache, LessThanABlockIsAMiss) {
  PrefixCache pc(1 << 20);
  const auto base = tokens(63, 1);
  pc.insert(cat(base, tokens(100, 2)), filled(163, 0.0f));
  KvCache into(small_hparams(), 400, KvType::f32);
  EXPECT_EQ(pc.reuse(cat(base, tokens(100, 3)), &into), 0);
  // A token changed inside the first block: the block hashes differ from there on.
  auto other = cat(base, tokens(100, 2));
  other[10] = (other[10] + 1) % 256;
  EXPECT_EQ(pc.reuse(other, &into), 0);
  EXPECT_EQ(pc.stats().lookups, 2u);
  EXPECT_EQ(pc.stats().hits, 0u);
}

TEST(PrefixCache, FullHitLeavesTheLastTokenToCompute) {
  PrefixCache pc(1 << 20);
  const auto t = tokens(128, 5);
  pc.insert(t, filled(128, 0.0f));
  KvCache into(small_hparams(), 400, KvType::f32);
  EXPECT_EQ(pc.reuse(t, &into), 127);
}

TEST(PrefixCache, ALongerTurnReplacesTheEntryItExtends) {
  PrefixCache pc(1 << 20);
  auto conv = tokens(100, 6);
  pc.insert(conv, filled(100, 0.0f));
  conv = cat(conv, tokens(80, 7));
  pc.insert(conv, filled(180, 0.0f));
  EXPECT_EQ(pc.stats().entries, 1u);
  EXPECT_EQ(pc.stats().bytes, filled(180, 0.0f)->bytes());
  // A shorter sequence that is a prefix of the entry adds nothing.
  pc.insert(std::vector<int32_t>(conv.begin(), conv.begin() + 120), filled(120, 0.0f));
  EXPECT_EQ(pc.stats().entries, 1u);
  EXPECT_EQ(pc.stats().bytes, filled(180, 0.0f)->bytes());
}

TEST(PrefixCache, BoundedLeastRecentlyUsedEviction) {
  const size_t one = filled(100, 0.0f)->bytes();
  PrefixCache pc(2 * one);
  const auto a = tokens(100, 10), b = tokens(100, 11), c = tokens(100, 12);
  pc.insert(a, filled(100, 0.0f));
  pc.insert(b, filled(100, 0.0f));
  KvCache into(small_hparams(), 400, KvType::f32);
  EXPECT_EQ(pc.reuse(cat(a, {1}), &into), 100);  // a is now the most recently used
  pc.insert(c, filled(100, 0.0f));                // evicts b
  EXPECT_EQ(pc.stats().entries, 2u);
  EXPECT_EQ(pc.stats().evictions, 1u);
  EXPECT_LE(pc.stats().bytes, 2 * one);
  EXPECT_EQ(pc.reuse(cat(b, {1}), &into), 0);
  EXPECT_EQ(pc.reuse(cat(a, {1}), &into), 100);
  EXPECT_EQ(pc.reuse(cat(c, {1}), &into), 100);
  pc.insert(tokens(300, 13), filled(300, 0.0f));  // larger than the whole bound: not kept
  EXPECT_EQ(pc.stats().entries, 2u);
}

TEST(PrefixCache, OffKeepsNothing) {
  PrefixCache pc(0);
  pc.insert(tokens(100, 1), filled(100, 0.0f));
  KvCache into(small_hparams(), 400, KvType::f32);
  EXPECT_EQ(pc.reuse(cat(tokens(100, 1), {1}), &into), 0);
  EXPECT_EQ(pc.stats().entries, 0u);
}

TEST(PrefixCache, RefusesRowsOfAnotherKvType) {
  PrefixCache pc(1 << 20);
  const auto t = tokens(100, 1);
  pc.insert(t, filled(100, 0.0f));  // f32 rows
  KvCache into(small_hparams(), 400, KvType::f16);
  EXPECT_EQ(pc.reuse(cat(t, {1}), &into), 0);
}

// ---- the engine with and without it ------------------------------------------------------

std::unique_ptr<Engine> make_engine(size_t prefix_bytes, KvType kv = KvType::f16, int max_batch = 8) {
  EngineConfig cfg;
  cfg.model_path = model_path();
  cfg.threads = 2;
  cfg.max_batch = max_batch;
  cfg.kv_type = kv;
  cfg.prefix_cache_bytes = prefix_bytes;
  auto e = Engine::create(cfg);
  EXPECT_TRUE(e.ok()) << e.error().message;
  return std::move(*e);
}

struct Outcome {
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;
  std::string text;
  std::vector<float> first_logits;
  GenerateEvent last;
};

// Submits a greedy generation of the given prompt tokens; Outcome collects the result.
std::unique_ptr<Outcome> submit(Engine& e, const std::vector<int32_t>& prompt, int max_tokens = 8) {
  auto out = std::make_unique<Outcome>();
  GenerateRequest r;
  r.prompt_tokens = prompt;
  r.sampling.temperature = 0;
  r.max_tokens = max_tokens;
  r.ignore_eos = true;
  Outcome* o = out.get();
  r.on_first_logits = [o](std::span<const float> lg) { o->first_logits.assign(lg.begin(), lg.end()); };
  auto g = e.submit(std::move(r), [o](const GenerateEvent& ev) {
    std::lock_guard<std::mutex> lk(o->mu);
    o->text += ev.text;
    if (ev.done) {
      o->last = ev;
      o->done = true;
      o->cv.notify_all();
    }
    return true;
  });
  EXPECT_TRUE(g.ok()) << g.error().message;
  return out;
}

void wait(Outcome& o) {
  std::unique_lock<std::mutex> lk(o.mu);
  ASSERT_TRUE(o.cv.wait_for(lk, std::chrono::seconds(120), [&] { return o.done; }));
  ASSERT_EQ(o.last.finish_reason, "length") << (o.last.error ? o.last.error->message : "");
}

std::unique_ptr<Outcome> run(Engine& e, const std::vector<int32_t>& prompt, int max_tokens = 8) {
  auto o = submit(e, prompt, max_tokens);
  wait(*o);
  return o;
}

// The cached engine's generation equals the uncached one: same text, bitwise same logits.
void expect_same(const Outcome& cached, const Outcome& ref) {
  EXPECT_EQ(cached.text, ref.text);
  ASSERT_EQ(cached.first_logits.size(), ref.first_logits.size());
  ASSERT_FALSE(ref.first_logits.empty());
  EXPECT_EQ(std::memcmp(cached.first_logits.data(), ref.first_logits.data(), ref.first_logits.size() * sizeof(float)), 0);
  EXPECT_EQ(cached.last.completion_tokens, ref.last.completion_tokens);
  EXPECT_EQ(cached.last.prompt_tokens, ref.last.prompt_tokens);
}

class EnginePrefixCache : public ::testing::TestWithParam<KvType> {};

TEST_P(EnginePrefixCache, SharedPrefixReusesRowsAndChangesNothing) {
  auto cached = make_engine(64 << 20, GetParam());
  auto ref = make_engine(0, GetParam());
  const auto base = tokens(200, 20);  // 3 whole blocks and 8 tokens of the fourth
  const auto a = cat(base, tokens(30, 21)), b = cat(base, tokens(40, 22));
  ASSERT_NE(a[200], b[200]);
  auto a1 = run(*cached, a);
  EXPECT_EQ(a1->last.cached_tokens, 0);
  auto b1 = run(*cached, b);
  EXPECT_EQ(b1->last.cached_tokens, 200);
  expect_same(*b1, *run(*ref, b));
  expect_same(*a1, *run(*ref, a));
  EXPECT_EQ(ref->prefix_cache_stats().hits, 0u);
  const auto st = cached->prefix_cache_stats();
  EXPECT_EQ(st.lookups, 2u);
  EXPECT_EQ(st.hits, 1u);
  EXPECT_EQ(st.tokens_reused, 200u);
}

TEST_P(EnginePrefixCache, FullPromptHitStillComputesTheLastToken) {
  auto cached = make_engine(64 << 20, GetParam());
  auto ref = make_engine(0, GetParam());
  const auto a = tokens(150, 30);
  auto first = run(*cached, a);
  auto again = run(*cached, a);
  EXPECT_EQ(again->last.cached_tokens, 149);
  const auto r = run(*ref, a);
  expect_same(*first, *r);
  expect_same(*again, *r);
}

INSTANTIATE_TEST_SUITE_P(KvTypes, EnginePrefixCache, ::testing::Values(KvType::f16, KvType::q8_0, KvType::f32),
                         [](const auto& info) { return std::string(kv_type_name(info.param)); });

TEST(EnginePrefixCacheLifecycle, NextTurnReusesTheGeneratedTokensToo) {
  // The entry holds the prompt and the tokens generated from it (all but the last, which was
  // never fed back): a next turn that repeats the answer reuses those rows as well.
  auto cached = make_engine(64 << 20);
  auto ref = make_engine(0);
  const auto a = tokens(100, 40);
  auto first = run(*cached, a, /*max_tokens=*/2);  // the first generated token is fed back
  const auto& lg = first->first_logits;
  const auto g1 = static_cast<int32_t>(std::max_element(lg.begin(), lg.end()) - lg.begin());
  const auto next = cat(cat(a, {g1}), tokens(10, 41));
  auto again = run(*cached, next);
  EXPECT_EQ(again->last.cached_tokens, 101);
  EXPECT_EQ(cached->prefix_cache_stats().entries, 1u);  // the second sequence replaced the first
  expect_same(*again, *run(*ref, next));
}

TEST(EnginePrefixCacheLifecycle, EvictedPrefixIsRecomputedIdentically) {
  // Room for one finished sequence (prompt + 8 tokens at 1 KiB per token for f16 here).
  auto probe = make_engine(0);
  const size_t per_token = probe->kv_bytes_per_token();
  auto cached = make_engine(300 * per_token);
  auto ref = make_engine(0);
  const auto base = tokens(200, 50);
  run(*cached, cat(base, tokens(30, 51)));
  run(*cached, tokens(230, 52));  // unrelated: evicts the first
  EXPECT_EQ(cached->prefix_cache_stats().evictions, 1u);
  const auto b = cat(base, tokens(20, 53));
  auto b1 = run(*cached, b);
  EXPECT_EQ(b1->last.cached_tokens, 0);
  expect_same(*b1, *run(*ref, b));
  EXPECT_LE(cached->prefix_cache_stats().bytes, 300 * per_token);
}

TEST(EnginePrefixCacheLifecycle, ConcurrentSequencesInOneBatch) {
  auto cached = make_engine(64 << 20, KvType::f16, /*max_batch=*/4);
  auto ref = make_engine(0, KvType::f16, /*max_batch=*/4);
  const auto base = tokens(260, 60);
  run(*cached, cat(base, tokens(10, 61)));
  const std::vector<std::vector<int32_t>> prompts = {cat(base, tokens(30, 62)), cat(base, tokens(5, 63)),
                                                     tokens(90, 64), cat(base, tokens(70, 65))};
  std::vector<std::unique_ptr<Outcome>> got, want;
  for (const auto& p : prompts) got.push_back(submit(*cached, p));
  for (const auto& p : prompts) want.push_back(submit(*ref, p));
  for (size_t i = 0; i < prompts.size(); ++i) {
    wait(*got[i]);
    wait(*want[i]);
    EXPECT_EQ(got[i]->last.cached_tokens, i == 2 ? 0 : 260) << i;
    expect_same(*got[i], *want[i]);
  }
}

TEST(EnginePrefixCacheLifecycle, AFailedSequenceIsNotKept) {
  // A shared prefix then a token id the model does not have: the forward pass fails after the
  // rows were copied, and nothing of that sequence may be kept.
  auto cached = make_engine(64 << 20);
  auto ref = make_engine(0);
  const auto base = tokens(128, 80);
  run(*cached, cat(base, tokens(8, 81)));
  const size_t bytes = cached->prefix_cache_stats().bytes;
  auto bad = submit(*cached, cat(cat(base, tokens(70, 82)), {1 << 20}));
  {
    std::unique_lock<std::mutex> lk(bad->mu);
    ASSERT_TRUE(bad->cv.wait_for(lk, std::chrono::seconds(120), [&] { return bad->done; }));
  }
  EXPECT_EQ(bad->last.finish_reason, "error");
  EXPECT_EQ(bad->last.cached_tokens, 128);
  EXPECT_EQ(cached->prefix_cache_stats().entries, 1u);
  EXPECT_EQ(cached->prefix_cache_stats().bytes, bytes);
  const auto good = cat(base, tokens(70, 82));
  auto g = run(*cached, good);
  EXPECT_EQ(g->last.cached_tokens, 128);
  expect_same(*g, *run(*ref, good));
}

TEST(EnginePrefixCacheLifecycle, CacheOffReportsNoCachedTokens) {
  auto e = make_engine(0);
  const auto a = tokens(100, 70);
  run(*e, a);
  EXPECT_EQ(run(*e, a)->last.cached_tokens, 0);
  EXPECT_EQ(e->prefix_cache_stats().entries, 0u);
}

}  // namespace
}  // namespace local_backend
