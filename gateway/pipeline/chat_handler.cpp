#include "gateway/pipeline/chat_handler.h"

#include <chrono>

#include "core/json_writer.h"
#include "core/money.h"
#include "gateway/pipeline/offload.h"
#include "gateway/api/openai_chat.h"
#include "providers/openai_normalize.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <atomic>
#include <type_traits>

namespace gateway {
namespace {

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// The head of a chunk that closes a stream: the stream's own id, created time and model, as the
// chunks before it carried them (the request's when the attempt saw none).
std::string closing_chunk_head(const providers::AttemptResult& r, const std::string& request_id,
                               const std::string& alias, int64_t created) {
  std::string s = "{\"id\":";
  core::append_json_string(s, r.stream_id.empty() ? request_id : r.stream_id);
  s += ",\"object\":\"chat.completion.chunk\",\"created\":" +
       std::to_string(r.stream_created ? r.stream_created : created) + ",\"model\":";
  core::append_json_string(s, r.stream_model.empty() ? alias : r.stream_model);
  return s;
}

std::string error_chunk(const providers::AttemptResult& r, const std::string& request_id, const std::string& alias,
                        int64_t created) {
  return closing_chunk_head(r, request_id, alias, created) +
         ",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"error\"}]}";
}

// The usage-only chunk of a failed stream: what was counted for the attempt (the provider's usage,
// or the gateway's estimate when the provider sent none).
std::string failed_usage_chunk(const providers::AttemptResult& r, const core::Usage& counted,
                               const std::string& request_id, const std::string& alias, int64_t created) {
  if (r.usage.present && !r.usage_chunk.empty()) return r.usage_chunk;
  return closing_chunk_head(r, request_id, alias, created) +
         ",\"choices\":[],\"usage\":" + providers::usage_to_json(counted) + "}";
}

// FNV-1a over the leading prompt bytes: requests sharing a long prefix share the hash.
constexpr size_t kPrefixBytes = 4096;
constexpr size_t kMinPrefixBytes = 1024;  // shorter prompts gain nothing from provider caches

void prefix_of(const core::ChatRequest& req, routing::RequestFeatures& f) {
  uint64_t h = 1469598103934665603ull;
  size_t n = 0;
  for (const auto& m : req.messages) {
    for (std::string_view part : {std::string_view(m.role), std::string_view("\n"), std::string_view(m.content)}) {
      for (char c : part) {
        if (n == kPrefixBytes) break;
        h = (h ^ static_cast<unsigned char>(c)) * 1099511628211ull;
        ++n;
      }
    }
    if (n == kPrefixBytes) break;
  }
  if (n < kMinPrefixBytes) return;
  f.prefix_hash = h ? h : 1;
  f.prefix_tokens = static_cast<int64_t>(n / 4);
}

}  // namespace

routing::RequestFeatures features_of(const core::ChatRequest& req, const RequestHeaders& headers, bool trust_headers) {
  routing::RequestFeatures f;
  f.model = req.model;
  f.est_input_tokens = core::estimate_prompt_tokens(req);
  f.max_tokens = req.max_tokens;
  f.needs_tools = req.has_tools;
  f.needs_json = req.wants_json;
  f.needs_vision = req.has_images;
  f.needs_reasoning = req.wants_reasoning;
  f.stream = req.stream;
  prefix_of(req, f);
  f.headers = headers;
  if (trust_headers) {
    for (const auto& [k, v] : f.headers) {
      if (k == "x-gateway-tenant") f.tenant = v;
      else if (k == "x-gateway-client-region") f.client_region = v;
      else if (k == "x-gateway-data-classification") f.data_classification = v;
      else if (k == "x-gateway-data-tags") {
        size_t start = 0;
        while (start <= v.size()) {
          size_t comma = v.find(',', start);
          std::string tag(v.substr(start, comma == std::string_view::npos ? std::string_view::npos : comma - start));
          while (!tag.empty() && tag.front() == ' ') tag.erase(tag.begin());
          while (!tag.empty() && tag.back() == ' ') tag.pop_back();
          if (!tag.empty()) f.data_tags.push_back(tag);
          if (comma == std::string_view::npos) break;
          start = comma + 1;
        }
      }
    }
  }
  return f;
}

namespace {
// What the client's retry logic needs: the real wait when one is known (an upstream's Retry-After,
// a cool-down, a budget reset), or that retrying cannot help (x-should-retry: false, honoured by the
// OpenAI SDKs). Without either, the session's default Retry-After applies to 429/503.
void set_retry_headers(ClientIo& io, const core::Error& e) {
  if (e.permanent) {
    io.set_header("x-should-retry", "false");
    return;
  }
  if (e.retry_after.count() > 0) io.set_header("retry-after", std::to_string((e.retry_after.count() + 999) / 1000));
}

std::string usd_header(double usd) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "%.9f", usd);
  std::string s(buf);
  while (s.size() > 3 && s.back() == '0' && s[s.size() - 2] != '.') s.pop_back();
  return s;
}
}  // namespace

