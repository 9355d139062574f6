// The engine end to end on generated models: loading errors, generation, stop strings,
// max_tokens, cancellation, the bounded queue, and several generations sharing the engine.
#include "local_backend/engine.h"

#include <gtest/gtest.h>

#include "test_dir.h"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <fstream>
#include <future>
#include <mutex>
#include <thread>

#include "local_backend/test_model.h"
#include "local_backend/unicode.h"

namespace local_backend {
namespace {

const std::string& model_path() {
  static const std::string path = [] {
    std::string p = test_dir() + "/engine_test_model.gguf";
    TestModelSpec spec;  // the defaults: the demo model
    EXPECT_TRUE(write_test_model(spec, synthetic_vocab(), p).ok());
    return p;
  }();
  return path;
}

std::unique_ptr<Engine> make_engine(int max_queue = 64, int max_batch = 8, int max_context = 4096, int threads = 2) {
  EngineConfig cfg;
  cfg.model_path = model_path();
  cfg.max_queue = max_queue;
  cfg.max_batch = max_batch;
  cfg.max_context = max_context;
  cfg.threads = threads;
  auto e = Engine::create(cfg);
  EXPECT_TRUE(e.ok()) << e.error().message;
  return std::move(*e);
}

struct Collected {
  std::mutex mu;
  std::condition_variable cv;
  std::string text;
  std::vector<GenerateEvent> events;
  bool done = false;
  int calls_after_done = 0;

