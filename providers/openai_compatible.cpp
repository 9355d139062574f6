#include "providers/openai_compatible.h"

#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "providers/anthropic_relay.h"
#include "providers/anthropic_wire.h"
#include "providers/embeddings_wire.h"
#include "providers/error_map.h"
#include "providers/glm_jwt.h"
#include "providers/openai_normalize.h"
#include "providers/request_builder.h"
#include "providers/responses_wire.h"
#include "providers/sse_reader.h"

namespace providers {
namespace {

namespace asio = boost::asio;
using core::ErrorKind;
using core::ErrorSource;
using Micros = std::chrono::microseconds;

constexpr size_t kMaxErrorBody = 64 * 1024;
constexpr size_t kMaxResponseBody = 64 * 1024 * 1024;

class OpenAICompatibleProvider final : public Provider {
 public:
  OpenAICompatibleProvider(ProviderConfig cfg, const Dialect& dialect, std::map<std::string, Endpoint> endpoints,
                           std::map<std::string, Endpoint> anthropic_endpoints,
                           std::map<std::string, Endpoint> responses_endpoints, std::string default_region,
                           std::string key, std::string unavailable_reason, AuthScheme auth)
      : cfg_(std::move(cfg)), dialect_(dialect), endpoints_(std::move(endpoints)),
        anthropic_endpoints_(std::move(anthropic_endpoints)), responses_endpoints_(std::move(responses_endpoints)),
        default_region_(std::move(default_region)), key_(std::move(key)),
        unavailable_reason_(std::move(unavailable_reason)), auth_(auth) {
    // Fixed per provider: computed once, not per request.
    for (const auto& [region, ep] : endpoints_) {
      chat_targets_[region] = ep.base_path + "/chat/completions";
      embeddings_targets_[region] = ep.base_path + "/embeddings";
    }
    for (const auto& [region, ep] : anthropic_endpoints_) messages_targets_[region] = ep.base_path + "/v1/messages";
    for (const auto& [region, ep] : responses_endpoints_) responses_targets_[region] = ep.base_path + "/responses";
    if (auth_ == AuthScheme::bearer && !key_.empty()) bearer_ = "Bearer " + key_;
    // An upstream that echoes the key must not carry it into a client's error or the log.
    register_secret(key_);
    if (auto dot = key_.find('.'); dot != std::string::npos) register_secret(key_.substr(dot + 1));  // GLM "id.secret"
  }

  const std::string& name() const override { return cfg_.name; }
  const Dialect& dialect() const override { return dialect_; }
  const std::string& default_region() const override { return default_region_; }
  std::vector<std::string> regions() const override {
    std::vector<std::string> r;
    for (const auto& [k, v] : endpoints_) r.push_back(k);
    return r;
  }
  bool available() const override { return unavailable_reason_.empty(); }
  std::string unavailable_reason() const override { return unavailable_reason_; }

  bool speaks_anthropic(const std::string& region) const override {
    return anthropic_endpoints_.count(region.empty() ? default_region_ : region) > 0;
  }

  bool speaks_responses(const std::string& region) const override {
    return responses_targets_.count(region.empty() ? default_region_ : region) > 0;
  }

  core::Task<void> anthropic_messages(const AttemptContext& ctx, EventSink* sink, AttemptResult& res) override {
    return native_attempt(ctx, sink, NativeApi::anthropic_messages, res);
  }

  core::Task<void> openai_responses(const AttemptContext& ctx, EventSink* sink, AttemptResult& res) override {
    return native_attempt(ctx, sink, NativeApi::openai_responses, res);
  }

  core::Task<void> chat(const AttemptContext& ctx, ChatSink* sink, AttemptResult& res) override {
    const auto started = std::chrono::steady_clock::now();
    auto ex = co_await open_chat(ctx, sink != nullptr, res);
    if (!ex) co_return;
    HookGuard clear{ctx.cancel};
    if (sink) co_await relay_stream(ctx, *ex, *sink, started, res);
    else co_await read_answer(ctx, *ex, started, res);
    co_return;
  }