namespace {

namespace asio = boost::asio;

// Appends to the ledger and waits (bounded) until the entry is durable, so that a response the
// client receives in full is always accounted, even if the process dies right after.
core::Task<bool> ledger_durable(App& app, LedgerEntry e) {
  if (!app.ledger) co_return true;
  auto ex = co_await asio::this_coro::executor;
  auto timer = std::make_shared<core::SteadyTimer>(ex);
  timer->expires_after(std::chrono::seconds(5));
  auto done = std::make_shared<std::atomic<bool>>(false);
  std::weak_ptr<core::SteadyTimer> weak = timer;
  bool taken = app.ledger->append_for(std::move(e), [done, ex, weak] {
    done->store(true);
    asio::post(ex, [weak] { if (auto t = weak.lock()) t->cancel(); });
  }, std::chrono::seconds(1));
  if (!taken) {
    app.metrics.error("ledger_full");
    co_return false;
  }
  while (!done->load()) {
    auto [ec] = co_await timer->async_wait(asio::as_tuple(core::use_task));
    if (!ec) break;  // deadline passed
  }
  if (!done->load()) app.metrics.error("ledger_slow");
  co_return done->load();
}

// A ledger that cannot write refuses new work (state.on_ledger_failure: refuse): serving it would
// be serving unaccounted. Entries already accepted stay queued and are retried.
std::optional<core::Error> ledger_refusal(const App& app) {
  if (!app.ledger || !app.config.state.refuse_on_ledger_failure || !app.ledger->failing()) return std::nullopt;
  return core::make_error(core::ErrorKind::unavailable,
                          "the spend ledger cannot write (" + app.ledger->failure() +
                              "); refusing new requests rather than serving them unaccounted",
                          core::ErrorSource::gateway, "spend_ledger_unavailable");
}

// Forwards to the client and keeps a copy of the data events, for the response cache.
class RecordingIo final : public ClientIo {
 public:
  RecordingIo(ClientIo& inner, size_t max_bytes) : inner_(inner), max_bytes_(max_bytes) {}
  core::Task<bool> respond(int status, std::string_view ct, std::string body) override {
    co_return co_await inner_.respond(status, ct, std::move(body));
  }
  void set_header(std::string_view n, std::string_view v) override { inner_.set_header(n, v); }
  bool committed() const override { return inner_.committed(); }
  core::Task<bool> send_comment(std::string_view t) override { co_return co_await inner_.send_comment(t); }
  core::Task<bool> end_stream() override { co_return co_await inner_.end_stream(); }
  void watch_disconnect(providers::CancelHook* h) override { inner_.watch_disconnect(h); }
  void stop_watch() override { inner_.stop_watch(); }
  core::Task<bool> send(std::string_view data) override {
    if (!overflow_) {
      bytes_ += data.size();
      if (bytes_ > max_bytes_) { overflow_ = true; chunks_.clear(); }
      else chunks_.emplace_back(data);
    }
    co_return co_await inner_.send(data);
  }
  void restart() { chunks_.clear(); bytes_ = 0; overflow_ = false; }  // a new attempt
  bool complete() const { return !overflow_; }
  std::vector<std::string>& chunks() { return chunks_; }