  std::function<bool(const GenerateEvent&)> callback(int cancel_after = -1) {
    return [this, cancel_after](const GenerateEvent& ev) {
      std::lock_guard<std::mutex> lk(mu);
      if (done) ++calls_after_done;
      events.push_back(ev);
      text += ev.text;
      if (ev.done) {
        done = true;
        cv.notify_all();
      }
      return cancel_after < 0 || static_cast<int>(events.size()) < cancel_after;
    };
  }
  bool wait(std::chrono::seconds d = std::chrono::seconds(60)) {
    std::unique_lock<std::mutex> lk(mu);
    return cv.wait_for(lk, d, [&] { return done; });
  }
  const GenerateEvent& last() { return events.back(); }
};

GenerateRequest greedy(const std::string& user, int max_tokens) {
  GenerateRequest r;
  r.messages = {{"system", "You are terse.", "", "", ""}, {"user", user, "", "", ""}};
  r.sampling.temperature = 0;
  r.max_tokens = max_tokens;
  return r;
}

std::string run(Engine& e, GenerateRequest r, GenerateEvent* done = nullptr) {
  Collected c;
  auto g = e.submit(std::move(r), c.callback());
  EXPECT_TRUE(g.ok()) << g.error().message;
  EXPECT_TRUE(c.wait());
  if (done) *done = c.last();
  EXPECT_EQ(c.calls_after_done, 0);
  return c.text;
}

TEST(EngineCreate, MissingFile) {
  EngineConfig cfg;
  cfg.model_path = "/nonexistent/model.gguf";
  auto e = Engine::create(cfg);
  ASSERT_FALSE(e.ok());
  EXPECT_NE(e.error().message.find("cannot open"), std::string::npos) << e.error().message;
}

TEST(EngineCreate, TruncatedFile) {
  std::ifstream in(model_path(), std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const std::string path = test_dir() + "/engine_truncated.gguf";
  std::ofstream(path, std::ios::binary) << bytes.substr(0, bytes.size() / 2);
  EngineConfig cfg;
  cfg.model_path = path;
  auto e = Engine::create(cfg);
  ASSERT_FALSE(e.ok());
  EXPECT_NE(e.error().message.find("GGUF"), std::string::npos) << e.error().message;
  EXPECT_NE(e.error().message.find("truncated"), std::string::npos) << e.error().message;
}

TEST(EngineCreate, MismatchedTensorShape) {
  // Patch blk.0.attn_q.weight's second dimension from 256 to 128 (a smaller, still valid file).
  std::ifstream in(model_path(), std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const std::string name = "blk.0.attn_q.weight";
  const size_t at = bytes.find(name);
  ASSERT_NE(at, std::string::npos);
  const size_t dims = at + name.size() + 4;  // after the name: u32 n_dims, then u64 dims
  uint64_t ne1 = 128;
  std::memcpy(&bytes[dims + 8], &ne1, 8);
  const std::string path = test_dir() + "/engine_mismatch.gguf";
  std::ofstream(path, std::ios::binary) << bytes;
  EngineConfig cfg;
  cfg.model_path = path;
  auto e = Engine::create(cfg);
  ASSERT_FALSE(e.ok());
  EXPECT_NE(e.error().message.find("tensor 'blk.0.attn_q.weight' has shape [256, 128], expected [256, 256]"),
            std::string::npos)
      << e.error().message;
}

TEST(EngineCreate, BadConfig) {
  EngineConfig cfg;
  cfg.model_path = model_path();
  cfg.max_queue = 0;
  EXPECT_FALSE(Engine::create(cfg).ok());
  cfg.model_path = "";
  EXPECT_FALSE(Engine::create(cfg).ok());
}

TEST(Engine, GreedyIsDeterministicAndHonoursMaxTokens) {
  auto e = make_engine();
  GenerateEvent done;
  const std::string a = run(*e, greedy("Hello there", 12), &done);
  EXPECT_EQ(done.finish_reason == "length" || done.finish_reason == "stop", true);
  EXPECT_GT(done.prompt_tokens, 5);
  EXPECT_LE(done.completion_tokens, 12);
  const std::string b = run(*e, greedy("Hello there", 12));
  EXPECT_EQ(a, b);
  EXPECT_EQ(unicode::valid_utf8_prefix(a), a.size());
  EXPECT_GT(e->decode_tokens_per_second(), 0.0);
  EXPECT_EQ(e->model_name(), "gateway-test-model");
  EXPECT_EQ(e->queue_depth(), 0u);
}

// A prompt tokenized beforehand (off the I/O thread, as the local provider does for long prompts)
// generates exactly what the same messages do, and counts the same prompt tokens.
TEST(Engine, PretokenizedPromptMatchesMessages) {
  auto e = make_engine();
  const GenerateRequest r = greedy("Hello there, a prompt tokenized elsewhere", 10);
  auto tokens = e->tokenize_prompt(r.messages);
  ASSERT_TRUE(tokens.ok()) << tokens.error().message;
  EXPECT_EQ(static_cast<int>(tokens->size()), *e->count_prompt_tokens(r.messages));
  GenerateEvent from_messages, from_tokens;
  const std::string a = run(*e, r, &from_messages);
  GenerateRequest pre = r;
  pre.messages.clear();  // not read when the tokens are given
  pre.prompt_tokens = *tokens;
  const std::string b = run(*e, pre, &from_tokens);
  EXPECT_EQ(a, b);
  EXPECT_EQ(from_messages.prompt_tokens, from_tokens.prompt_tokens);
  EXPECT_EQ(from_tokens.prompt_tokens, static_cast<int>(tokens->size()));
  // Too long for the context: refused at submit, as an untokenized prompt would be.
  auto small = make_engine(64, 8, 16);
  GenerateRequest longer = r;
  longer.prompt_tokens = std::vector<int32_t>(64, (*tokens)[0]);
  Collected c;
  auto g = small->submit(std::move(longer), c.callback());
  ASSERT_FALSE(g.ok());
  EXPECT_EQ(g.error().kind, core::ErrorKind::context_too_long);
}

TEST(Engine, MaxTokensGivesLength) {
  auto e = make_engine();
  GenerateRequest r = greedy("prompt", 7);
  r.ignore_eos = true;
  GenerateEvent done;
  run(*e, r, &done);
  EXPECT_EQ(done.finish_reason, "length");
  EXPECT_EQ(done.completion_tokens, 7);
}

TEST(Engine, SeededSamplingIsReproducible) {
  auto e = make_engine();
  GenerateRequest r = greedy("Tell me a story", 16);
  r.sampling.temperature = 0.9f;
  r.sampling.top_p = 0.95f;
  r.sampling.top_k = 40;
  r.sampling.has_seed = true;
  r.sampling.seed = 42;
  EXPECT_EQ(run(*e, r), run(*e, r));
}

TEST(Engine, StopStringEndsGenerationAndIsNotReturned) {
  auto e = make_engine();
  // Find a greedy completion with enough text, then stop on a piece of its middle.
  std::string full;
  GenerateRequest base;
  for (int i = 0; i < 20 && full.size() < 12; ++i) {
    base = greedy("Say something " + std::to_string(i), 40);
    full = run(*e, base);
  }
  ASSERT_GE(full.size(), 12u) << "model produced too little text";
  // A stop string starting at a character boundary in the middle.
  size_t start = full.size() / 2;
  while (start > 0 && (static_cast<unsigned char>(full[start]) & 0xC0) == 0x80) --start;
  size_t len = 0, i = start;
  for (int chars = 0; chars < 2 && i < full.size(); ++chars) {
    size_t l = 1;
    unicode::decode_utf8(full, i, &l);
    i += l;
  }
  len = i - start;
  const std::string stop = full.substr(start, len);
  GenerateRequest r = base;
  r.stop = {stop, "\x01never"};
  GenerateEvent done;
  const std::string got = run(*e, r, &done);
  EXPECT_EQ(done.finish_reason, "stop");
  EXPECT_EQ(got, full.substr(0, full.find(stop)));
}

TEST(Engine, CallbackReturningFalseCancels) {
  auto e = make_engine();
  Collected c;
  GenerateRequest r = greedy("Go on forever", 2000);
  r.sampling.temperature = 1.0f;
  r.ignore_eos = true;
  r.sampling.has_seed = true;
  ASSERT_TRUE(e->submit(r, c.callback(/*cancel_after=*/2)).ok());
  ASSERT_TRUE(c.wait());
  EXPECT_EQ(c.last().finish_reason, "cancelled");
  EXPECT_LE(c.events.size(), 3u);
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_EQ(c.calls_after_done, 0);
  EXPECT_EQ(e->queue_depth(), 0u);
}

TEST(Engine, CancelFromAnotherThread) {
  auto e = make_engine();
  Collected c;
  GenerateRequest r = greedy("Go on forever", 100000);
  r.sampling.temperature = 1.0f;
  r.ignore_eos = true;
  auto g = e->submit(r, c.callback());
  ASSERT_TRUE(g.ok());
  std::this_thread::sleep_for(std::chrono::milliseconds(30));
  (*g)->cancel();
  ASSERT_TRUE(c.wait(std::chrono::seconds(10)));
  EXPECT_EQ(c.last().finish_reason, "cancelled");
}

TEST(Engine, QueueIsBoundedAndFailsFast) {
  auto e = make_engine(/*max_queue=*/2, /*max_batch=*/1);
  Collected a, b, c;
  GenerateRequest r = greedy("long", 100000);
  r.sampling.temperature = 1.0f;
  r.ignore_eos = true;
  auto ga = e->submit(r, a.callback());
  auto gb = e->submit(r, b.callback());
  ASSERT_TRUE(ga.ok());
  ASSERT_TRUE(gb.ok());
  EXPECT_EQ(e->queue_depth(), 2u);
  auto gc = e->submit(r, c.callback());
  ASSERT_FALSE(gc.ok());
  EXPECT_EQ(gc.error().kind, core::ErrorKind::overloaded);
  (*ga)->cancel();
  (*gb)->cancel();
  ASSERT_TRUE(a.wait());
  ASSERT_TRUE(b.wait());
}

TEST(Engine, CancelWhileWaitingLeavesTheQueue) {
  auto e = make_engine(/*max_queue=*/4, /*max_batch=*/1);
  Collected a, b;
  GenerateRequest r = greedy("long", 100000);
  r.sampling.temperature = 1.0f;
  r.ignore_eos = true;
  auto ga = e->submit(r, a.callback());
  auto gb = e->submit(r, b.callback());
  ASSERT_TRUE(ga.ok() && gb.ok());
  (*gb)->cancel();  // b waits behind a, which never finishes by itself
  ASSERT_TRUE(b.wait(std::chrono::seconds(10)));
  EXPECT_EQ(b.last().finish_reason, "cancelled");
  EXPECT_EQ(b.last().completion_tokens, 0);
  EXPECT_EQ(e->queue_depth(), 1u);
  (*ga)->cancel();
  ASSERT_TRUE(a.wait());
}

TEST(Engine, BadRequests) {
  auto e = make_engine(64, 8, /*max_context=*/64);
  std::string long_text;
  for (int i = 0; i < 200; ++i) long_text += "word ";
  auto r = e->submit(greedy(long_text, 4), [](const GenerateEvent&) { return true; });
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().kind, core::ErrorKind::context_too_long);
  GenerateRequest bad_role = greedy("x", 4);
  bad_role.messages[0].role = "narrator";
  EXPECT_EQ(e->submit(bad_role, [](const GenerateEvent&) { return true; }).error().kind, core::ErrorKind::bad_request);
  GenerateRequest bad_p = greedy("x", 4);
  bad_p.sampling.top_p = 0;
  EXPECT_EQ(e->submit(bad_p, [](const GenerateEvent&) { return true; }).error().param, "top_p");
  EXPECT_EQ(e->submit(greedy("x", 0), [](const GenerateEvent&) { return true; }).error().param, "max_tokens");
}

TEST(Engine, ContextBoundEndsWithLength) {
  auto e = make_engine(64, 8, /*max_context=*/40);
  GenerateRequest r = greedy("hi", 1000);
  r.ignore_eos = true;
  GenerateEvent done;
  run(*e, r, &done);
  EXPECT_EQ(done.finish_reason, "length");
  EXPECT_EQ(done.prompt_tokens + done.completion_tokens, 40);
}

TEST(Engine, ConcurrentGenerationsMatchSequentialOnes) {
  // Continuous batching must not change results: greedy outputs are identical whether the
  // generations run alone or together.
  auto e = make_engine(64, /*max_batch=*/4);
  std::vector<std::string> prompts = {"alpha", "a much longer prompt about the weather in the city", "gamma ray", "delta"};
  std::vector<std::string> alone;
  for (const auto& p : prompts) alone.push_back(run(*e, greedy(p, 20)));
  std::vector<std::unique_ptr<Collected>> cs;
  for (const auto& p : prompts) {
    cs.push_back(std::make_unique<Collected>());
    ASSERT_TRUE(e->submit(greedy(p, 20), cs.back()->callback()).ok());
  }
  EXPECT_GE(e->queue_depth(), 1u);
  for (size_t i = 0; i < prompts.size(); ++i) {
    ASSERT_TRUE(cs[i]->wait());
    EXPECT_EQ(cs[i]->text, alone[i]) << prompts[i];
    EXPECT_EQ(cs[i]->calls_after_done, 0);
  }
}

TEST(Engine, MoreGenerationsThanBatchSlotsAllFinish) {
  auto e = make_engine(64, /*max_batch=*/2);
  std::vector<std::unique_ptr<Collected>> cs;
  for (int i = 0; i < 7; ++i) {
    cs.push_back(std::make_unique<Collected>());
    ASSERT_TRUE(e->submit(greedy(std::string("q").append(std::to_string(i)), 8), cs.back()->callback()).ok());
  }
  for (auto& c : cs) {
    ASSERT_TRUE(c->wait());
    EXPECT_TRUE(c->last().finish_reason == "stop" || c->last().finish_reason == "length");
  }
  EXPECT_EQ(e->queue_depth(), 0u);
}

TEST(Engine, MixtralStyleModelWithSentencePieceVocab) {
  const std::string path = test_dir() + "/engine_mixtral.gguf";
  TestModelSpec spec;
  spec.arch = "llama";
  ASSERT_TRUE(write_test_model(spec, synthetic_spm_vocab(), path).ok());
  EngineConfig cfg;
  cfg.model_path = path;
  cfg.threads = 2;
  auto e = Engine::create(cfg);
  ASSERT_TRUE(e.ok()) << e.error().message;
  GenerateRequest r = greedy("What is the weather?", 10);
  r.ignore_eos = true;
  GenerateEvent done;
  const std::string text = run(**e, r, &done);
  EXPECT_EQ(done.finish_reason, "length");
  EXPECT_EQ(done.completion_tokens, 10);
  EXPECT_EQ(unicode::valid_utf8_prefix(text), text.size());
}

TEST(Engine, DestructionCancelsPendingGenerations) {
  Collected c;
  {
    auto e = make_engine();
    GenerateRequest r = greedy("forever", 100000);
    r.sampling.temperature = 1.0f;
    r.ignore_eos = true;
    ASSERT_TRUE(e->submit(r, c.callback()).ok());
  }
  ASSERT_TRUE(c.done);
  EXPECT_EQ(c.last().finish_reason, "cancelled");
}

}  // namespace
}  // namespace local_backend
