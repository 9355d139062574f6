// The attempts phase: each planned candidate in turn until one answers. Before any content reached
// the client a failure fails over (when retryable); after content the stream ends in-band with the
// error. Every attempt is accounted (accounting.h) before its final bytes are sent.
#include "gateway/pipeline/accounting.h"
#include "gateway/pipeline/phases.h"

namespace gateway {
namespace {

using Clock = PipelineClock;
double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// Forwards stream events and keeps a copy of them for the response cache (up to max_bytes).
class RecordingSink final : public providers::ChatSink {
 public:
  // `inner` is null for a request that is not streamed (nothing is sent through it then).
  RecordingSink(providers::ChatSink* inner, size_t max_bytes) : inner_(inner), max_bytes_(max_bytes) {}
  core::Task<bool> send(std::string_view data) override {
    if (!overflow_) {
      bytes_ += data.size();
      if (bytes_ > max_bytes_) { overflow_ = true; chunks_.clear(); }
      else chunks_.emplace_back(data);
    }
    co_return co_await inner_->send(data);
  }
  void restart() { chunks_.clear(); bytes_ = 0; overflow_ = false; }  // a new attempt
  bool complete() const { return !overflow_; }
  std::vector<std::string>& chunks() { return chunks_; }

 private:
  providers::ChatSink* inner_;
  size_t max_bytes_;
  size_t bytes_ = 0;
  bool overflow_ = false;
  std::vector<std::string> chunks_;
};

// Once an attempt's first bytes reach the client no other deployment will be tried, so the
// request's text (the client's body and its parsed messages: twice a prompt that an agent's turn
// makes hundreds of KiB) is not needed for the rest of the stream: it goes back at the first event
// that passes here, with the body's share of the budget when the surface keeps no copy of it.
// Not coroutines: each send is the inner sink's.
class CommitRelease final : public providers::ChatSink, public providers::EventSink {
 public:
  CommitRelease(RequestContext& ctx, providers::ChatSink* chat, providers::EventSink* events)
      : ctx_(ctx), chat_(chat), events_(events) {}
  core::Task<bool> send(std::string_view data) override {
    release();
    return chat_->send(data);
  }
  core::Task<bool> send_event(std::string_view event, std::string_view data) override {
    release();
    return events_->send_event(event, data);
  }
  providers::ChatSink* chat() { return chat_ ? this : nullptr; }
  providers::EventSink* events() { return events_ ? this : nullptr; }

 private:
  void release() {
    if (released_) return;
    released_ = true;
    std::string().swap(ctx_.req.raw_body);
    std::vector<core::ChatMessage>().swap(ctx_.req.messages);
    ctx_.features.messages = {};  // a view of them
    if (!ctx_.surface.keeps_client_body()) ctx_.io.release_request_body();
  }