 private:
  ClientIo& inner_;
  size_t max_bytes_;
  size_t bytes_ = 0;
  bool overflow_ = false;
  std::vector<std::string> chunks_;
};

struct Spend {
  core::Money cost;
  int64_t tokens = 0;
  bool any = false;
};

// Worst case for budgets: the most expensive candidate with the whole max_tokens (or a large
// default) of output at its price.
// `choices` (the request's n) multiplies the output: every choice is generated and billed.
core::Money worst_case_cost(const routing::Router& router, const routing::Plan& plan, const routing::RequestFeatures& f,
                            int64_t choices, int64_t& tokens) {
  core::Usage u;
  u.present = true;
  u.prompt_tokens = f.est_input_tokens;
  u.completion_tokens = f.max_tokens.value_or(4096) * std::max<int64_t>(choices, 1);
  tokens = u.prompt_tokens + u.completion_tokens;
  core::Money worst{0};
  auto now = std::chrono::system_clock::now();
  for (const auto& a : plan.attempts)
    if (auto c = router.cost(plan, a.deployment.id, u, now); c && *c > worst) worst = *c;
  return worst;
}

// After a deployment refused the request as longer than its window (the catalog overstated it), a
// later candidate is tried only if its known window is larger than the refusing one's and holds the
// input estimate plus max_tokens: a window no larger, or unknown, would refuse the same way.
bool larger_window_fits(const routing::PlannedAttempt& a, int64_t refused_window, const routing::RequestFeatures& f) {
  if (a.context_window <= 0 || a.context_window <= refused_window) return false;
  return f.est_input_tokens + f.max_tokens.value_or(0) <= a.context_window;
}

// What an attempt is accounted with. The provider's usage when it reported one; otherwise, for an
// attempt that may have consumed tokens (the upstream took the request, or content reached the
// client) the gateway's estimate: the prompt estimate (the local engine's exact count when it has
// one) plus the completion tokens relayed so far. Budgets, the cost counter and the ledger all use
// this one figure. nullopt: nothing was consumed (refused, failed before the upstream answered).
struct AccountedUsage {
  core::Usage usage;
  const char* source = "provider";
};
std::optional<AccountedUsage> accounted_usage(const providers::AttemptResult& r, int64_t est_prompt_tokens) {
  if (r.usage.present) return AccountedUsage{r.usage, "provider"};
  if (!r.request_sent && !r.content_sent) return std::nullopt;
  AccountedUsage a;
  a.source = "estimated";
  a.usage.present = true;
  a.usage.prompt_tokens = r.counted_prompt_tokens >= 0 ? r.counted_prompt_tokens : est_prompt_tokens;
  a.usage.completion_tokens = r.relayed_tokens;
  return a;
}

// An upstream usage report that cannot be true (a malformed count, or more tokens than the
// deployment's context window plus max output) fails the attempt as the upstream's error, counted,
// and is dropped: the attempt is then accounted with the estimate, never priced from it.
void reject_implausible_usage(App& app, providers::AttemptResult& r, const routing::PlannedAttempt& attempt) {
  if (!r.usage.present) return;
  std::string why;
  if (r.usage.malformed) why = "a token count that is negative, fractional, too large or not a number";
  else if (attempt.max_usage_tokens > 0 && r.usage.total_tokens() > attempt.max_usage_tokens)
    why = std::to_string(r.usage.total_tokens()) + " tokens, more than the deployment's context window plus max output (" +
          std::to_string(attempt.max_usage_tokens) + ")";
  else return;
  app.metrics.error("upstream_usage_invalid");
  r.usage = core::Usage{};
  r.usage_chunk.clear();
  if (!r.error)
    r.error = core::make_error(core::ErrorKind::server_error,
                               attempt.deployment.id + " reported impossible usage: " + why, core::ErrorSource::upstream,
                               "invalid_upstream_usage");
}

LedgerEntry ledger_entry(const std::string& ledger_id, const AccessRecord& rec, const std::string& tenant,
                         const Caller& caller, const std::string& deployment, const providers::AttemptResult& r,
                         const AccountedUsage& acc, core::Money cost) {
  LedgerEntry e;
  e.ts_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                std::chrono::system_clock::now().time_since_epoch()).count();
  e.tenant = tenant;
  e.key_id = caller.key_id;
  e.request_id = ledger_id;
  e.client_request_id = rec.request_id;
  e.deployment = deployment;
  e.status = r.error ? std::string("error:") + core::to_string(r.error->kind) : "ok";
  e.attempt = rec.attempts;
  e.usage_source = acc.source;
  e.usage = acc.usage;
  e.cost = cost;
  return e;
}

