#include "gateway/chat_handler.h"

#include <chrono>

#include "core/json_writer.h"
#include "core/money.h"
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
    for (const auto& [k, v] : headers) {
      if (k == "x-gateway-tenant") f.tenant = v;
      else if (k == "x-gateway-client-region") f.client_region = v;
      else if (k == "x-gateway-data-classification") f.data_classification = v;
      else if (k == "x-gateway-data-tags") {
        size_t start = 0;
        while (start <= v.size()) {
          size_t comma = v.find(',', start);
          std::string tag = v.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
          while (!tag.empty() && tag.front() == ' ') tag.erase(tag.begin());
          while (!tag.empty() && tag.back() == ' ') tag.pop_back();
          if (!tag.empty()) f.data_tags.push_back(tag);
          if (comma == std::string::npos) break;
          start = comma + 1;
        }
      }
    }
  }
  return f;
}

namespace {
std::string usd_header(double usd) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "%.9f", usd);
  std::string s(buf);
  while (s.size() > 3 && s.back() == '0' && s[s.size() - 2] != '.') s.pop_back();
  return s;
}
}  // namespace

boost::asio::awaitable<int> handle_chat(App& app, providers::UpstreamClient& client, ClientIo& io, std::string body,
                                        const RequestHeaders& headers, AccessRecord& rec) {
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
  const routing::RequestFeatures features = features_of(req, headers, app.config.trust_routing_headers);
  auto plan = router->plan(features);
  if (!plan) {
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
    router->attempt_started(attempt.deployment.id);
    providers::AttemptResult r = co_await provider->chat(ctx, req.stream ? &io : nullptr);
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
    app.metrics.tokens(attempt.deployment.id, r.usage);
    std::optional<core::Money> cost;
    if (r.usage.present) {
      rec.usage = r.usage;
      cost = router->cost(attempt.deployment.id, r.usage, std::chrono::system_clock::now());
      if (cost) {
        app.metrics.cost(attempt.deployment.id, cost->usd());
        rec.cost_usd = core::format_usd(*cost);
      }
    }
    if (r.ttft.count() > 0) rec.ttft_ms = r.ttft.count() / 1000.0;

    if (!r.error) {
      if (req.stream) {
        bool ok = true;
        if (req.include_usage && !r.usage_chunk.empty()) ok = co_await io.send(r.usage_chunk);
        if (ok && cost) ok = co_await io.send_comment("x-gateway-cost-usd: " + core::format_usd(*cost));
        if (ok) ok = co_await io.send("[DONE]");
        if (ok) ok = co_await io.end_stream();
        status = ok ? 200 : 499;
      } else {
        if (cost) io.set_header("x-gateway-cost-usd", core::format_usd(*cost));
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