  // The upstream request (its body, its headers) lives only in this frame, not while the answer is
  // relayed: the exchange, or nullptr with res.error set.
  core::Task<std::unique_ptr<UpstreamExchange>> open_chat(const AttemptContext& ctx, bool stream, AttemptResult& res) {
    const std::string& region = ctx.target.region.empty() ? default_region_ : ctx.target.region;
    auto ep = endpoints_.find(region);
    if (ep == endpoints_.end()) {
      res.error = core::make_error(ErrorKind::internal,
                                   "provider '" + cfg_.name + "' has no region '" + region + "'", ErrorSource::gateway);
      co_return nullptr;
    }
    if (!available()) {
      res.error = core::make_error(ErrorKind::unavailable, unavailable_reason_, ErrorSource::gateway);
      co_return nullptr;
    }
    std::string jwt_header;  // lives in this frame: the request holds a view of it
    auto req = openai_request(ctx, chat_targets_.at(region),
                              build_upstream_body(ctx.request->raw_body, ctx.target.model, stream), stream, jwt_header);
    if (!req) {
      res.error = std::move(req).error();
      co_return nullptr;
    }
    co_return co_await open_exchange(ctx, ep->second, *req, classify_upstream_error, res);
  }

  // A non-stream answer: read whole and normalised into res.
  core::Task<void> read_answer(const AttemptContext& ctx, UpstreamExchange& ex,
                               std::chrono::steady_clock::time_point started, AttemptResult& res) {
    auto all = co_await read_body(ctx, ex);
    if (!all) {
      res.error = std::move(all).error();
      co_return;
    }
    auto norm = normalize_response(dialect_, *all);
    if (!norm) {
      res.error = std::move(norm).error();
      co_return;
    }
    res.body = std::move(norm->body);
    res.usage = norm->usage;
    res.finish_reason = norm->finish_reason;
    res.ttft = std::chrono::duration_cast<Micros>(std::chrono::steady_clock::now() - started);
  }

  core::Task<void> embeddings(const AttemptContext& ctx, AttemptResult& res) override {
    const auto started = std::chrono::steady_clock::now();
    const std::string& region = ctx.target.region.empty() ? default_region_ : ctx.target.region;
    auto ep = endpoints_.find(region);
    if (dialect_.embedding_batch_rows == 0 || ep == endpoints_.end() || ctx.embedding == nullptr) {
      res.error = core::make_error(ErrorKind::unavailable,
                                   "provider '" + cfg_.name + "' has no embeddings API for region '" + region + "'",
                                   ErrorSource::gateway, "no_embeddings_api");
      co_return;
    }
    if (!available()) {
      res.error = core::make_error(ErrorKind::unavailable, unavailable_reason_, ErrorSource::gateway);
      co_return;
    }
    const core::EmbeddingRequest& er = *ctx.embedding;
    std::vector<std::string> vectors(er.rows.size());
    core::Usage usage;
    usage.present = true;
    for (const auto& [begin, end] : split_batches(er.rows.size(), dialect_.embedding_batch_rows)) {
      auto batch = co_await embeddings_batch(ctx, ep->second, region, begin, end, res);
      if (!batch) co_return;  // res.error set: the whole attempt fails, nothing partial is kept
      for (size_t i = begin; i < end; ++i) vectors[i] = std::move(batch->vectors[i - begin]);
      usage.present = usage.present && batch->usage.present;
      usage.malformed = usage.malformed || batch->usage.malformed;
      usage.prompt_tokens += batch->usage.prompt_tokens;
    }
    // Without every sub-request's usage the attempt is accounted at the gateway's estimate (the
    // request was sent), and the client is shown that same figure.
    core::Usage shown = usage;
    if (!usage.present) {
      usage = core::Usage{};
      shown.prompt_tokens = er.est_tokens;
    }
    res.usage = usage;
    res.body = embeddings_answer(vectors, ctx.target.model, shown);
    res.finish_reason = "stop";
    res.ttft = std::chrono::duration_cast<Micros>(std::chrono::steady_clock::now() - started);
    co_return;
  }

 private:
  // One sub-request of an embeddings attempt: rows [begin, end). On failure nullopt with res.error set.
  core::Task<std::optional<EmbeddingBatch>> embeddings_batch(const AttemptContext& ctx, const Endpoint& ep,
                                                              const std::string& region, size_t begin, size_t end,
                                                              AttemptResult& res) {
    std::string jwt_header;  // lives in this frame: the request holds a view of it
    auto req = openai_request(ctx, embeddings_targets_.at(region),
                              embeddings_body(*ctx.embedding, begin, end, ctx.target.model), false, jwt_header);
    if (!req) {
      res.error = std::move(req).error();
      co_return std::nullopt;
    }
    const bool sent_before = res.request_sent;
    auto ex = co_await open_exchange(ctx, ep, *req, classify_upstream_error, res);
    res.request_sent = res.request_sent || sent_before;  // an earlier sub-request was billed
    if (!ex) co_return std::nullopt;
    HookGuard clear{ctx.cancel};
    auto all = co_await read_body(ctx, *ex);
    if (!all) {
      res.error = std::move(all).error();
      co_return std::nullopt;
    }
    auto batch = parse_embeddings_answer(*all, end - begin, dialect_.name);
    if (!batch) {
      res.error = std::move(batch).error();
      co_return std::nullopt;
    }
    co_return std::move(batch).value();
  }

