#include "gateway/pipeline/pipeline.h"

#include <cstdio>

#include "gateway/pipeline/phases.h"

namespace gateway {
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

// A ledger that cannot write refuses new work (state.on_ledger_failure: refuse): serving it would
// be serving unaccounted. Entries already accepted stay queued and are retried.
std::optional<core::Error> ledger_refusal(const PipelineServices& svc) {
  if (!svc.ledger || !svc.settings.refuse_on_ledger_failure || !svc.ledger->failing()) return std::nullopt;
  return core::make_error(core::ErrorKind::unavailable,
                          "the spend ledger cannot write (" + svc.ledger->failure() +
                              "); refusing new requests rather than serving them unaccounted",
                          core::ErrorSource::gateway, "spend_ledger_unavailable");
}

struct InFlight {
  Metrics& metrics;
  explicit InFlight(Metrics& m) : metrics(m) { metrics.in_flight().Increment(); }
  ~InFlight() { metrics.in_flight().Decrement(); }
};

// The client socket is watched from the end of the body to the end of the response: whatever
// phase is running (a budget check, a connect, a wait for the upstream, a local generation) is
// aborted through ctx.hook when the client leaves.
struct DisconnectWatch {
  ClientIo& io;
  DisconnectWatch(ClientIo& i, providers::CancelHook& hook) : io(i) { io.watch_disconnect(&hook); }
  ~DisconnectWatch() { io.stop_watch(); }
};

}  // namespace

int note_failure(RequestContext& ctx, const core::Error& e) {
  ctx.rec.error = std::string(core::to_string(e.kind)) + ": " + e.message;
  if (!e.log_detail.empty()) ctx.rec.error += " [" + e.log_detail + "]";
  ctx.svc.metrics->error(core::to_string(e.kind));
  const int status = ctx.surface.error_status(e);
  ctx.svc.refusals->add({wall_ms_now(), ctx.rec.request_id, ctx.tenant, ctx.rec.model, status, core::to_string(e.kind),
                         e.code, e.message});
  return status;
}

core::Task<int> refuse(RequestContext& ctx, const core::Error& e, std::string_view model_label,
                       std::string_view deployment_label) {
  set_retry_headers(ctx.io, e);
  const int status = note_failure(ctx, e);
  co_await ctx.io.respond(status, "application/json", ctx.surface.error_body(e));
  ctx.svc.metrics->request_done(std::string(model_label), std::string(deployment_label), status, ctx.seconds());
  co_return status;
}

int client_left(RequestContext& ctx, std::string_view phase) {
  ctx.rec.error = "cancelled: client disconnected " + std::string(phase);
  ctx.svc.metrics->error("cancelled");
  ctx.svc.metrics->request_done(ctx.rec.model.empty() ? "unknown" : ctx.rec.model, "none", 499, ctx.seconds());
  return 499;
}

std::optional<PhaseRefusal> decode(RequestContext& ctx, std::string body) {
  auto parsed = ctx.surface.decode(std::move(body));
  if (!parsed) return PhaseRefusal{std::move(parsed).error(), "invalid"};
  ctx.req = std::move(parsed).value();
  ctx.rec.stream = ctx.req.stream;
  return std::nullopt;
}

core::Task<std::optional<PhaseRefusal>> load_continuation(RequestContext& ctx) {
  auto continued = co_await ctx.surface.load_continuation();
  if (!continued) co_return PhaseRefusal{std::move(continued).error(), "invalid"};
  ctx.req = std::move(continued).value();
  ctx.rec.stream = ctx.req.stream;
  co_return std::nullopt;
}

std::optional<PhaseRefusal> authorize(RequestContext& ctx) {
  if (!ctx.caller.tenant || model_allowed(*ctx.caller.tenant, ctx.req.model)) return std::nullopt;
  core::Error e = core::make_error(core::ErrorKind::forbidden,
                                   "Tenant '" + ctx.tenant + "' may not use model '" + ctx.req.model + "'",
                                   core::ErrorSource::client, "model_not_allowed", "model");
  e.permanent = true;
  return PhaseRefusal{std::move(e), "forbidden"};
}

std::optional<PhaseRefusal> route(RequestContext& ctx) {
  ctx.router = ctx.svc.router->load();
  ctx.features = features_of(ctx.req, ctx.headers, ctx.svc.settings.trust_routing_headers);
  // Route `match.path` sees the API path (the unprefixed alias of chat completions as its /v1 form).
  const std::string_view path = ctx.rec.path == "/chat/completions" ? std::string_view("/v1/chat/completions")
                                : ctx.rec.path == "/embeddings"     ? std::string_view("/v1/embeddings")
                                                                    : ctx.rec.path;
  if (ctx.features.path != path) ctx.features.path = path;
  if (ctx.caller.tenant) {
    ctx.features.tenant = ctx.tenant;                              // the authenticated tenant, whatever a header says
    ctx.features.tenant_settings = &ctx.caller.tenant->routing;   // authoritative: headers only narrow them
  }
  auto plan = ctx.router->plan(ctx.features);
  if (!plan) {
    const bool unknown = plan.error().kind == core::ErrorKind::not_found;
    ctx.rec.model = unknown ? "" : ctx.req.model;
    return PhaseRefusal{std::move(plan).error(), unknown ? "unknown" : ctx.req.model};
  }
  ctx.plan = std::move(plan).value();
  ctx.rec.model = ctx.req.model;
  ctx.rec.route = ctx.plan.route;
  if (!ctx.plan.attempts.empty() && ctx.plan.attempts[0].est_cost_usd > 0)
    ctx.io.set_header("x-gateway-estimated-cost-usd", usd_header(ctx.plan.attempts[0].est_cost_usd));
  return std::nullopt;
}

namespace {

// The phases before the attempts, in their own frame (what they keep is gone while an answer is
// relayed): the status when one of them ended the request (a refusal, a cached answer, a refused
// admission), nothing when the attempts run.
core::Task<Ended> before_attempts(RequestContext& ctx, std::string body) {
  std::optional<PhaseRefusal> refused;
  if (auto e = ledger_refusal(ctx.svc)) refused = PhaseRefusal{std::move(*e), "none"};
  if (!refused) refused = decode(ctx, std::move(body));
  if (!refused && ctx.surface.continues()) refused = co_await load_continuation(ctx);
  if (!refused) refused = authorize(ctx);
  if (!refused) refused = route(ctx);
  if (refused) co_return co_await refuse(ctx, refused->error, refused->model_label);
  if (ctx.svc.cache)
    if (Ended e = co_await serve_from_cache(ctx)) co_return e;
  if (ctx.caller.tenant && ctx.svc.limits) co_return co_await admit(ctx);
  co_return std::nullopt;
}

}  // namespace

// The phases in order (pipeline.h). Settling the budget reservation runs whatever the attempts did.
core::Task<int> handle_request(PipelineServices& svc, providers::UpstreamClient& client, ClientIo& io, Surface& surface,
                               std::string body, const RequestHeaders& headers, const Caller& caller, AccessRecord& rec) {
  InFlight in_flight(*svc.metrics);
  RequestContext ctx(svc, client, io, surface, headers, caller, rec);
  ctx.tenant = caller.tenant_name();
  rec.tenant = ctx.tenant;
  ctx.ledger_id = new_ledger_id();
  DisconnectWatch watch(io, ctx.hook);
  if (Ended e = co_await before_attempts(ctx, std::move(body))) co_return *e;
  const int status = co_await run_attempts(ctx);
  if (ctx.reservation) co_await settle(ctx);
  co_return status;
}

}  // namespace gateway
