#include "providers/local_provider.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <algorithm>
#include <deque>
#include <mutex>

#include "core/json_writer.h"
#include "local_backend/engine.h"
#include "providers/dialect.h"
#include "providers/openai_normalize.h"

namespace providers {
namespace {

namespace asio = boost::asio;
using core::ErrorKind;
using core::ErrorSource;
using Micros = std::chrono::microseconds;

// Engine events cross from engine threads to the session's thread by asio::post; only the
// session's thread touches the queue's consumer side and the timer.
// The bridge itself holds no Asio object, because its last reference may be dropped on an engine
// thread; the timer lives in the coroutine frame and is reached through a weak_ptr on the session's
// thread only.
struct Bridge {
  std::deque<local_backend::GenerateEvent> events;
  std::atomic<bool> cancelled{false};
  std::weak_ptr<core::SteadyTimer> timer;
};

std::string chunk_json(const std::string& id, int64_t created, const std::string& model, std::string_view delta_json,
                       std::string_view finish) {
  std::string s = "{\"id\":";
  core::append_json_string(s, id);
  s += ",\"object\":\"chat.completion.chunk\",\"created\":" + std::to_string(created) + ",\"model\":";
  core::append_json_string(s, model);
  s += ",\"choices\":[{\"index\":0,\"delta\":";
  s += delta_json;
  s += ",\"finish_reason\":";
  if (finish.empty()) s += "null";
  else core::append_json_string(s, finish);
  s += "}]}";
  return s;
}

// Prompts at least this long are tokenized (chat template + BPE) on the provider's own thread
// instead of the I/O thread that received them: every other connection of that worker would wait
// for it (tests/bench/local_backend_bench --tokenize measures the rate).
constexpr int64_t kOffloadPromptBytes = 2 * 1024;  // ~0.3 ms of BPE at the measured ~6 MB/s

class LocalProvider final : public Provider {
 public:
  LocalProvider(LocalProviderConfig cfg, std::unique_ptr<local_backend::Engine> engine)
      : cfg_(std::move(cfg)), engine_(std::move(engine)) {}

  const std::string& name() const override { return cfg_.name; }
  const Dialect& dialect() const override { return *find_dialect("local"); }
  std::vector<std::string> regions() const override { return {cfg_.region}; }
  const std::string& default_region() const override { return cfg_.region; }
  bool available() const override { return true; }
  std::string unavailable_reason() const override { return {}; }