  // One attempt relayed natively to the endpoint that speaks `api` (see Provider::anthropic_messages
  // and Provider::openai_responses).
  core::Task<void> native_attempt(const AttemptContext& ctx, EventSink* sink, NativeApi api, AttemptResult& res) {
    const auto started = std::chrono::steady_clock::now();
    const bool anthropic = api == NativeApi::anthropic_messages;
    auto ex = co_await open_native(ctx, sink != nullptr, anthropic, res);
    if (!ex) co_return;
    HookGuard clear{ctx.cancel};
    if (!sink) co_await read_native_answer(ctx, *ex, anthropic, started, res);
    else if (anthropic) co_await relay_anthropic_stream(ctx, dialect_, *ex, *sink, started, res);
    else co_await relay_responses_stream(ctx, dialect_, *ex, *sink, started, res);
    co_return;
  }

  // As open_chat, to the endpoint that speaks the client's API.
  core::Task<std::unique_ptr<UpstreamExchange>> open_native(const AttemptContext& ctx, bool stream, bool anthropic,
                                                            AttemptResult& res) {
    const std::string& region = ctx.target.region.empty() ? default_region_ : ctx.target.region;
    const auto& eps = anthropic ? anthropic_endpoints_ : responses_endpoints_;
    auto ep = eps.find(region);
    if (ep == eps.end() || !(anthropic ? speaks_anthropic(region) : speaks_responses(region)) || ctx.native == nullptr) {
      res.error = core::make_error(ErrorKind::internal,
                                   "provider '" + cfg_.name + "' has no " +
                                       (anthropic ? "Anthropic Messages" : "Responses") + " endpoint for region '" +
                                       region + "'",
                                   ErrorSource::gateway, "no_native_endpoint");
      co_return nullptr;
    }
    if (!available()) {
      res.error = core::make_error(ErrorKind::unavailable, unavailable_reason_, ErrorSource::gateway);
      co_return nullptr;
    }
    std::string jwt_header;  // lives in this frame: the request holds a view of it
    auto req = anthropic ? native_request(ctx, region, stream, jwt_header)
                         : openai_request(ctx, responses_targets_.at(region),
                                          rewrite_responses_body(ctx.native->body, ctx.target.model), stream, jwt_header);
    if (!req) {
      res.error = std::move(req).error();
      co_return nullptr;
    }
    co_return co_await open_exchange(ctx, ep->second, *req,
                                     anthropic ? classify_anthropic_error : classify_upstream_error, res);
  }

  // A non-stream native answer: kept as the upstream sent it (the gateway rewrites nothing else),
  // with its usage and stop reason read.
  core::Task<void> read_native_answer(const AttemptContext& ctx, UpstreamExchange& ex, bool anthropic,
                                      std::chrono::steady_clock::time_point started, AttemptResult& res) {
    auto all = co_await read_body(ctx, ex);
    if (!all) {
      res.error = std::move(all).error();
      co_return;
    }
    if (anthropic) {
      auto info = read_anthropic_message(dialect_, *all);
      if (!info) {
        res.error = std::move(info).error();
        co_return;
      }
      res.usage = info->usage;
      res.finish_reason = std::move(info->stop_reason);
    } else {
      auto info = read_responses_answer(dialect_, *all);
      if (!info) {
        res.error = std::move(info).error();
        co_return;
      }
      res.usage = info->usage;
      res.finish_reason = std::move(info->status);
    }
    res.body = std::move(all).value();
    res.ttft = std::chrono::duration_cast<Micros>(std::chrono::steady_clock::now() - started);
  }

  // A request to the OpenAI-compatible base (chat completions, Responses): `body` (or its error),
  // the JSON headers, the key, the configured extra headers. Views of ctx, this provider and `jwt_scratch`.
  core::Result<UpstreamRequest> openai_request(const AttemptContext& ctx, std::string_view target,
                                               core::Result<std::string> body, bool stream,
                                               std::string& jwt_scratch) const {
    if (!body) return std::move(body).error();
    UpstreamRequest req;
    req.target = target;
    req.body = std::move(body).value();
    req.headers.reserve(4 + cfg_.extra_headers.size());
    req.headers.emplace_back("Content-Type", "application/json");
    req.headers.emplace_back("Accept", stream ? "text/event-stream" : "application/json");
    req.headers.emplace_back("X-Request-Id", ctx.request_id);
    auto auth_value = authorization(jwt_scratch);
    if (!auth_value) return std::move(auth_value).error();
    if (!auth_value->empty()) req.headers.emplace_back("Authorization", *auth_value);
    for (const auto& [k, v] : cfg_.extra_headers) req.headers.emplace_back(k, v);
    return req;
  }