// Content already reached the client: the stream ends in-band, never with a fabricated [DONE]:
// a usage chunk with what was counted (when the client asked for usage), a finish chunk with
// finish_reason "error", then the error event.
template <class Fail>
core::Task<int> fail_stream(App& app, ClientIo& io, const core::ChatRequest& req, AccessRecord& rec,
                            const providers::AttemptResult& r, const core::Usage* counted, int64_t created,
                            Clock::time_point t0, Fail& fail) {
  fail(*r.error);
  bool ok = true;
  if (req.include_usage && counted)
    ok = co_await io.send(failed_usage_chunk(r, *counted, rec.request_id, req.model, created));
  if (ok) ok = co_await io.send(error_chunk(r, rec.request_id, req.model, created));
  if (ok) ok = co_await io.send(error_json(*r.error));
  if (ok) co_await io.end_stream();
  app.metrics.request_failed_after_content(req.model, rec.deployment, seconds_since(t0));
  co_return 200;
}

}  // namespace

core::Task<int> handle_chat(App& app, providers::UpstreamClient& client, ClientIo& io, std::string body,
                            const RequestHeaders& headers, const Caller& caller, AccessRecord& rec) {
  const auto t0 = Clock::now();
  app.metrics.in_flight().Increment();
  struct InFlight {
    App& app;
    ~InFlight() { app.metrics.in_flight().Decrement(); }
  } in_flight{app};
  const std::string tenant = caller.tenant_name();
  rec.tenant = tenant;
  const std::string ledger_id = new_ledger_id();  // the ledger's key; the client's id is only echoed
  // One cancellation path for the whole request: the client socket is watched from here to the
  // response's end, and whatever phase is running (a budget check, a connect, a wait for the
  // upstream's header or next event, a local generation) is aborted when the client leaves.
  providers::CancelHook hook;
  io.watch_disconnect(&hook);
  struct StopWatch {
    ClientIo& io;
    ~StopWatch() { io.stop_watch(); }
  } stop_watch{io};
  auto client_left = [&](std::string_view phase) -> int {
    rec.error = "cancelled: client disconnected " + std::string(phase);
    app.metrics.error("cancelled");
    app.metrics.request_done(rec.model.empty() ? "unknown" : rec.model, "none", 499, seconds_since(t0));
    return 499;
  };

  auto fail = [&](const core::Error& e) -> int {
    rec.error = std::string(core::to_string(e.kind)) + ": " + e.message;
    if (!e.log_detail.empty()) rec.error += " [" + e.log_detail + "]";
    app.metrics.error(core::to_string(e.kind));
    app.refusals.add({wall_ms_now(), rec.request_id, tenant, rec.model, e.http_status(), core::to_string(e.kind), e.code, e.message});
    return e.http_status();
  };

  if (auto refused = ledger_refusal(app)) {
    int status = fail(*refused);
    co_await io.respond(status, "application/json", error_json(*refused));
    app.metrics.request_done("none", "none", status, seconds_since(t0));
    co_return status;
  }
  auto parsed = parse_chat_request(std::move(body));
  if (!parsed) {
    int status = fail(parsed.error());
    co_await io.respond(status, "application/json", error_json(parsed.error()));
    app.metrics.request_done("invalid", "none", status, seconds_since(t0));
    co_return status;
  }
  core::ChatRequest& req = *parsed;
  rec.stream = req.stream;
  if (caller.tenant && !model_allowed(*caller.tenant, req.model)) {
    core::Error e = core::make_error(core::ErrorKind::forbidden,
                                     "Tenant '" + tenant + "' may not use model '" + req.model + "'",
                                     core::ErrorSource::client, "model_not_allowed", "model");
    e.permanent = true;
    set_retry_headers(io, e);
    int status = fail(e);
    co_await io.respond(status, "application/json", error_json(e));
    app.metrics.request_done("forbidden", "none", status, seconds_since(t0));
    co_return status;
  }
  std::shared_ptr<routing::Router> router = app.router.load();
  routing::RequestFeatures features = features_of(req, headers, app.config.trust_routing_headers);
  if (caller.tenant) {
    features.tenant = tenant;  // the authenticated tenant, whatever a header says
    features.tenant_settings = &caller.tenant->routing;  // authoritative: headers only narrow them
  }
  auto plan = router->plan(features);
  if (!plan) {
    set_retry_headers(io, plan.error());
    int status = fail(plan.error());
    rec.model = plan.error().kind == core::ErrorKind::not_found ? "" : req.model;
    co_await io.respond(status, "application/json", error_json(plan.error()));
    app.metrics.request_done(rec.model.empty() ? "unknown" : req.model, "none", status, seconds_since(t0));
    co_return status;
  }
  rec.model = req.model;
  rec.route = plan->route;
  if (!plan->attempts.empty() && plan->attempts[0].est_cost_usd > 0)
    io.set_header("x-gateway-estimated-cost-usd", usd_header(plan->attempts[0].est_cost_usd));

  // Response cache: deterministic requests (temperature 0) or opted in by header.
  std::string cache_key_value;
  if (app.cache) {
    std::string opt;
    for (const auto& [k, v] : features.headers)
      if (k == "x-gateway-cache") opt = v;
    if (opt != "off" && cacheable(req, opt == "on" || opt == "force")) {
      cache_key_value = cache_key(tenant, req.raw_body);
      auto hit = co_await offload(app, [&app, &cache_key_value] { return app.cache->get(cache_key_value); });
      if (hook.cancelled) co_return client_left("during the cache lookup");
      if (hit) {
        app.metrics.cache(true);
        io.set_header("x-gateway-cache", "hit");
        io.set_header("x-gateway-deployment", hit->deployment);
        io.set_header("x-gateway-attempts", "0");
        io.set_header("x-gateway-cost-usd", "0.0");
        rec.deployment = hit->deployment;
        rec.cost_usd = "0.0";
        int status = 200;
        if (req.stream) {
          bool ok = true;
          for (const auto& c : hit->chunks)
            if (ok) ok = co_await io.send(c);
          if (ok) ok = co_await io.send_comment("x-gateway-cost-usd: 0.0");
          if (ok) ok = co_await io.send("[DONE]");
          if (ok) ok = co_await io.end_stream();
          status = ok ? 200 : 499;
        } else {
          status = co_await io.respond(200, "application/json", std::move(hit->body)) ? 200 : 499;
        }
        app.metrics.request_done(req.model, hit->deployment, status, seconds_since(t0));
        co_return status;
      }
      app.metrics.cache(false);
      io.set_header("x-gateway-cache", "miss");
    }
  }

  // Budgets and rate limits: reserve the worst case before dispatch.
  std::optional<Reservation> reservation;
  if (caller.tenant && app.limits) {
    int64_t worst_tokens = 0;
    core::Money worst = worst_case_cost(*router, *plan, features, req.n, worst_tokens);
    const Tenant* t = caller.tenant;
    // Lambdas given to offload capture by reference only: GCC 12 mishandles temporaries with
    // non-trivial destructors inside co_await expressions (double free seen in testing).
    auto reserve = [&app, t, &worst, &worst_tokens] {
      return app.limits->reserve(*t, worst, worst_tokens, std::chrono::system_clock::now());
    };
    auto r = co_await offload(app, reserve);
    if (hook.cancelled) {
      if (r) {
        const Reservation& res = *r;
        co_await offload(app, [&app, &res] { app.limits->release(res); return 0; });
      }
      co_return client_left("during the budget check");
    }
    if (!r) {
      core::Error e = std::move(r).error();
      int status = fail(e);
      set_retry_headers(io, e);
      co_await io.respond(status, "application/json", error_json(e));
      app.metrics.request_done(req.model, "none", status, seconds_since(t0));
      co_return status;
    }
    reservation = std::move(r).value();
  }
  Spend spend;

  const auto total_deadline = t0 + app.config.timeouts.total;
  RecordingIo recorder(io, cache_key_value.empty() ? 0 : size_t(1) << 20);
  ClientIo& out = cache_key_value.empty() ? io : static_cast<ClientIo&>(recorder);

  std::optional<core::Error> last_error;
  int status = 0;
  bool finished = false;
  const int64_t created =
      std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
  // Set when a deployment refused the request as too long for its window: what it had.
  std::optional<int64_t> refused_window;
  for (const auto& attempt : plan->attempts) {
    if (rec.attempts >= app.config.max_attempts || hook.cancelled || Clock::now() >= total_deadline) break;
    if (refused_window && !larger_window_fits(attempt, *refused_window, features)) continue;
    providers::Provider* provider = app.find_provider(attempt.deployment.provider);
    if (!provider) continue;
    if (rec.attempts > 0) app.metrics.failover(req.model);
    ++rec.attempts;
    rec.deployment = attempt.deployment.id;
    io.set_header("x-gateway-deployment", attempt.deployment.id);
    io.set_header("x-gateway-attempts", std::to_string(rec.attempts));
    io.set_header("x-gateway-route", plan->route);
    recorder.restart();

    providers::AttemptContext ctx;
    ctx.request = &req;
    ctx.target = {attempt.deployment.provider, attempt.deployment.region, attempt.deployment.model};
    ctx.timeouts = app.config.timeouts;
    ctx.total_deadline = total_deadline;
    ctx.request_id = rec.request_id;
    ctx.client = &client;
    ctx.cancel = &hook;
    const auto ta = Clock::now();
    router->attempt_started(attempt.deployment.id);
    providers::AttemptResult r = co_await provider->chat(ctx, req.stream ? &out : nullptr);
    reject_implausible_usage(app, r, attempt);
    const double attempt_s = seconds_since(ta);

    routing::AttemptOutcome outcome;
    outcome.deployment = attempt.deployment.id;
    outcome.ok = !r.error;
    outcome.error = r.error;
    outcome.ttft = r.ttft;
    outcome.duration = std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - ta);
    outcome.output_tokens = r.usage.completion_tokens;
    outcome.prefix_hash = features.prefix_hash;
    // A client that left says nothing about the deployment's health.
    if (!(r.error && r.error->kind == core::ErrorKind::cancelled)) router->record(outcome);
    app.metrics.attempt_done(attempt.deployment.id, r.error ? core::to_string(r.error->kind) : "ok", attempt_s,
                             std::chrono::duration<double>(r.ttft).count(), req.stream);
    std::optional<core::Money> cost;
    bool durable = true;
    const std::optional<AccountedUsage> acc = accounted_usage(r, features.est_input_tokens);
    const core::Usage* counted = acc ? &acc->usage : nullptr;
    if (acc) {
      app.metrics.tokens(attempt.deployment.id, acc->usage);
      rec.usage = acc->usage;
      cost = router->cost(*plan, attempt.deployment.id, acc->usage, std::chrono::system_clock::now());
      if (cost) {
        app.metrics.cost(tenant, attempt.deployment.id, cost->usd());
        rec.cost_usd = core::format_usd(*cost);
      }
      spend.any = true;
      spend.cost += cost.value_or(core::Money{0});
      spend.tokens += acc->usage.total_tokens();
      LedgerEntry entry =
          ledger_entry(ledger_id, rec, tenant, caller, attempt.deployment.id, r, *acc, cost.value_or(core::Money{0}));
      // Before the final bytes: the client never holds a complete answer the ledger lacks.
      durable = co_await ledger_durable(app, std::move(entry));
    }
    if (r.ttft.count() > 0) rec.ttft_ms = r.ttft.count() / 1000.0;

    if (!r.error) {
      if (req.stream) {
        bool ok = true;
        if (req.include_usage && !r.usage_chunk.empty()) ok = co_await out.send(r.usage_chunk);
        const std::string cost_comment = cost ? "x-gateway-cost-usd: " + core::format_usd(*cost) : std::string();
        if (ok && cost) ok = co_await io.send_comment(cost_comment);
        if (ok) ok = co_await io.send("[DONE]");  // not recorded: a cache hit sends its own, after its cost
        if (ok) ok = co_await io.end_stream();
        status = ok ? 200 : 499;
        if (ok && !cache_key_value.empty() && recorder.complete()) {
          CachedResponse cr;
          cr.chunks = std::move(recorder.chunks());
          cr.usage = r.usage;
          cr.deployment = attempt.deployment.id;
          auto ttl = app.config.cache.ttl;
          co_await offload(app, [&app, &cache_key_value, &cr, ttl] { app.cache->put(cache_key_value, std::move(cr), ttl); return 0; });
        }
      } else {
        if (cost) io.set_header("x-gateway-cost-usd", core::format_usd(*cost));
        if (!cache_key_value.empty()) {
          CachedResponse cr;
          cr.body = r.body;
          cr.usage = r.usage;
          cr.deployment = attempt.deployment.id;
          auto ttl = app.config.cache.ttl;
          co_await offload(app, [&app, &cache_key_value, &cr, ttl] { app.cache->put(cache_key_value, std::move(cr), ttl); return 0; });
        }
        status = co_await io.respond(200, "application/json", std::move(r.body)) ? 200 : 499;
      }
      if (!durable) rec.error = "ledger: entry not confirmed durable in time";
      app.metrics.request_done(req.model, attempt.deployment.id, status, seconds_since(t0));
      finished = true;
      break;
    }
    last_error = r.error;
    if (hook.reason == providers::CancelHook::Reason::drain) {
      // The client is still there: it gets an answer that says why its request ended.
      last_error = core::make_error(core::ErrorKind::unavailable,
                                    "the gateway is shutting down: its drain deadline passed before the answer was complete",
                                    core::ErrorSource::gateway, "gateway_draining");
      r.error = last_error;
      if (r.content_sent || io.committed()) {
        status = co_await fail_stream(app, io, req, rec, r, counted, created, t0, fail);
        finished = true;
      }
      break;
    }
    if (hook.cancelled || r.error->kind == core::ErrorKind::cancelled) {
      rec.error = "cancelled: client disconnected";
      app.metrics.error("cancelled");
      app.metrics.request_done(req.model, attempt.deployment.id, 499, seconds_since(t0));
      status = 499;
      finished = true;
      break;
    }
    if (r.content_sent || io.committed()) {
      status = co_await fail_stream(app, io, req, rec, r, counted, created, t0, fail);
      finished = true;
      break;
    }
    if (r.error->kind == core::ErrorKind::context_too_long && r.error->source != core::ErrorSource::client) {
      refused_window = refused_window ? std::min(*refused_window, attempt.context_window) : attempt.context_window;
      continue;
    }
    if (!r.error->retryable()) break;
  }
  if (!finished && hook.cancelled && hook.reason == providers::CancelHook::Reason::client_gone) {
    status = client_left("between attempts");
    finished = true;
  }
  if (!finished) {
    core::Error e = last_error ? *last_error
                               : core::make_error(core::ErrorKind::unavailable,
                                                  "no deployment could be tried for model '" + req.model + "'");
    if (last_error && rec.attempts > 1) e.message += " (after " + std::to_string(rec.attempts) + " attempts)";
    set_retry_headers(io, e);
    status = fail(e);
    co_await io.respond(status, "application/json", error_json(e));
    app.metrics.request_done(req.model, rec.deployment.empty() ? "none" : rec.deployment, status, seconds_since(t0));
  }
  if (reservation) {
    const Reservation& res = *reservation;
    auto settle = [&app, &res, &spend] {
      if (spend.any) app.limits->reconcile(res, spend.cost, spend.tokens, std::chrono::system_clock::now());
      else app.limits->release(res);
      return 0;
    };
    co_await offload(app, settle);
  }
  co_return status;
}

}  // namespace gateway
