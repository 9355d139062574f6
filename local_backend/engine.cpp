#include "local_backend/engine.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <random>
#include <thread>

#include "local_backend/model.h"
#include "local_backend/sampler.h"
#include "local_backend/thread_pool.h"
#include "local_backend/tokenizer.h"
#include "local_backend/unicode.h"

namespace local_backend {
namespace {

using Clock = std::chrono::steady_clock;
constexpr size_t kPenaltyWindow = 64;

core::Error local_error(core::ErrorKind kind, std::string msg, std::string code = {}, std::string param = {}) {
  return core::make_error(kind, std::move(msg), core::ErrorSource::local, std::move(code), std::move(param));
}

// Moves complete UTF-8 from pending to out; bytes that can never form a valid character
// become U+FFFD, and an incomplete sequence at the end stays pending for the next token.
void drain_utf8(std::string* pending, std::string* out) {
  const std::string& p = *pending;
  const size_t keep_from = unicode::valid_utf8_prefix(p);
  size_t i = 0;
  while (i < keep_from) {
    size_t len = 1;
    const uint32_t cp = unicode::decode_utf8(std::string_view(p).substr(0, keep_from), i, &len);
    if (cp == unicode::kInvalid) out->append("\xEF\xBF\xBD");
    else out->append(p, i, len);
    i += len;
  }
  pending->erase(0, keep_from);
  // A "pending" tail that is already invalid (e.g. lead byte then ASCII) cannot happen: the
  // tail holds only a lead byte and continuation bytes.
}

// One generation: its prompt, KV cache, sampler and streaming state.
class Sequence : public Generation {
 public:
  // The scheduler only sleeps when nothing is waiting or running, so it notices the flag at
  // its next step without being woken.
  void cancel() override { cancelled.store(true, std::memory_order_release); }

  GenerateRequest req;
  std::function<bool(const GenerateEvent&)> on_event;
  std::atomic<bool> cancelled{false};
  std::vector<int32_t> tokens;  // prompt, then generated tokens
  int n_prompt = 0;
  int n_cached = 0;             // tokens already in the KV cache
  int n_reused = 0;             // of which copied from the prefix cache
  int n_generated = 0;
  std::unique_ptr<KvCache> cache;
  std::unique_ptr<Sampler> sampler;
  std::string pending_bytes;    // decoded bytes not yet forming complete UTF-8
  std::string held;             // text held back because it may start a stop string
  bool finished = false;
  bool admitted = false;        // counted in running_count_
};

class EngineImpl final : public Engine {
 public:
  EngineImpl(const EngineConfig& cfg, std::unique_ptr<Model> model, std::unique_ptr<Tokenizer> tok)
      : cfg_(cfg), model_(std::move(model)), tok_(std::move(tok)), pool_(cfg.threads), prefix_(cfg.prefix_cache_bytes) {
    n_ctx_ = cfg_.max_context;
    if (model_->hparams().n_ctx_train > 0) n_ctx_ = std::min(n_ctx_, model_->hparams().n_ctx_train);
    scheduler_ = std::thread([this] { loop(); });
  }