  // The Authorization value (empty: none), valid while `scratch` and this provider live.
  core::Result<std::string_view> authorization(std::string& scratch) const {
    if (auth_ == AuthScheme::none || key_.empty()) return std::string_view();
    if (auth_ == AuthScheme::glm_jwt) {
      auto now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                        std::chrono::system_clock::now().time_since_epoch()).count();
      auto tok = glm_jwt(key_, now_ms, 3600 * 1000);
      if (!tok) return std::move(tok).error();
      scratch = "Bearer " + *tok;
      return std::string_view(scratch);
    }
    return std::string_view(bearer_);
  }

  // A native attempt's request: the body with its model rewritten, the API's headers, the key in the
  // header the vendor documents for its Anthropic endpoint (GLM's JWT, when configured, in
  // Authorization). The headers are views of ctx, of this provider and of `jwt_scratch`.
  core::Result<UpstreamRequest> native_request(const AttemptContext& ctx, const std::string& region, bool stream,
                                               std::string& jwt_scratch) const {
    auto body = rewrite_anthropic_model(ctx.native->body, ctx.target.model);
    if (!body) return std::move(body).error();
    UpstreamRequest req;
    req.target = messages_targets_.at(region);
    req.body = std::move(body).value();
    req.headers.reserve(6 + cfg_.extra_headers.size());
    req.headers.emplace_back("Content-Type", "application/json");
    req.headers.emplace_back("Accept", stream ? "text/event-stream" : "application/json");
    req.headers.emplace_back("X-Request-Id", ctx.request_id);
    // Anthropic's API refuses a request without a version; compatible endpoints ignore it or want it.
    req.headers.emplace_back("anthropic-version", ctx.native->anthropic_version.empty()
                                                      ? std::string_view("2023-06-01")
                                                      : ctx.native->anthropic_version);
    if (!ctx.native->anthropic_beta.empty()) req.headers.emplace_back("anthropic-beta", ctx.native->anthropic_beta);
    if (auth_ == AuthScheme::bearer && dialect_.anthropic_auth == AnthropicAuth::x_api_key) {
      if (!key_.empty()) req.headers.emplace_back("x-api-key", key_);
    } else {
      auto auth_value = authorization(jwt_scratch);
      if (!auth_value) return std::move(auth_value).error();
      if (!auth_value->empty()) req.headers.emplace_back("Authorization", *auth_value);
    }
    for (const auto& [k, v] : cfg_.extra_headers) req.headers.emplace_back(k, v);
    return req;
  }

  using ErrorClassifier = core::Error (*)(const Dialect&, int, std::string_view, std::string_view);

  // Clears the cancel hook that open_exchange pointed at an exchange, before the exchange goes.
  struct HookGuard {
    CancelHook* hook;
    ~HookGuard() { if (hook) hook->fn = nullptr; }
  };

  // Sends `req` and waits for the answer's header. A 200 answer: its exchange, which the cancel hook
  // now aborts (the caller's HookGuard clears the hook). Otherwise nullptr, with res.error set (a
  // non-200 answer's body read under the idle deadline and classified by `classify`).
  core::Task<std::unique_ptr<UpstreamExchange>> open_exchange(const AttemptContext& ctx, const Endpoint& ep,
                                                              UpstreamRequest& req, ErrorClassifier classify,
                                                              AttemptResult& res) {
    bool written = false;
    req.written = &written;
    auto started_ex = co_await ctx.client->start(ep, req, ctx.timeouts, ctx.total_deadline, ctx.cancel);
    req.written = nullptr;  // `written` dies with this frame
    if (!started_ex) {
      res.error = std::move(started_ex).error();
      // Cancelled while waiting for the answer: the upstream may be working on (billing) it. Cancelled
      // before the request was written (resolve, connect, TLS, the write itself): it never saw it.
      res.request_sent = res.error->kind == ErrorKind::cancelled && written;
      co_return nullptr;
    }
    std::unique_ptr<UpstreamExchange> ex = std::move(started_ex).value();
    UpstreamExchange* raw = ex.get();
    if (ctx.cancel) {
      if (ctx.cancel->cancelled) raw->cancel();
      ctx.cancel->fn = [raw] { raw->cancel(); };
    }
    res.upstream_status = ex->status();
    res.request_sent = res.upstream_status == 200;
    if (res.upstream_status == 200) co_return ex;
    HookGuard clear{ctx.cancel};
    auto err_body = co_await ex->read_all(std::min(ctx.total_deadline, std::chrono::steady_clock::now() + ctx.timeouts.idle),
                                          kMaxErrorBody);
    res.error = classify(dialect_, res.upstream_status, err_body ? std::string_view(*err_body) : "", ex->header("Retry-After"));
    co_return nullptr;
  }

