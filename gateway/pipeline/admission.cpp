// Budgets and rate limits: the worst case is reserved before dispatch, and the reservation is
// reconciled with what the attempts spent once they are over (or released when nothing was spent).
#include "core/offload.h"
#include "gateway/pipeline/phases.h"

namespace gateway {
namespace {

// Worst case for budgets: the most expensive candidate with the whole max_tokens (or a large
// default) of output at its price. `choices` (the request's n) multiplies the output: every choice
// is generated and billed.
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

}  // namespace

core::Task<Ended> admit(RequestContext& ctx) {
  LimitStore* limits = ctx.svc.limits;
  int64_t worst_tokens = 0;
  const core::Money worst = worst_case_cost(*ctx.router, ctx.plan, ctx.features, ctx.req.n, worst_tokens);
  const Tenant* t = ctx.caller.tenant;
  // Lambdas given to offload capture by reference only: GCC 12 mishandles temporaries with
  // non-trivial destructors inside co_await expressions (double free seen in testing).
  auto reserve = [limits, t, &worst, &worst_tokens] {
    return limits->reserve(*t, worst, worst_tokens, std::chrono::system_clock::now());
  };
  auto r = co_await core::offload(ctx.svc.blocking, reserve);
  if (ctx.hook.cancelled) {
    if (r) {
      const Reservation& res = *r;
      co_await core::offload(ctx.svc.blocking, [limits, &res] { limits->release(res); return 0; });
    }
    co_return client_left(ctx, "during the budget check");
  }
  if (!r) co_return co_await refuse(ctx, r.error(), ctx.req.model);
  ctx.reservation = std::move(r).value();
  co_return std::nullopt;
}

core::Task<void> settle(RequestContext& ctx) {
  LimitStore* limits = ctx.svc.limits;
  const Reservation& res = *ctx.reservation;
  const Spend& spend = ctx.spend;
  auto reconcile = [limits, &res, &spend] {
    if (spend.any) limits->reconcile(res, spend.cost, spend.tokens, std::chrono::system_clock::now());
    else limits->release(res);
    return 0;
  };
  co_await core::offload(ctx.svc.blocking, reconcile);
}

}  // namespace gateway