  core::Task<void> chat(const AttemptContext& ctx, ChatSink* sink, AttemptResult& res) override {
    const auto started = std::chrono::steady_clock::now();
    const core::ChatRequest& req = *ctx.request;
    local_backend::GenerateRequest g;
    int64_t pretokenized = 0;  // the prompt's token count when it was tokenized here
    if (req.prompt_bytes >= kOffloadPromptBytes) {
      using Tokens = core::Result<std::vector<int32_t>>;
      // Asio keeps the result in a default-constructed slot: optional<Tokens> has one.
      std::optional<Tokens> tokens = co_await asio::co_spawn(
          tokenizer_, [this, &req]() -> asio::awaitable<std::optional<Tokens>> { co_return engine_->tokenize_prompt(req.messages); },
          core::use_task);
      if (!tokens->ok()) {
        res.error = tokens->error();
        res.error->source = ErrorSource::local;
        co_return;
      }
      g.prompt_tokens = std::move(tokens->value());
      pretokenized = static_cast<int64_t>(g.prompt_tokens->size());
    } else {
      g.messages = req.messages;
    }
    if (req.temperature) g.sampling.temperature = static_cast<float>(*req.temperature);
    if (req.top_p) g.sampling.top_p = static_cast<float>(*req.top_p);
    if (req.top_k) g.sampling.top_k = static_cast<int>(*req.top_k);
    if (req.min_p) g.sampling.min_p = static_cast<float>(*req.min_p);
    if (req.seed) {
      g.sampling.seed = static_cast<uint64_t>(*req.seed);
      g.sampling.has_seed = true;
    }
    g.max_tokens = static_cast<int>(req.max_tokens.value_or(cfg_.default_max_tokens));
    g.stop = req.stop;

    auto ex = co_await asio::this_coro::executor;
    auto timer = std::make_shared<core::SteadyTimer>(ex);
    auto bridge = std::make_shared<Bridge>();
    bridge->timer = timer;
    auto submitted = engine_->submit(std::move(g), [bridge, ex](const local_backend::GenerateEvent& ev) {
      asio::post(ex, [bridge, ev] {
        bridge->events.push_back(ev);
        if (auto t = bridge->timer.lock()) t->cancel();
      });
      return !bridge->cancelled.load();
    });
    if (!submitted) {
      res.error = std::move(submitted).error();
      res.error->source = ErrorSource::local;
      co_return;
    }
    std::shared_ptr<local_backend::Generation> gen = std::move(submitted).value();
    res.request_sent = true;
    if (ctx.cancel) {
      if (ctx.cancel->cancelled) { bridge->cancelled = true; gen->cancel(); }
      ctx.cancel->fn = [bridge, gen] {
        bridge->cancelled = true;
        gen->cancel();
      };
    }
    struct Cleanup {
      const AttemptContext& ctx;
      std::shared_ptr<Bridge> bridge;
      std::shared_ptr<local_backend::Generation> gen;
      bool finished = false;
      ~Cleanup() {
        if (ctx.cancel) ctx.cancel->fn = nullptr;
        if (!finished) { bridge->cancelled = true; gen->cancel(); }
      }
    } cleanup{ctx, bridge, gen};

    const std::string id = "chatcmpl-local-" + std::string(ctx.request_id);
    const int64_t created =
        std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
    const std::string& model = cfg_.model_name;
    res.stream_id = id;
    res.stream_model = model;
    res.stream_created = created;
    std::string text;
    bool role_sent = false;
    for (;;) {
      while (bridge->events.empty()) {
        timer->expires_at(ctx.total_deadline);
        co_await timer->async_wait(asio::as_tuple(core::use_task));
        if (bridge->events.empty() && std::chrono::steady_clock::now() >= ctx.total_deadline) {
          res.error = core::make_error(ErrorKind::timeout, "local generation exceeded the total deadline",
                                       ErrorSource::local);
          co_return;
        }
      }
      local_backend::GenerateEvent ev = std::move(bridge->events.front());
      bridge->events.pop_front();
      // Exact counts so far, for the accounting of a generation the client abandons.
      if (ev.prompt_tokens > 0) res.counted_prompt_tokens = ev.prompt_tokens;
      res.relayed_tokens = ev.completion_tokens;
      if (!ev.text.empty()) {
        if (res.ttft.count() == 0)
          res.ttft = std::chrono::duration_cast<Micros>(std::chrono::steady_clock::now() - started);
        if (sink) {
          if (!role_sent) {
            role_sent = true;
            if (!co_await sink->send(chunk_json(id, created, model, R"({"role":"assistant","content":""})", ""))) {
              res.error = core::make_error(ErrorKind::cancelled, "client disconnected", ErrorSource::client);
              co_return;
            }
          }
          std::string delta = "{\"content\":" + core::json_string(ev.text) + "}";
          res.content_sent = true;
          if (!co_await sink->send(chunk_json(id, created, model, delta, ""))) {
            res.error = core::make_error(ErrorKind::cancelled, "client disconnected", ErrorSource::client);
            co_return;
          }
        } else {
          text += ev.text;
        }
      }
      if (!ev.done) continue;
      cleanup.finished = true;
      res.usage.present = true;
      res.usage.prompt_tokens = ev.prompt_tokens;
      res.usage.completion_tokens = ev.completion_tokens;
      res.usage.cached_tokens = ev.cached_tokens;
      if (ev.finish_reason == "error" || ev.error) {
        res.error = ev.error ? *ev.error
                             : core::make_error(ErrorKind::server_error, "local generation failed", ErrorSource::local);
        res.error->source = ErrorSource::local;
        co_return;
      }
      if (ev.finish_reason == "cancelled") {
        // Cancelled before its prompt was read (still queued): bill the exact count anyway.
        if (res.usage.prompt_tokens == 0) {
          if (pretokenized > 0) res.usage.prompt_tokens = pretokenized;
          else if (auto n = engine_->count_prompt_tokens(req.messages); n.ok()) res.usage.prompt_tokens = *n;
        }
        res.error = core::make_error(ErrorKind::cancelled, "generation cancelled", ErrorSource::client);
        co_return;
      }
      res.finish_reason = ev.finish_reason.empty() ? "stop" : ev.finish_reason;
      break;
    }
    if (res.ttft.count() == 0) res.ttft = std::chrono::duration_cast<Micros>(std::chrono::steady_clock::now() - started);
    if (sink) {
      if (!role_sent)
        co_await sink->send(chunk_json(id, created, model, R"({"role":"assistant","content":""})", ""));
      res.content_sent = true;
      if (!co_await sink->send(chunk_json(id, created, model, "{}", res.finish_reason))) {
        res.error = core::make_error(ErrorKind::cancelled, "client disconnected", ErrorSource::client);
        co_return;
      }
      std::string u = "{\"id\":" + core::json_string(id) + ",\"object\":\"chat.completion.chunk\",\"created\":" +
                      std::to_string(created) + ",\"model\":" + core::json_string(model) +
                      ",\"choices\":[],\"usage\":" + usage_to_json(res.usage) + "}";
      res.usage_chunk = std::move(u);
    } else {
      std::string s = "{\"id\":" + core::json_string(id) + ",\"object\":\"chat.completion\",\"created\":" +
                      std::to_string(created) + ",\"model\":" + core::json_string(model) +
                      ",\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":" +
                      core::json_string(text) + "},\"finish_reason\":" + core::json_string(res.finish_reason) +
                      "}],\"usage\":" + usage_to_json(res.usage) + "}";
      res.body = std::move(s);
    }
    co_return;
  }