  // After the client left, how long a stream whose finish chunk came is read on for its usage.
  static constexpr std::chrono::milliseconds kUsageGrace{2000};

  // A non-stream body, under the same idle deadline as a stream's events: an upstream that sent its
  // header and then stalls is a timeout (before anything reached the client, so the attempt fails
  // over), not a wait until the total deadline. Whitespace (DeepSeek's keep-alive blank lines while
  // a request queues) proves the socket lives, not that the answer progresses.
  core::Task<core::Result<std::string>> read_body(const AttemptContext& ctx, UpstreamExchange& ex) {
    std::string body;
    auto last_progress = std::chrono::steady_clock::now();
    for (;;) {
      const auto deadline = std::min(ctx.total_deadline, last_progress + ctx.timeouts.idle);
      auto piece = co_await ex.read_some(deadline);
      if (!piece) {
        core::Error e = std::move(piece).error();
        if (e.kind == ErrorKind::timeout || std::chrono::steady_clock::now() >= deadline)
          e = core::make_error(ErrorKind::timeout, idle_or_total(ctx, "sent no response body bytes for "),
                               ErrorSource::upstream);
        co_return e;
      }
      if (piece->empty()) co_return body;
      if (body.size() + piece->size() > kMaxResponseBody) {
        ex.cancel();
        co_return core::make_error(ErrorKind::server_error,
                                   dialect_.name + " response body exceeds " + std::to_string(kMaxResponseBody) + " bytes",
                                   ErrorSource::upstream);
      }
      if (piece->find_first_not_of(" \t\r\n") != std::string_view::npos) last_progress = std::chrono::steady_clock::now();
      body.append(*piece);
    }
  }

  // "<dialect> exceeded the total deadline of N ms" or "<dialect> <idle_what> N ms".
  std::string idle_or_total(const AttemptContext& ctx, const char* idle_what) const {
    if (std::chrono::steady_clock::now() >= ctx.total_deadline)
      return dialect_.name + " exceeded the total deadline of " + std::to_string(ctx.timeouts.total.count()) + " ms";
    return dialect_.name + " " + idle_what + std::to_string(ctx.timeouts.idle.count()) + " ms";
  }

