#include "gateway/pipeline/accounting.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <atomic>

namespace gateway {
namespace {

namespace asio = boost::asio;

// The provider's usage when it reported one; otherwise, for an attempt that may have consumed
// tokens (the upstream took the request, or content reached the client) the gateway's estimate:
// the prompt estimate (the local engine's exact count when it has one) plus the completion tokens
// relayed so far. Budgets, the cost counter and the ledger all use this one figure. nullopt:
// nothing was consumed (refused, failed before the upstream answered).
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

LedgerEntry ledger_entry(const RequestContext& ctx, const std::string& deployment, const providers::AttemptResult& r,
                         const AccountedUsage& acc, core::Money cost, std::optional<core::Money> baseline) {
  LedgerEntry e;
  e.ts_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                std::chrono::system_clock::now().time_since_epoch()).count();
  e.tenant = ctx.tenant;
  e.key_id = ctx.caller.key_id;
  e.request_id = ctx.ledger_id;
  e.client_request_id = ctx.rec.request_id;
  e.deployment = deployment;
  e.status = r.error ? std::string("error:") + core::to_string(r.error->kind) : "ok";
  e.attempt = ctx.rec.attempts;
  e.usage_source = acc.source;
  e.usage = acc.usage;
  e.cost = cost;
  e.baseline_cost = baseline;
  return e;
}

}  // namespace

core::Task<bool> ledger_durable(PipelineServices& svc, LedgerEntry e) {
  auto ex = co_await asio::this_coro::executor;
  auto timer = std::make_shared<core::SteadyTimer>(ex);
  timer->expires_after(std::chrono::seconds(5));
  auto done = std::make_shared<std::atomic<bool>>(false);
  std::weak_ptr<core::SteadyTimer> weak = timer;
  bool taken = svc.ledger->append_for(std::move(e), [done, ex, weak] {
    done->store(true);
    asio::post(ex, [weak] { if (auto t = weak.lock()) t->cancel(); });
  }, std::chrono::seconds(1));
  if (!taken) {
    svc.metrics->error("ledger_full");
    co_return false;
  }
  while (!done->load()) {
    auto [ec] = co_await timer->async_wait(asio::as_tuple(core::use_task));
    if (!ec) break;  // deadline passed
  }
  if (!done->load()) svc.metrics->error("ledger_slow");
  co_return done->load();
}

void reject_implausible_usage(Metrics& metrics, providers::AttemptResult& r, const routing::PlannedAttempt& attempt,
                              int64_t answers) {
  if (!r.usage.present) return;
  std::string why;
  const int64_t bound = attempt.max_usage_tokens * std::max<int64_t>(answers, 1);
  if (r.usage.malformed) why = "a token count that is negative, fractional, too large or not a number";
  else if (bound > 0 && r.usage.total_tokens() > bound)
    why = std::to_string(r.usage.total_tokens()) + " tokens, more than the deployment's context window plus max output (" +
          std::to_string(bound) + ")";
  else return;
  metrics.error("upstream_usage_invalid");
  r.usage = core::Usage{};
  r.usage_chunk.clear();
  if (!r.error)
    r.error = core::make_error(core::ErrorKind::server_error,
                               attempt.deployment.id + " reported impossible usage: " + why, core::ErrorSource::upstream,
                               "invalid_upstream_usage");
}

AttemptAccount account_attempt(RequestContext& ctx, const routing::PlannedAttempt& attempt,
                               const providers::AttemptResult& r) {
  AttemptAccount a;
  a.accounted = accounted_usage(r, ctx.features.est_input_tokens);
  if (r.ttft.count() > 0) ctx.rec.ttft_ms = r.ttft.count() / 1000.0;
  if (!a.accounted) return a;
  const core::Usage& usage = a.accounted->usage;
  const std::string& id = attempt.deployment.id;
  ctx.svc.metrics->tokens(id, usage);
  ctx.rec.usage = usage;
  a.cost = ctx.router->cost(ctx.plan, id, usage, std::chrono::system_clock::now());
  if (a.cost) {
    ctx.svc.metrics->cost(ctx.tenant, id, a.cost->usd());
    ctx.rec.cost_usd = core::format_usd(*a.cost);
  }
  // The baseline prices the same usage the row is charged with, so ledger, counter and report agree;
  // an attempt the router could not price has no saving to show.
  if (auto b = a.cost ? ctx.router->baseline_cost(ctx.plan, usage) : std::nullopt) {
    a.baseline_cost = b;
    ctx.svc.metrics->saving(ctx.tenant, *a.cost, *b);
  }
  ctx.spend.any = true;
  ctx.spend.cost += a.cost.value_or(core::Money{0});
  ctx.spend.tokens += usage.total_tokens();
  if (ctx.svc.ledger) a.entry = ledger_entry(ctx, id, r, *a.accounted, a.cost.value_or(core::Money{0}), a.baseline_cost);
  return a;
}

}  // namespace gateway