  RequestContext& ctx_;
  providers::ChatSink* chat_;
  providers::EventSink* events_;
  bool released_ = false;
};

// What the attempt loop carries from one attempt to the next.
struct LoopState {
  std::optional<core::Error> last_error;
  // Set when a deployment refused the request as too long for its window: what it had.
  std::optional<int64_t> refused_window;
};

// Whether the deployment's endpoint speaks the client's API, so that the request is relayed as it came.
bool speaks(const providers::Provider& p, const providers::NativeRequest& native, const std::string& region) {
  switch (native.api) {
    case providers::NativeApi::anthropic_messages: return p.speaks_anthropic(region);
    case providers::NativeApi::openai_responses: return p.speaks_responses(region);
  }
  return false;
}

// After a deployment refused the request as longer than its window (the catalog overstated it), a
// later candidate is tried only if its known window is larger than the refusing one's and holds the
// input estimate plus max_tokens: a window no larger, or unknown, would refuse the same way.
bool larger_window_fits(const routing::PlannedAttempt& a, int64_t refused_window, const routing::RequestFeatures& f) {
  if (a.context_window <= 0 || a.context_window <= refused_window) return false;
  return f.est_input_tokens + f.max_tokens.value_or(0) <= a.context_window;
}

// Whether `attempt` is worth starting: attempts, time and the client remain, and after a
// context-window refusal only a larger window is tried.
enum class Next { stop, skip, run };
Next next_attempt(const RequestContext& ctx, const LoopState& loop, const routing::PlannedAttempt& attempt,
                  const Clock::time_point total_deadline) {
  if (ctx.rec.attempts >= ctx.svc.settings.max_attempts || ctx.hook.cancelled || Clock::now() >= total_deadline)
    return Next::stop;
  if (loop.refused_window && !larger_window_fits(attempt, *loop.refused_window, ctx.features)) return Next::skip;
  return Next::run;
}

// Starting an attempt: the response headers that name it, and what the provider is given.
providers::AttemptContext start_attempt(RequestContext& ctx, const routing::PlannedAttempt& attempt,
                                        Clock::time_point total_deadline) {
  if (ctx.rec.attempts > 0) ctx.svc.metrics->failover(ctx.req.model);
  ++ctx.rec.attempts;
  ctx.rec.deployment = attempt.deployment.id;
  ctx.io.set_header("x-gateway-deployment", attempt.deployment.id);
  ctx.io.set_header("x-gateway-attempts", std::to_string(ctx.rec.attempts));
  ctx.io.set_header("x-gateway-route", ctx.plan.route);
  providers::AttemptContext ac;
  ac.request = &ctx.req;
  ac.target = {attempt.deployment.provider, attempt.deployment.region, attempt.deployment.model};
  ac.timeouts = ctx.svc.settings.timeouts;
  ac.total_deadline = total_deadline;
  ac.request_id = ctx.rec.request_id;
  ac.client = &ctx.client;
  ac.cancel = &ctx.hook;
  ctx.router->attempt_started(attempt.deployment.id);
  return ac;
}

// What the finished attempt says about the deployment's health (live stats, metrics); a usage
// report that cannot be true is dropped first.
void finish_attempt(RequestContext& ctx, const routing::PlannedAttempt& attempt, providers::AttemptResult& r,
                    Clock::time_point started) {
  // An embeddings request's usage is bounded per input row, not per answer.
  const size_t rows = ctx.req.embedding ? ctx.req.embedding->rows.size() : 1;
  reject_implausible_usage(*ctx.svc.metrics, r, attempt, static_cast<int64_t>(rows));
  routing::AttemptOutcome outcome;
  outcome.deployment = attempt.deployment.id;
  outcome.ok = !r.error;
  outcome.error = r.error;
  outcome.ttft = r.ttft;
  outcome.duration = std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - started);
  outcome.output_tokens = r.usage.completion_tokens;
  outcome.prefix_hash = ctx.features.prefix_hash;
  // A client that left says nothing about the deployment's health.
  if (!(r.error && r.error->kind == core::ErrorKind::cancelled)) ctx.router->record(outcome);
  ctx.svc.metrics->attempt_done(attempt.deployment.id, r.error ? core::to_string(r.error->kind) : "ok",
                                seconds_since(started), std::chrono::duration<double>(r.ttft).count(), ctx.req.stream);
}

StreamClose stream_close(const RequestContext& ctx, const providers::AttemptResult& r, const AttemptAccount& a) {
  StreamClose c;
  c.result = &r;
  c.counted = a.counted();
  c.cost = a.cost;
  c.request_id = ctx.rec.request_id;
  c.created = ctx.created;
  c.native = ctx.native;
  return c;
}

// The attempt succeeded: the answer's last bytes (its stream's closing events, or the whole
// body), stored in the cache when it is cacheable and complete.
core::Task<int> deliver(RequestContext& ctx, const routing::PlannedAttempt& attempt, providers::AttemptResult& r,
                        const AttemptAccount& a, RecordingSink& recorder) {
  bool ok = true;
  if (ctx.req.stream) {
    providers::ChatSink& head = ctx.cache_key.empty() ? ctx.surface.stream_sink() : recorder;
    ok = co_await ctx.surface.close_stream(head, stream_close(ctx, r, a));
    // A native relay's events are the upstream's API, not the chunks a cache entry replays.
    if (ok && !ctx.cache_key.empty() && !ctx.native && recorder.complete()) {
      CachedResponse entry;
      entry.chunks = std::move(recorder.chunks());
      entry.deployment = attempt.deployment.id;
      co_await store_in_cache(ctx, r, std::move(entry));
    }
  } else {
    if (a.cost) ctx.io.set_header("x-gateway-cost-usd", core::format_usd(*a.cost));
    if (!ctx.cache_key.empty() && !ctx.native) {
      CachedResponse entry;
      entry.body = r.body;
      entry.deployment = attempt.deployment.id;
      co_await store_in_cache(ctx, r, std::move(entry));
    }
    auto body = co_await ctx.surface.answer_body(std::move(r.body), ctx.native);
    if (!body) {
      // Accounted (the upstream answered and billed), but not expressible in the client's API.
      const int failed = note_failure(ctx, body.error());
      co_await ctx.io.respond(failed, "application/json", ctx.surface.error_body(body.error()));
      ctx.svc.metrics->request_done(ctx.req.model, attempt.deployment.id, failed, ctx.seconds());
      co_return failed;
    }
    ok = co_await ctx.io.respond(200, "application/json", std::move(body).value());
  }
  const int status = ok ? 200 : 499;
  if (!a.durable) ctx.rec.error = "ledger: entry not confirmed durable in time";
  ctx.svc.metrics->request_done(ctx.req.model, attempt.deployment.id, status, ctx.seconds());
  co_return status;
}

// Content already reached the client: the stream ends in-band, never with a fabricated success.
core::Task<int> fail_after_content(RequestContext& ctx, const providers::AttemptResult& r, const AttemptAccount& a) {
  note_failure(ctx, *r.error);
  co_await ctx.surface.fail_stream(stream_close(ctx, r, a), *r.error);
  ctx.svc.metrics->request_failed_after_content(ctx.req.model, ctx.rec.deployment, ctx.seconds());
  co_return 200;
}

// No attempt answered (or none could be tried): the last error, with how many attempts it took.
core::Task<int> no_answer(RequestContext& ctx, const LoopState& loop) {
  core::Error e = loop.last_error ? *loop.last_error
                                  : core::make_error(core::ErrorKind::unavailable,
                                                     "no deployment could be tried for model '" + ctx.req.model + "'");
  if (loop.last_error && ctx.rec.attempts > 1) e.message += " (after " + std::to_string(ctx.rec.attempts) + " attempts)";
  const std::string deployment = ctx.rec.deployment.empty() ? "none" : ctx.rec.deployment;
  co_return co_await refuse(ctx, e, ctx.req.model, deployment);
}

// The gateway's drain deadline passed: the client is still there and is told why its request ended.
core::Error draining_error() {
  return core::make_error(core::ErrorKind::unavailable,
                          "the gateway is shutting down: its drain deadline passed before the answer was complete",
                          core::ErrorSource::gateway, "gateway_draining");
}

// What follows a failed attempt: the stream ends in-band (content reached the client, or the drain
// deadline passed after it did), the client is gone, the next candidate is tried (a retryable
// failure, or a window too small for the request), or nothing more is tried.
enum class AfterFailure { in_band, client_gone, next, stop };
AfterFailure after_failure(RequestContext& ctx, const routing::PlannedAttempt& attempt, providers::AttemptResult& r,
                           LoopState& loop) {
  loop.last_error = r.error;
  if (ctx.hook.reason == providers::CancelHook::Reason::drain) {
    loop.last_error = r.error = draining_error();
    return r.content_sent || ctx.io.committed() ? AfterFailure::in_band : AfterFailure::stop;
  }
  if (ctx.hook.cancelled || r.error->kind == core::ErrorKind::cancelled) {
    ctx.rec.error = "cancelled: client disconnected";
    ctx.svc.metrics->error("cancelled");
    ctx.svc.metrics->request_done(ctx.req.model, attempt.deployment.id, 499, ctx.seconds());
    return AfterFailure::client_gone;
  }
  if (r.content_sent || ctx.io.committed()) return AfterFailure::in_band;
  if (r.error->kind == core::ErrorKind::context_too_long && r.error->source != core::ErrorSource::client) {
    loop.refused_window = loop.refused_window ? std::min(*loop.refused_window, attempt.context_window)
                                              : attempt.context_window;
    return AfterFailure::next;
  }
  return r.error->retryable() ? AfterFailure::next : AfterFailure::stop;
}

// The provider call that runs the attempt, its outcome written into `r`: embeddings, the client's
// API relayed natively, or a translated chat. Not a coroutine: the provider's is what runs.
core::Task<void> call_provider(RequestContext& ctx, providers::Provider& provider, providers::AttemptContext& ac,
                               const providers::NativeRequest* native, providers::ChatSink* head,
                               providers::EventSink* native_head, providers::AttemptResult& r) {
  if (ctx.req.embedding) {
    ac.embedding = ctx.req.embedding.get();
    return provider.embeddings(ac, r);
  }
  if (!ctx.native) return provider.chat(ac, head, r);
  ac.native = native;
  providers::EventSink* native_sink = ctx.req.stream ? native_head : nullptr;
  if (native->api == providers::NativeApi::openai_responses) return provider.openai_responses(ac, native_sink, r);
  return provider.anthropic_messages(ac, native_sink, r);
}

// How an attempt ended the request (its status), or whether the next candidate is tried.
struct AfterAttempt {
  std::optional<int> status;
  bool next = false;
};

// The finished attempt: accounted, then its answer delivered, its failure ended in-band, or the
// loop told what follows. Its own coroutine: the account is not kept while an attempt streams.
core::Task<AfterAttempt> conclude(RequestContext& ctx, const routing::PlannedAttempt& attempt,
                                  providers::AttemptResult& r, Clock::time_point started, LoopState& loop,
                                  RecordingSink& recorder) {
  finish_attempt(ctx, attempt, r, started);
  AttemptAccount a = account_attempt(ctx, attempt, r);
  // Before the final bytes: the client never holds a complete answer the ledger lacks.
  if (a.entry) a.durable = co_await ledger_durable(ctx.svc, std::move(*a.entry));
  if (!r.error) {
    ctx.router->served(ctx.plan, attempt.deployment.id, a.cost ? a.cost->usd() : 0.0);
    co_return AfterAttempt{co_await deliver(ctx, attempt, r, a, recorder)};
  }
  switch (after_failure(ctx, attempt, r, loop)) {
    case AfterFailure::in_band: co_return AfterAttempt{co_await fail_after_content(ctx, r, a)};
    case AfterFailure::client_gone: co_return AfterAttempt{499};
    case AfterFailure::next: co_return AfterAttempt{std::nullopt, true};
    case AfterFailure::stop: break;
  }
  co_return AfterAttempt{};
}

}  // namespace