  // Relays SSE events as they arrive. Chunks without content (role-only deltas) are held back until
  // the first content chunk, so that a failure before any content can still fail over cleanly.
  // Once the finish chunk came the answer is generated and paid for: cancelling saves nothing, so
  // the client's disconnect no longer aborts the exchange, and a client that leaves then only
  // stops the sends while the usage is read for up to kUsageGrace.
  core::Task<void> relay_stream(const AttemptContext& ctx, UpstreamExchange& ex, ChatSink& sink,
                                std::chrono::steady_clock::time_point started, AttemptResult& res) {
    SseReader reader;
    SseEvent ev;  // reused from event to event
    StreamNormalizer norm(dialect_, ctx.request->include_usage);
    std::vector<std::string> held;
    auto last_event = std::chrono::steady_clock::now();
    auto grace_end = std::chrono::steady_clock::time_point::max();
    bool saw_done = false, client_left = false;
    // Armed when the client leaves after the finish chunk: aborts the read once the grace is over.
    auto executor = co_await asio::this_coro::executor;
    auto grace_timer = std::make_shared<core::SteadyTimer>(executor);
    struct GraceGuard {
      const AttemptContext& ctx;
      std::shared_ptr<core::SteadyTimer> timer;
      ~GraceGuard() {
        timer->cancel();
        if (ctx.cancel) ctx.cancel->fn = nullptr;  // it refers to this frame
      }
    } grace_guard{ctx, grace_timer};
    auto start_grace = [&] {
      client_left = true;
      client_gone(res);
      grace_end = std::chrono::steady_clock::now() + kUsageGrace;
      grace_timer->expires_at(grace_end);
      grace_timer->async_wait([raw = &ex](const boost::system::error_code& ec) {
        if (!ec) raw->cancel();
      });
    };
    // False when the client is gone; after the finish chunk that starts the grace read instead.
    auto send = [&](std::string_view data) -> core::Task<bool> {
      if (client_left) co_return true;
      if (co_await sink.send(data)) co_return true;
      client_gone(res);
      if (norm.finish_reason().empty() || norm.usage().present) co_return false;
      start_grace();
      co_return true;
    };
    for (;;) {
      auto deadline = std::min({ctx.total_deadline, last_event + ctx.timeouts.idle, grace_end});
      reader.release_idle(ev);
      auto piece = co_await ex.read_some(deadline);
      if (!piece) {
        if (client_left) break;  // no usage within the grace: the attempt is accounted as estimated
        res.error = read_failure(ctx, std::move(piece).error(), deadline);
        break;
      }
      if (piece->empty()) break;  // body complete
      if (!reader.feed(*piece)) {
        res.error = stream_failure(" sent an oversized stream event");
        break;
      }
      bool stop = false;
      while (!stop && reader.next(ev)) {
        if (ev.comment_only) {
          ++res.keepalives;  // keep-alives prove the socket lives, not that the answer progresses
          continue;
        }
        last_event = std::chrono::steady_clock::now();
        if (ev.data.empty()) continue;
        auto step = norm.process(ev.data);
        switch (step.action) {
          case StreamNormalizer::Action::drop: break;
          case StreamNormalizer::Action::done: saw_done = true; stop = true; break;
          case StreamNormalizer::Action::error: res.error = step.error; stop = true; break;
          case StreamNormalizer::Action::forward:
            if (!res.content_sent && !step.content) {
              if (held.size() < 16) held.emplace_back(step.out);
              break;
            }
            if (!res.content_sent) {
              res.ttft = std::chrono::duration_cast<Micros>(std::chrono::steady_clock::now() - started);
              res.content_sent = true;
              for (const auto& h : held)
                if (!co_await send(h)) { stop = true; break; }
              held.clear();
              if (stop) break;
            }
            if (!norm.finish_reason().empty() && !norm.usage().present && ctx.cancel)
              ctx.cancel->fn = [&start_grace, &client_left] { if (!client_left) start_grace(); };
            if (!co_await send(step.out)) { stop = true; break; }
            if (!client_left) res.relayed_tokens += step.est_tokens;
            break;
        }
        if (client_left && norm.usage().present) stop = true;
      }
      if (stop || (res.error && !client_left)) break;
    }
    res.usage = norm.usage();
    res.finish_reason = norm.finish_reason();
    res.usage_chunk = norm.usage_chunk();
    res.stream_id = norm.id();
    res.stream_model = norm.model();
    res.stream_created = norm.created();
    if (!res.error && !saw_done && norm.finish_reason().empty())
      res.error = stream_failure(" closed the stream before the answer was complete");
    if (!res.error && !res.content_sent) {
      // A finished stream that never carried content (e.g. an empty answer): flush what was held.
      for (const auto& h : held)
        if (!co_await sink.send(h)) { client_gone(res); break; }
      res.content_sent = !held.empty();
    }
    co_return;
  }

  // Not coroutines: the messages they build are not kept in the relay's frame.
  core::Error read_failure(const AttemptContext& ctx, core::Error e, std::chrono::steady_clock::time_point deadline) const {
    const auto now = std::chrono::steady_clock::now();
    if (e.kind != ErrorKind::timeout && now < deadline) return e;
    const bool total = now >= ctx.total_deadline;
    return core::make_error(ErrorKind::timeout,
                            dialect_.name + (total ? " exceeded the total deadline of " +
                                                         std::to_string(ctx.timeouts.total.count()) + " ms"
                                                   : " sent no stream event for " +
                                                         std::to_string(ctx.timeouts.idle.count()) + " ms"),
                            ErrorSource::upstream);
  }
  core::Error stream_failure(std::string_view what) const {
    return core::make_error(ErrorKind::server_error, dialect_.name + std::string(what), ErrorSource::upstream);
  }

  static void client_gone(AttemptResult& res) {
    res.error = core::make_error(ErrorKind::cancelled, "client disconnected", ErrorSource::client);
  }

