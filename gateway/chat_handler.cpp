#include "gateway/chat_handler.h"

#include <chrono>

#include "core/json_writer.h"
#include "gateway/openai_api.h"

namespace gateway {
namespace {

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

std::string error_chunk(const std::string& id, const std::string& model, int64_t created) {
  std::string s = "{\"id\":";
  core::append_json_string(s, id);
  s += ",\"object\":\"chat.completion.chunk\",\"created\":" + std::to_string(created) + ",\"model\":";
  core::append_json_string(s, model);
  s += ",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"error\"}]}";
  return s;
}

routing::RequestFeatures features_of(const core::ChatRequest& req) {
  routing::RequestFeatures f;
  f.model = req.model;
  f.est_input_tokens = core::estimate_prompt_tokens(req);
  f.max_tokens = req.max_tokens;
  f.needs_tools = req.has_tools;
  f.needs_json = req.wants_json;
  f.needs_vision = req.has_images;
  f.needs_reasoning = req.wants_reasoning;
  f.stream = req.stream;
  return f;
}

}  // namespace

boost::asio::awaitable<int> handle_chat(App& app, providers::UpstreamClient& client, ClientIo& io, std::string body,
                                        AccessRecord& rec) {
  const auto t0 = Clock::now();
  app.metrics.in_flight().Increment();
  struct InFlight {
    App& app;
    ~InFlight() { app.metrics.in_flight().Decrement(); }
  } in_flight{app};

  auto fail = [&](const core::Error& e) -> int {
    rec.error = std::string(core::to_string(e.kind)) + ": " + e.message;
    app.metrics.error(core::to_string(e.kind));
    return e.http_status();
  };

  auto parsed = parse_chat_request(std::move(body));
  if (!parsed) {
    int status = fail(parsed.error());
    co_await io.respond(status, "application/json", error_json(parsed.error()));
    app.metrics.request_done("invalid", "none", status, seconds_since(t0));
    co_return status;
  }
  core::ChatRequest& req = *parsed;
  rec.stream = req.stream;
  std::shared_ptr<routing::Router> router = app.router.load();
  auto plan = router->plan(features_of(req));
  if (!plan) {
    int status = fail(plan.error());
    rec.model = plan.error().kind == core::ErrorKind::not_found ? "" : req.model;
    co_await io.respond(status, "application/json", error_json(plan.error()));
    app.metrics.request_done(rec.model.empty() ? "unknown" : req.model, "none", status, seconds_since(t0));
    co_return status;
  }
  rec.model = req.model;
  rec.route = plan->route;

  const auto total_deadline = t0 + app.config.timeouts.total;
  providers::CancelHook hook;
  io.watch_disconnect(&hook);
  struct StopWatch {
    ClientIo& io;
    ~StopWatch() { io.stop_watch(); }
  } stop_watch{io};

  std::optional<core::Error> last_error;
  int status = 0;
  const int64_t created =
      std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
  for (const auto& attempt : plan->attempts) {
    if (rec.attempts >= app.config.max_attempts || hook.cancelled || Clock::now() >= total_deadline) break;
    providers::Provider* provider = app.find_provider(attempt.deployment.provider);
    if (!provider) continue;
    if (rec.attempts > 0) app.metrics.failover(req.model);
    ++rec.attempts;
    rec.deployment = attempt.deployment.id;
    io.set_header("x-gateway-deployment", attempt.deployment.id);
    io.set_header("x-gateway-attempts", std::to_string(rec.attempts));
    io.set_header("x-gateway-route", plan->route);

    providers::AttemptContext ctx;
    ctx.request = &req;
    ctx.target = {attempt.deployment.provider, attempt.deployment.region, attempt.deployment.model};
    ctx.timeouts = app.config.timeouts;
    ctx.total_deadline = total_deadline;
    ctx.request_id = rec.request_id;
    ctx.client = &client;
    ctx.cancel = &hook;
    const auto ta = Clock::now();
    providers::AttemptResult r = co_await provider->chat(ctx, req.stream ? &io : nullptr);
    const double attempt_s = seconds_since(ta);

    routing::AttemptOutcome outcome;
    outcome.deployment = attempt.deployment.id;
    outcome.ok = !r.error;
    outcome.error = r.error;
    outcome.ttft = r.ttft;
    outcome.duration = std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - ta);
    outcome.output_tokens = r.usage.completion_tokens;
    // A client that left says nothing about the deployment's health.
    if (!(r.error && r.error->kind == core::ErrorKind::cancelled)) router->record(outcome);
    app.metrics.attempt_done(attempt.deployment.id, r.error ? core::to_string(r.error->kind) : "ok", attempt_s,
                             std::chrono::duration<double>(r.ttft).count(), req.stream);
    app.metrics.tokens(attempt.deployment.id, r.usage);
    if (r.usage.present) rec.usage = r.usage;
    if (r.ttft.count() > 0) rec.ttft_ms = r.ttft.count() / 1000.0;

    if (!r.error) {
      if (req.stream) {
        bool ok = true;
        if (req.include_usage && !r.usage_chunk.empty()) ok = co_await io.send(r.usage_chunk);
        if (ok) ok = co_await io.send("[DONE]");
        if (ok) ok = co_await io.end_stream();
        status = ok ? 200 : 499;
      } else {
        status = co_await io.respond(200, "application/json", std::move(r.body)) ? 200 : 499;
      }
      app.metrics.request_done(req.model, attempt.deployment.id, status, seconds_since(t0));
      co_return status;
    }
    last_error = r.error;
    if (hook.cancelled || r.error->kind == core::ErrorKind::cancelled) {
      rec.error = "cancelled: client disconnected";
      app.metrics.error("cancelled");
      app.metrics.request_done(req.model, attempt.deployment.id, 499, seconds_since(t0));
      co_return 499;
    }
    if (r.content_sent || io.committed()) {
      // Content already reached the client: say so in-band, never a fabricated [DONE].
      fail(*r.error);
      bool ok = co_await io.send(error_chunk(rec.request_id, req.model, created));
      if (ok) ok = co_await io.send(error_json(*r.error));
      if (ok) co_await io.end_stream();
      app.metrics.request_done(req.model, attempt.deployment.id, 200, seconds_since(t0));
      co_return 200;
    }
    if (!r.error->retryable()) break;
  }
  core::Error e = last_error ? *last_error
                             : core::make_error(core::ErrorKind::unavailable,
                                                "no deployment could be tried for model '" + req.model + "'");
  if (last_error && rec.attempts > 1) e.message += " (after " + std::to_string(rec.attempts) + " attempts)";
  status = fail(e);
  co_await io.respond(status, "application/json", error_json(e));
  app.metrics.request_done(req.model, rec.deployment.empty() ? "none" : rec.deployment, status, seconds_since(t0));
  co_return status;
}

}  // namespace gateway