core::Task<int> run_attempts(RequestContext& ctx) {
  const auto total_deadline = ctx.t0 + ctx.svc.settings.timeouts.total;
  ctx.created =
      std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
  // Where a streamed attempt's chunks go: the surface's sink, through the cache's recorder when the
  // answer may be stored. A request that is not streamed has no sink.
  providers::ChatSink* sink = ctx.req.stream ? &ctx.surface.stream_sink() : nullptr;
  RecordingSink recorder(sink, ctx.cache_key.empty() ? 0 : size_t(1) << 20);
  CommitRelease release(ctx, sink && !ctx.cache_key.empty() ? &recorder : sink,
                        ctx.req.stream ? ctx.surface.native_sink() : nullptr);
  providers::ChatSink* head = release.chat();
  LoopState loop;
  for (const auto& attempt : ctx.plan.attempts) {
    const Next next = next_attempt(ctx, loop, attempt, total_deadline);
    if (next == Next::stop) break;
    if (next == Next::skip) continue;
    providers::Provider* provider = ctx.svc.find_provider(attempt.deployment.provider);
    if (!provider) continue;
    // The client's API, relayed as it came, where the deployment speaks it; else translated.
    const providers::NativeRequest* native = ctx.surface.native_request();
    ctx.native = native && speaks(*provider, *native, attempt.deployment.region);
    if (!ctx.native && ctx.surface.translation_refusal()) {
      // Not the deployment's fault and not tried: a later native candidate may still carry it.
      loop.last_error = *ctx.surface.translation_refusal();
      continue;
    }
    recorder.restart();
    providers::AttemptContext ac = start_attempt(ctx, attempt, total_deadline);
    const auto started = Clock::now();
    providers::AttemptResult r;
    co_await call_provider(ctx, *provider, ac, native, head, release.events(), r);
    const AfterAttempt after = co_await conclude(ctx, attempt, r, started, loop, recorder);
    if (after.status) co_return *after.status;
    if (!after.next) break;
  }
  if (ctx.hook.cancelled && ctx.hook.reason == providers::CancelHook::Reason::client_gone)
    co_return client_left(ctx, "between attempts");
  co_return co_await no_answer(ctx, loop);
}

}  // namespace gateway