  ProviderConfig cfg_;
  const Dialect& dialect_;
  std::map<std::string, Endpoint> endpoints_;
  std::map<std::string, Endpoint> anthropic_endpoints_;  // region -> Anthropic Messages endpoint
  std::map<std::string, Endpoint> responses_endpoints_;  // region -> base of its Responses API, where spoken
  std::string default_region_;
  std::string key_;
  std::string bearer_;                                // "Bearer <key>" for AuthScheme::bearer
  std::map<std::string, std::string> chat_targets_;  // region -> "<base path>/chat/completions"
  std::map<std::string, std::string> embeddings_targets_;  // region -> "<base path>/embeddings"
  std::map<std::string, std::string> messages_targets_;  // region -> "<Anthropic base path>/v1/messages"
  std::map<std::string, std::string> responses_targets_;  // region -> "<base path>/responses", where spoken
  std::string unavailable_reason_;
  AuthScheme auth_;
};

std::string read_key_file(const std::string& path, std::string& error) {
  std::ifstream f(path);
  if (!f) {
    // Shown to clients as the provider's unavailable reason: the path stays in the config.
    error = "cannot read its api_key_file";
    return {};
  }
  std::stringstream ss;
  ss << f.rdbuf();
  std::string s = ss.str();
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
  return s;
}

// A provider's settings checked and resolved against its dialect: endpoints per region, the
// default region, the auth scheme. No credentials are read and nothing is built.
struct ResolvedProvider {
  ProviderConfig cfg;
  const Dialect* dialect = nullptr;
  std::map<std::string, Endpoint> endpoints;
  std::map<std::string, Endpoint> anthropic_endpoints;
  std::map<std::string, Endpoint> responses_endpoints;
  std::string default_region;
  AuthScheme auth = AuthScheme::none;
};

// The regions that speak the Responses API and where: a base of its own (`own`: built in or
// configured) wins over the chat base; `responses` in the config overrides the dialect's flag.
std::map<std::string, Endpoint> responses_endpoints(const ProviderConfig& cfg, const Dialect& d,
                                                    const std::map<std::string, Endpoint>& endpoints,
                                                    std::map<std::string, Endpoint> own) {
  std::map<std::string, Endpoint> out;
  if (cfg.responses == false) return out;
  for (const auto& [region, ep] : endpoints) {
    bool chat_base_speaks = false;
    for (const auto& r : d.regions)
      if (r.region == region) chat_base_speaks = r.responses;
    if (auto it = own.find(region); it != own.end()) out[region] = std::move(it->second);
    else if (cfg.responses.value_or(chat_base_speaks)) out[region] = ep;
  }
  return out;
}

core::Result<AuthScheme> auth_scheme(const ProviderConfig& cfg, const Dialect& d) {
  if (cfg.auth == "jwt") {
    if (d.name != "glm")
      return core::make_error(ErrorKind::internal, "provider '" + cfg.name + "': auth 'jwt' exists only for glm");
    return AuthScheme::glm_jwt;
  }
  if (cfg.auth == "none") return AuthScheme::none;
  if (!cfg.auth.empty() && cfg.auth != "bearer")
    return core::make_error(ErrorKind::internal,
                            "provider '" + cfg.name + "': auth must be bearer, jwt or none, not '" + cfg.auth + "'");
  return d.auth;
}

core::Result<ResolvedProvider> resolve(const ProviderConfig& config) {
  ProviderConfig cfg = config;
  if (cfg.type.empty()) cfg.type = cfg.name;
  const Dialect* d = find_dialect(cfg.type);
  if (!d || d->name == "local")
    return core::make_error(ErrorKind::internal, "provider '" + cfg.name + "': unknown type '" + cfg.type +
                                                     "' (known: deepseek, qwen, kimi, glm, minimax, openai_compatible)");
  std::map<std::string, Endpoint> endpoints;
  std::string default_region = cfg.default_region.empty() ? d->default_region : cfg.default_region;
  std::map<std::string, Endpoint> anthropic, responses;  // bases of their own, per region
  auto add_to = [&](std::map<std::string, Endpoint>& to, const std::string& region, const std::string& url,
                    const char* what) -> core::Status {
    auto ep = parse_endpoint(url);
    if (!ep) {
      core::Error e = std::move(ep).error();
      e.message = "provider '" + cfg.name + "' region '" + region + "'" + what + ": " + e.message;
      return e;
    }
    to[region] = std::move(ep).value();
    return core::ok_status();
  };
  auto add = [&](const std::string& region, const std::string& url) {
    anthropic.erase(region);  // the built-in ones would bypass the URL configured instead
    responses.erase(region);
    return add_to(endpoints, region, url, "");
  };
  // A configured base of its own: `url` for the default region, `per_region` for the others.
  auto add_own = [&](std::map<std::string, Endpoint>& to, const std::string& url,
                     const std::map<std::string, std::string>& per_region, const char* key,
                     const char* what) -> core::Status {
    if (!url.empty())
      if (auto s = add_to(to, default_region, url, what); !s) return s;
    for (const auto& [region, u] : per_region) {
      if (!endpoints.count(region))
        return core::make_error(ErrorKind::internal, "provider '" + cfg.name + "': " + key + " names region '" +
                                                         region + "', which has no base URL");
      if (auto s = add_to(to, region, u, what); !s) return s;
    }
    return core::ok_status();
  };
  for (const auto& r : d->regions) {
    if (r.base_url.empty()) continue;
    if (auto s = add(r.region, r.base_url); !s) return s.error();
    if (!r.anthropic_base_url.empty())
      if (auto s = add_to(anthropic, r.region, r.anthropic_base_url, " (Anthropic)"); !s) return s.error();
    if (!r.responses_base_url.empty())
      if (auto s = add_to(responses, r.region, r.responses_base_url, " (Responses)"); !s) return s.error();
  }
  if (d->name == "openai_compatible" && cfg.base_url.empty() && cfg.base_urls.empty())
    return core::make_error(ErrorKind::internal, "provider '" + cfg.name + "' (openai_compatible) needs base_url");
  // On a built-in type, base_url replaces the configured region's URL (an egress proxy, a test fake):
  // the requests and the API key go there, never to the vendor's public host.
  if (!cfg.base_url.empty())
    if (auto s = add(default_region, cfg.base_url); !s) return s.error();
  for (const auto& [region, url] : cfg.base_urls)
    if (auto s = add(region, url); !s) return s.error();
  if (!endpoints.count(default_region))
    return core::make_error(ErrorKind::internal,
                            "provider '" + cfg.name + "': default region '" + default_region + "' has no base URL");
  if (auto s = add_own(anthropic, cfg.anthropic_base_url, cfg.anthropic_base_urls, "anthropic_base_urls", " (Anthropic)");
      !s)
    return s.error();
  if (cfg.responses == false && (!cfg.responses_base_url.empty() || !cfg.responses_base_urls.empty()))
    return core::make_error(ErrorKind::internal, "provider '" + cfg.name +
                                                     "': responses: false contradicts responses_base_url(s)");
  if (auto s = add_own(responses, cfg.responses_base_url, cfg.responses_base_urls, "responses_base_urls", " (Responses)");
      !s)
    return s.error();

  auto auth = auth_scheme(cfg, *d);
  if (!auth) return std::move(auth).error();
  auto responses_eps = responses_endpoints(cfg, *d, endpoints, std::move(responses));
  return ResolvedProvider{std::move(cfg),           d, std::move(endpoints), std::move(anthropic),
                          std::move(responses_eps), std::move(default_region), *auth};
}

}  // namespace