  ~EngineImpl() override {
    {
      std::lock_guard<std::mutex> lk(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    scheduler_.join();
  }

  core::Result<std::shared_ptr<Generation>> submit(GenerateRequest req,
                                                   std::function<bool(const GenerateEvent&)> on_event) override {
    if (!on_event) return local_error(core::ErrorKind::bad_request, "on_event callback is required");
    if (req.max_tokens <= 0) {
      return local_error(core::ErrorKind::bad_request, "max_tokens must be positive", "invalid_value", "max_tokens");
    }
    const SamplingParams& s = req.sampling;
    if (!(s.temperature >= 0 && s.temperature <= 100)) {
      return local_error(core::ErrorKind::bad_request, "temperature must be in [0, 100]", "invalid_value", "temperature");
    }
    if (!(s.top_p > 0 && s.top_p <= 1)) {
      return local_error(core::ErrorKind::bad_request, "top_p must be in (0, 1]", "invalid_value", "top_p");
    }
    if (!(s.min_p >= 0 && s.min_p <= 1)) {
      return local_error(core::ErrorKind::bad_request, "min_p must be in [0, 1]", "invalid_value", "min_p");
    }
    if (s.top_k < 0) return local_error(core::ErrorKind::bad_request, "top_k must be >= 0", "invalid_value", "top_k");
    if (!(s.repeat_penalty > 0 && s.repeat_penalty <= 10)) {
      return local_error(core::ErrorKind::bad_request, "repeat_penalty must be in (0, 10]", "invalid_value", "repeat_penalty");
    }
    if (req.stop.size() > 16) return local_error(core::ErrorKind::bad_request, "at most 16 stop strings", "invalid_value", "stop");
    for (const auto& st : req.stop)
      if (st.empty() || st.size() > 256) {
        return local_error(core::ErrorKind::bad_request, "stop strings must be 1..256 bytes", "invalid_value", "stop");
      }
    auto prompt = req.prompt_tokens ? core::Result<std::vector<int32_t>>(std::move(*req.prompt_tokens))
                                    : tok_->apply_chat_template(req.messages);
    req.prompt_tokens.reset();
    if (!prompt.ok()) return prompt.error();
    if (static_cast<int>(prompt->size()) >= n_ctx_) {
      return local_error(core::ErrorKind::context_too_long,
                         "prompt has " + std::to_string(prompt->size()) + " tokens; the local model's context is " +
                             std::to_string(n_ctx_) + " tokens",
                         "context_length_exceeded", "messages");
    }
    auto seq = std::make_shared<Sequence>();
    seq->tokens = std::move(*prompt);
    seq->n_prompt = static_cast<int>(seq->tokens.size());
    seq->req = std::move(req);
    seq->on_event = std::move(on_event);
    {
      std::lock_guard<std::mutex> lk(mu_);
      if (stop_) return local_error(core::ErrorKind::unavailable, "local engine is shutting down");
      if (waiting_.size() + running_count_ >= static_cast<size_t>(cfg_.max_queue)) {
        core::Error e = local_error(core::ErrorKind::overloaded,
                                    "local engine queue is full (" + std::to_string(cfg_.max_queue) + " generations)",
                                    "queue_full");
        e.back_pressure = true;
        return e;
      }
      waiting_.push_back(seq);
      depth_.store(waiting_.size() + running_count_);
    }
    cv_.notify_one();
    return std::shared_ptr<Generation>(seq);
  }

  size_t queue_depth() const override { return depth_.load(); }
  double decode_tokens_per_second() const override { return tps_.load(); }
  std::string model_name() const override { return model_->name(); }
  int context_size() const override { return n_ctx_; }
  int threads() const override { return pool_.size(); }
  KvType kv_type() const override { return cfg_.kv_type; }
  size_t repacked_weight_bytes() const override { return model_->repacked_bytes(); }
  size_t kv_bytes_per_token() const override { return local_backend::kv_bytes_per_token(model_->hparams(), cfg_.kv_type); }
  PrefixCacheStats prefix_cache_stats() const override {
    std::lock_guard<std::mutex> lk(stats_mu_);
    return prefix_stats_;
  }
  core::Result<int> count_prompt_tokens(const std::vector<core::ChatMessage>& messages) const override {
    auto p = tok_->apply_chat_template(messages);
    if (!p.ok()) return p.error();
    return static_cast<int>(p->size());
  }

  core::Result<std::vector<int32_t>> tokenize_prompt(const std::vector<core::ChatMessage>& messages) const override {
    return tok_->apply_chat_template(messages);
  }

 private:
  void loop() {
    std::vector<std::shared_ptr<Sequence>> running, cancelled_waiting;
    std::random_device rd;
    for (;;) {
      {
        std::unique_lock<std::mutex> lk(mu_);
        cv_.wait(lk, [&] { return stop_ || !waiting_.empty() || !running.empty(); });
        if (stop_) {
          for (auto& s : waiting_) running.push_back(s);
          waiting_.clear();
          lk.unlock();
          for (auto& s : running) finish(*s, "cancelled", std::nullopt);
          return;
        }
        // Generations cancelled while still waiting leave the queue now, not when a slot frees.
        for (auto it = waiting_.begin(); it != waiting_.end();) {
          if ((*it)->cancelled.load(std::memory_order_acquire)) {
            cancelled_waiting.push_back(*it);
            it = waiting_.erase(it);
          } else {
            ++it;
          }
        }
        while (running.size() < static_cast<size_t>(cfg_.max_batch) && !waiting_.empty()) {
          auto s = waiting_.front();
          waiting_.pop_front();
          s->admitted = true;
          running.push_back(s);
        }
        running_count_ = running.size();
        depth_.store(waiting_.size() + running_count_);
      }
      for (auto& s : cancelled_waiting) finish(*s, "cancelled", std::nullopt);
      cancelled_waiting.clear();
      for (auto& s : running) {
        if (!s->cache) {
          const int cap = std::min(n_ctx_, s->n_prompt + s->req.max_tokens);
          s->cache = std::make_unique<KvCache>(model_->hparams(), cap, cfg_.kv_type);
          s->n_reused = s->n_cached = prefix_.reuse(s->tokens, s->cache.get());
          publish_prefix_stats();
          s->sampler = std::make_unique<Sampler>(s->req.sampling, (static_cast<uint64_t>(rd()) << 32) ^ rd());
        }
        if (s->cancelled.load(std::memory_order_acquire)) finish(*s, "cancelled", std::nullopt);
      }
      remove_finished(&running);
      if (running.empty()) continue;
      step(running);
      remove_finished(&running);
    }
  }

  void remove_finished(std::vector<std::shared_ptr<Sequence>>* running) {
    running->erase(std::remove_if(running->begin(), running->end(), [](const auto& s) { return s->finished; }),
                   running->end());
  }

  // One engine step: every decoding sequence advances by one token; sequences still reading
  // their prompt share a budget of prefill_chunk tokens (round-robin), so a long prompt cannot
  // stall the others for long.
  void step(std::vector<std::shared_ptr<Sequence>>& running) {
    std::vector<BatchEntry> batch;
    std::vector<Sequence*> wants;  // sequences whose last batch entry produces logits
    int budget = std::max(1, cfg_.prefill_chunk);
    const size_t n = running.size();
    for (size_t k = 0; k < n; ++k) {
      Sequence& s = *running[(k + rr_) % n];
      const int remaining = static_cast<int>(s.tokens.size()) - s.n_cached;
      if (remaining <= 0) continue;
      int take = remaining;
      if (remaining > 1) {  // prefill
        if (budget <= 0) continue;
        take = std::min(remaining, budget);
        budget -= take;
      }
      for (int i = 0; i < take; ++i) {
        const int pos = s.n_cached + i;
        const bool last = pos + 1 == static_cast<int>(s.tokens.size());
        batch.push_back({s.tokens[static_cast<size_t>(pos)], pos, s.cache.get(), last});
        if (last) wants.push_back(&s);
      }
      s.n_cached += take;
    }
    ++rr_;
    if (batch.empty()) return;
    const auto t0 = Clock::now();
    logits_.clear();
    auto st = model_->forward(batch, pool_, &logits_);
    if (!st.ok()) {
      for (auto& s : running) finish(*s, "error", st.error());
      return;
    }
    const int64_t V = model_->hparams().n_vocab;
    int sampled = 0;
    for (size_t i = 0; i < wants.size(); ++i) {
      Sequence& s = *wants[i];
      std::span<float> lg(logits_.data() + i * static_cast<size_t>(V), static_cast<size_t>(V));
      if (s.req.ignore_eos) {
        for (int32_t id = 0; id < static_cast<int32_t>(V); ++id)
          if (tok_->is_end_of_generation(id)) lg[static_cast<size_t>(id)] = -INFINITY;
      }
      if (s.n_generated == 0 && s.req.on_first_logits) s.req.on_first_logits(lg);
      const size_t from = s.tokens.size() > kPenaltyWindow ? s.tokens.size() - kPenaltyWindow : 0;
      const int32_t tok = s.sampler->sample(lg, std::span<const int32_t>(s.tokens.data() + from, s.tokens.size() - from));
      ++sampled;
      on_token(s, tok);
    }
    const double secs = std::chrono::duration<double>(Clock::now() - t0).count();
    // Only pure decode steps (one token per sequence) feed the decode-rate EWMA; steps that
    // carry prompt chunks would understate it.
    if (sampled > 0 && secs > 0 && batch.size() == wants.size()) {
      const double rate = sampled / secs;
      const double old = tps_.load();
      tps_.store(old == 0 ? rate : 0.8 * old + 0.2 * rate);
    }
  }

  void on_token(Sequence& s, int32_t tok) {
    if (s.cancelled.load(std::memory_order_acquire)) return finish(s, "cancelled", std::nullopt);
    if (tok_->is_end_of_generation(tok)) return finish(s, "stop", std::nullopt);
    ++s.n_generated;
    s.tokens.push_back(tok);
    s.pending_bytes += tok_->token_bytes(tok);
    drain_utf8(&s.pending_bytes, &s.held);
    // A complete stop string ends the generation; text before it is delivered.
    size_t stop_at = std::string::npos;
    for (const auto& st : s.req.stop) stop_at = std::min(stop_at, s.held.find(st));
    if (stop_at != std::string::npos) {
      s.held.resize(stop_at);
      s.pending_bytes.clear();
      return finish(s, "stop", std::nullopt);
    }
    // Hold back the longest suffix that could still become a stop string.
    size_t hold = 0;
    for (const auto& st : s.req.stop)
      for (size_t len = std::min(st.size() - 1, s.held.size()); len > hold; --len)
        if (s.held.compare(s.held.size() - len, len, st, 0, len) == 0) {
          hold = len;
          break;
        }
    const bool out_of_room = s.n_generated >= s.req.max_tokens || static_cast<int>(s.tokens.size()) >= s.cache->max_positions();
    if (out_of_room) return finish(s, "length", std::nullopt);
    GenerateEvent ev;
    ev.text = s.held.substr(0, s.held.size() - hold);
    s.held.erase(0, s.held.size() - hold);
    ev.prompt_tokens = s.n_prompt;
    ev.completion_tokens = s.n_generated;
    ev.cached_tokens = s.n_reused;
    if (!ev.text.empty() && !s.on_event(ev)) finish(s, "cancelled", std::nullopt);
  }

  void finish(Sequence& s, const char* reason, std::optional<core::Error> err) {
    if (s.finished) return;
    s.finished = true;
    if (s.admitted) {
      // The depth drops before the done event, so a client that saw "done" sees the new depth.
      std::lock_guard<std::mutex> lk(mu_);
      --running_count_;
      depth_.store(waiting_.size() + running_count_);
    }
    GenerateEvent ev;
    ev.done = true;
    ev.finish_reason = reason;
    if (std::string(reason) != "cancelled" && std::string(reason) != "error") {
      // Flush held-back text; an incomplete trailing UTF-8 sequence becomes U+FFFD.
      ev.text = std::move(s.held);
      if (!s.pending_bytes.empty()) ev.text += "\xEF\xBF\xBD";
    }
    ev.prompt_tokens = s.n_prompt;
    ev.completion_tokens = s.n_generated;
    ev.cached_tokens = s.n_reused;
    if (!err && std::string(reason) != "error" && s.cache && s.n_cached > 0) {
      // Positions [0, n_cached) hold the KV of the first n_cached tokens (prompt, then the
      // generated tokens fed back); a later prompt repeating them reuses the rows. Kept before
      // the done event, so a client's next request after "done" finds them.
      s.tokens.resize(static_cast<size_t>(s.n_cached));
      prefix_.insert(std::move(s.tokens), std::move(s.cache));
      publish_prefix_stats();
    }
    s.cache.reset();
    ev.error = std::move(err);
    s.on_event(ev);
    s.on_event = nullptr;  // release captured state; never called again
  }

  void publish_prefix_stats() {
    std::lock_guard<std::mutex> lk(stats_mu_);
    prefix_stats_ = prefix_.stats();
  }

  EngineConfig cfg_;
  std::unique_ptr<Model> model_;
  std::unique_ptr<Tokenizer> tok_;
  mutable ThreadPool pool_;
  int n_ctx_ = 0;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::shared_ptr<Sequence>> waiting_;
  size_t running_count_ = 0;
  bool stop_ = false;
  std::atomic<size_t> depth_{0};
  std::atomic<double> tps_{0.0};
  std::vector<float> logits_;
  size_t rr_ = 0;
  PrefixCache prefix_;  // scheduler thread only
  mutable std::mutex stats_mu_;
  PrefixCacheStats prefix_stats_;  // copy of prefix_.stats() for other threads
  std::thread scheduler_;
};

}  // namespace

core::Result<std::unique_ptr<Engine>> Engine::create(const EngineConfig& cfg) {
  if (cfg.model_path.empty()) return local_error(core::ErrorKind::bad_request, "local backend: model_path is empty", "config");
  if (cfg.max_queue <= 0 || cfg.max_batch <= 0 || cfg.max_context < 16 || cfg.threads < 0 || cfg.threads > 1024 ||
      cfg.prefill_chunk <= 0) {
    return local_error(core::ErrorKind::bad_request,
                       "local backend: invalid config (max_queue, max_batch, prefill_chunk > 0; max_context >= 16; threads 0..1024)",
                       "config");
  }
  auto model = Model::load(cfg.model_path);
  if (!model.ok()) return model.error();
  if (!kv_type_fits(cfg.kv_type, (*model)->hparams())) {
    return local_error(core::ErrorKind::bad_request,
                       std::string("local backend: kv_type ") + kv_type_name(cfg.kv_type) + " needs the model's head_dim (" +
                           std::to_string((*model)->hparams().head_dim) + ") to be a multiple of 32",
                       "config");
  }
  auto tok = Tokenizer::from_gguf((*model)->file());
  if (!tok.ok()) {
    core::Error e = tok.error();
    e.message += " (file '" + cfg.model_path + "')";
    return e;
  }
  if ((*tok)->n_vocab() != (*model)->hparams().n_vocab) {
    return local_error(core::ErrorKind::internal, "model: vocabulary size mismatch between tokenizer and token_embd.weight",
                       "model_invalid");
  }
  return std::unique_ptr<Engine>(new EngineImpl(cfg, std::move(*model), std::move(*tok)));
}

}  // namespace local_backend