  size_t queue_depth() const override { return engine_->queue_depth(); }
  double decode_tokens_per_second() const override { return engine_->decode_tokens_per_second(); }
  int64_t context_window() const override { return engine_->context_size(); }
  std::string load_summary() const override {
    const double per_token = double(engine_->kv_bytes_per_token());
    const double full = per_token * engine_->context_size();
    char buf[320];
    std::snprintf(buf, sizeof buf,
                  "%s, context %d tokens, %d threads, KV cache %s: %.1f KiB per token (%.1f MiB per full-context sequence), "
                  "prefix cache %d MiB, %.0f MiB of weights repacked for AVX-512 VNNI",
                  engine_->model_name().c_str(), engine_->context_size(), engine_->threads(),
                  local_backend::kv_type_name(engine_->kv_type()), per_token / 1024.0, full / (1024.0 * 1024.0),
                  cfg_.prefix_cache_mb, double(engine_->repacked_weight_bytes()) / (1024.0 * 1024.0));
    return buf;
  }

 private:
  LocalProviderConfig cfg_;
  std::unique_ptr<local_backend::Engine> engine_;
  asio::thread_pool tokenizer_{1};  // long prompts' tokenization, off the I/O threads
};

class UnavailableLocalProvider final : public Provider {
 public:
  UnavailableLocalProvider(LocalProviderConfig cfg, std::string reason) : cfg_(std::move(cfg)), reason_(std::move(reason)) {}
  const std::string& name() const override { return cfg_.name; }
  const Dialect& dialect() const override { return *find_dialect("local"); }
  std::vector<std::string> regions() const override { return {cfg_.region}; }
  const std::string& default_region() const override { return cfg_.region; }
  bool available() const override { return false; }
  // What routing tells clients: the reason names the model file, so only the operator's log has it.
  std::string unavailable_reason() const override { return client_reason(); }
  int64_t context_window() const override { return cfg_.max_context; }
  core::Task<void> chat(const AttemptContext&, ChatSink*, AttemptResult& r) override {
    r.error = core::make_error(ErrorKind::unavailable, client_reason(), ErrorSource::local);
    r.error->log_detail = reason_;
    co_return;
  }

 private:
  std::string client_reason() const {
    return "the local model '" + cfg_.name + "' is unavailable (the gateway's start-up log says why)";
  }

  LocalProviderConfig cfg_;
  std::string reason_;
};

}  // namespace

std::unique_ptr<Provider> make_unavailable_local_provider(const LocalProviderConfig& config, std::string reason) {
  return std::make_unique<UnavailableLocalProvider>(config, std::move(reason));
}

core::Result<std::unique_ptr<Provider>> make_local_provider(const LocalProviderConfig& config) {
  if (config.model_path.empty())
    return core::make_error(ErrorKind::internal,
                            "local.model_path is empty: point it at a GGUF file (or run deploy/start.sh, which makes a demo model)");
  local_backend::EngineConfig ec;
  ec.model_path = config.model_path;
  ec.threads = config.threads;
  ec.max_queue = config.max_queue;
  ec.max_context = config.max_context;
  auto kv = local_backend::parse_kv_type(config.kv_type);
  if (!kv) return core::make_error(ErrorKind::internal, "local.kv_type must be f16, q8_0 or f32, not '" + config.kv_type + "'");
  ec.kv_type = *kv;
  ec.prefix_cache_bytes = static_cast<size_t>(std::max(0, config.prefix_cache_mb)) << 20;
  auto engine = local_backend::Engine::create(ec);
  if (!engine) {
    core::Error e = std::move(engine).error();
    e.message = "local model '" + config.model_path + "': " + e.message;
    return e;
  }
  return make_local_provider(config, std::move(engine).value());
}

std::unique_ptr<Provider> make_local_provider(const LocalProviderConfig& config, std::unique_ptr<local_backend::Engine> engine) {
  return std::make_unique<LocalProvider>(config, std::move(engine));
}

}  // namespace providers