core::Status check_provider_config(const ProviderConfig& config) {
  auto r = resolve(config);
  if (!r) return std::move(r).error();
  return core::ok_status();
}

core::Result<std::map<std::string, std::string>> responses_bases(const ProviderConfig& config) {
  auto r = resolve(config);
  if (!r) return std::move(r).error();
  std::map<std::string, std::string> out;
  for (const auto& [region, ep] : r->responses_endpoints) out[region] = ep.key + ep.base_path;
  return out;
}

core::Result<std::unique_ptr<Provider>> make_openai_compatible(const ProviderConfig& config) {
  auto resolved = resolve(config);
  if (!resolved) return std::move(resolved).error();
  auto& [cfg, d, endpoints, anthropic_endpoints, responses_endpoints, default_region, auth] = *resolved;
  std::string key, unavailable;
  std::string env = cfg.api_key_env.empty() && cfg.api_key_file.empty() ? d->default_key_env : cfg.api_key_env;
  if (!cfg.api_key_file.empty()) {
    std::string err;
    key = read_key_file(cfg.api_key_file, err);
    if (!err.empty()) unavailable = "provider '" + cfg.name + "': " + err;
  } else if (!env.empty()) {
    const char* v = std::getenv(env.c_str());
    if (v && *v) key = v;
  }
  if (key.empty() && unavailable.empty() && d->key_required && auth != AuthScheme::none)
    unavailable = "provider '" + cfg.name + "' has no API key: set " + (env.empty() ? "api_key_env" : env);
  return std::unique_ptr<Provider>(std::make_unique<OpenAICompatibleProvider>(
      std::move(cfg), *d, std::move(endpoints), std::move(anthropic_endpoints), std::move(responses_endpoints),
      std::move(default_region), std::move(key), std::move(unavailable), auth));
}

}  // namespace providers
