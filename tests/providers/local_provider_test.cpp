// The local provider keeps long prompts' tokenization off the I/O thread: while a 100k-token
// prompt is being tokenized (held open by a gate around the real engine), a short request on the
// same single-threaded io_context is served to the end. Were the tokenization inline, the gate
// would block that thread and the short request could not finish (the test then fails after its
// bound instead of hanging). Waits are bounded generously.
#include "providers/local_provider.h"

#include <gtest/gtest.h>

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <future>
#include <string>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>

#include "local_backend/engine.h"
#include "local_backend/test_model.h"

namespace providers {
namespace {

namespace asio = boost::asio;
using local_backend::Engine;

// The real engine, with tokenize_prompt held after it has tokenized until the test opens the gate.
class GatedEngine final : public Engine {
 public:
  explicit GatedEngine(std::unique_ptr<Engine> real) : real_(std::move(real)) {}

  core::Result<std::vector<int32_t>> tokenize_prompt(const std::vector<core::ChatMessage>& m) const override {
    auto tokens = real_->tokenize_prompt(m);
    tokenized_count = tokens.ok() ? static_cast<int64_t>(tokens->size()) : -1;
    entered = true;
    // Bounded: a gate never opened (the test failed) releases the thread after a minute.
    open_.wait_for(std::chrono::seconds(60));
    return tokens;
  }
  void open() { gate_.set_value(); }

  core::Result<std::shared_ptr<local_backend::Generation>> submit(
      local_backend::GenerateRequest req, std::function<bool(const local_backend::GenerateEvent&)> on_event) override {
    return real_->submit(std::move(req), std::move(on_event));
  }
  size_t queue_depth() const override { return real_->queue_depth(); }
  double decode_tokens_per_second() const override { return real_->decode_tokens_per_second(); }
  std::string model_name() const override { return real_->model_name(); }
  int context_size() const override { return real_->context_size(); }
  int threads() const override { return real_->threads(); }
  local_backend::KvType kv_type() const override { return real_->kv_type(); }
  size_t kv_bytes_per_token() const override { return real_->kv_bytes_per_token(); }
  size_t repacked_weight_bytes() const override { return real_->repacked_weight_bytes(); }
  local_backend::PrefixCacheStats prefix_cache_stats() const override { return real_->prefix_cache_stats(); }
  core::Result<int> count_prompt_tokens(const std::vector<core::ChatMessage>& m) const override {
    return real_->count_prompt_tokens(m);
  }

  mutable std::atomic<bool> entered{false};
  mutable std::atomic<int64_t> tokenized_count{0};

 private:
  std::unique_ptr<Engine> real_;
  std::promise<void> gate_;
  std::shared_future<void> open_ = gate_.get_future().share();
};

std::string model_file() {
  const std::string p = ::testing::TempDir() + "/local_provider_test_" + std::to_string(::getpid()) + ".gguf";
  local_backend::TestModelSpec spec;  // the demo model
  EXPECT_TRUE(local_backend::write_test_model(spec, local_backend::synthetic_vocab(), p).ok());
  return p;
}

core::ChatRequest request(std::string content, int64_t max_tokens) {
  core::ChatRequest r;
  r.model = "local";
  r.max_tokens = max_tokens;
  r.temperature = 0.0;
  r.messages.push_back({.role = "user", .content = std::move(content)});
  r.prompt_bytes = static_cast<int64_t>(r.messages.back().content.size());
  return r;
}

AttemptContext context(const core::ChatRequest& r, std::string_view id) {
  AttemptContext ctx;
  ctx.request = &r;
  ctx.target = {"local", "self", "small"};
  ctx.timeouts.total = std::chrono::seconds(120);
  ctx.total_deadline = std::chrono::steady_clock::now() + ctx.timeouts.total;
  ctx.request_id = id;
  return ctx;
}

TEST(LocalProvider, LongPromptTokenizationDoesNotStallOtherRequests) {
  const std::string path = model_file();
  local_backend::EngineConfig ec;
  ec.model_path = path;
  ec.threads = 2;
  ec.max_context = 4096;
  auto real = Engine::create(ec);
  ASSERT_TRUE(real.ok()) << real.error().message;
  auto gated_owner = std::make_unique<GatedEngine>(std::move(real).value());
  GatedEngine* gated = gated_owner.get();
  LocalProviderConfig cfg;
  cfg.model_name = "small";
  auto provider = make_local_provider(cfg, std::move(gated_owner));

  // About 100k tokens of ordinary text (the count is checked below, not assumed).
  std::string text;
  while (text.size() < 600'000) text += "the quick brown fox jumps over the lazy dog, 1234 times; ";
  const core::ChatRequest long_req = request(text, 4);
  const core::ChatRequest short_req = request("hi", 4);
  AttemptContext long_ctx = context(long_req, "long"), short_ctx = context(short_req, "short");
  AttemptResult long_res, short_res;
  bool long_done = false, short_done = false, long_done_when_short_done = true;

  asio::io_context ioc;  // one thread: the I/O thread both requests share
  asio::co_spawn(
      ioc,
      [&]() -> core::Task<void> {
        co_await provider->chat(long_ctx, nullptr, long_res);
        long_done = true;
        if (short_done) ioc.stop();
      },
      asio::detached);
  // The short request starts once the long one is inside its tokenization.
  asio::steady_timer poll(ioc);
  std::function<void()> start_short_when_entered = [&] {
    if (!gated->entered) {
      if (long_done) return ioc.stop();  // it never reached the (offloaded) tokenization
      poll.expires_after(std::chrono::milliseconds(2));
      poll.async_wait([&](boost::system::error_code) { start_short_when_entered(); });
      return;
    }
    asio::co_spawn(
        ioc,
        [&]() -> core::Task<void> {
          co_await provider->chat(short_ctx, nullptr, short_res);
          short_done = true;
          long_done_when_short_done = long_done;
          gated->open();  // now the long request may go on
          if (long_done) ioc.stop();
        },
        asio::detached);
  };
  start_short_when_entered();
  ioc.run_for(std::chrono::seconds(180));

  ASSERT_TRUE(short_done) << "the short request did not finish while the long prompt was tokenized";
  EXPECT_FALSE(long_done_when_short_done);
  ASSERT_FALSE(short_res.error) << short_res.error->message;
  EXPECT_GT(short_res.usage.completion_tokens, 0);
  EXPECT_NE(short_res.body.find("\"chat.completion\""), std::string::npos);

  // The long prompt really was ~100k tokens, and it is then refused for the context, counted.
  ASSERT_TRUE(long_done);
  EXPECT_GE(gated->tokenized_count.load(), 100'000);
  ASSERT_TRUE(long_res.error);
  EXPECT_EQ(long_res.error->kind, core::ErrorKind::context_too_long) << long_res.error->message;
  std::filesystem::remove(path);
}

}  // namespace
}  // namespace providers
