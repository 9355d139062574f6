// The response cache phase: deterministic requests (temperature 0) or those opted in by the
// x-gateway-cache header are answered from the cache when a stored answer exists, and stored
// after a complete, successful answer.
#include "core/offload.h"
#include "gateway/pipeline/phases.h"

namespace gateway {
namespace {

std::string_view cache_header(const RequestContext& ctx) {
  std::string_view opt;
  for (const auto& [k, v] : ctx.features.headers)
    if (k == "x-gateway-cache") opt = v;
  return opt;
}

core::Task<int> replay(RequestContext& ctx, CachedResponse& hit) {
  ClientIo& io = ctx.io;
  io.set_header("x-gateway-cache", "hit");
  io.set_header("x-gateway-deployment", hit.deployment);
  io.set_header("x-gateway-attempts", "0");
  io.set_header("x-gateway-cost-usd", "0.0");
  ctx.rec.deployment = hit.deployment;
  ctx.rec.cost_usd = "0.0";
  bool ok = true;
  if (ctx.req.stream) {
    providers::ChatSink& sink = ctx.surface.stream_sink();
    for (const auto& c : hit.chunks)
      if (ok) ok = co_await sink.send(c);
    if (ok) ok = co_await ctx.surface.close_replayed_stream();
  } else {
    auto body = co_await ctx.surface.answer_body(std::move(hit.body), false);
    if (!body) co_return co_await refuse(ctx, body.error(), ctx.req.model, hit.deployment);
    ok = co_await io.respond(200, "application/json", std::move(body).value());
  }
  const int status = ok ? 200 : 499;
  ctx.svc.metrics->request_done(ctx.req.model, hit.deployment, status, ctx.seconds());
  co_return status;
}

}  // namespace

core::Task<Ended> serve_from_cache(RequestContext& ctx) {
  ResponseCache* cache = ctx.svc.cache;
  const std::string_view opt = cache_header(ctx);
  if (opt == "off" || !cacheable(ctx.req, opt == "on" || opt == "force")) co_return std::nullopt;
  // The cache key is the translated request, which leaves out what only a native relay carries.
  if (ctx.surface.translation_refusal()) co_return std::nullopt;
  if (ctx.req.embedding) co_return std::nullopt;  // the cache keeps chat answers only
  ctx.cache_key = cache_key(ctx.tenant, ctx.req.raw_body);
  const std::string& key = ctx.cache_key;
  auto hit = co_await core::offload(ctx.svc.blocking, [cache, &key] { return cache->get(key); });
  if (ctx.hook.cancelled) co_return client_left(ctx, "during the cache lookup");
  ctx.svc.metrics->cache(bool(hit));
  if (hit) co_return co_await replay(ctx, *hit);
  ctx.io.set_header("x-gateway-cache", "miss");
  co_return std::nullopt;
}

core::Task<void> store_in_cache(RequestContext& ctx, const providers::AttemptResult& r, CachedResponse entry) {
  entry.usage = r.usage;
  ResponseCache* cache = ctx.svc.cache;
  const std::string& key = ctx.cache_key;
  const auto ttl = ctx.svc.settings.cache_ttl;
  co_await core::offload(ctx.svc.blocking, [cache, &key, &entry, ttl] { cache->put(key, std::move(entry), ttl); return 0; });
}

}  // namespace gateway
