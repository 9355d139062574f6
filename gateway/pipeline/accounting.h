#pragma once
// Accounting one attempt: what usage it is charged with, its cost, and the ledger entry, made
// durable before the attempt's final bytes reach the client.
#include <optional>

#include "core/money.h"
#include "core/task.h"
#include "core/usage.h"
#include "gateway/pipeline/request_context.h"

namespace gateway {

// The usage an attempt is accounted with, and where it came from ("provider" or "estimated").
struct AccountedUsage {
  core::Usage usage;
  const char* source = "provider";
};

struct AttemptAccount {
  std::optional<AccountedUsage> accounted;  // nullopt: the attempt consumed nothing
  std::optional<core::Money> cost;          // nullopt: not priced (no usage, or no price known)
  std::optional<core::Money> baseline_cost; // nullopt: the route has no baseline
  std::optional<LedgerEntry> entry;         // what the ledger must record (when there is a ledger)
  bool durable = true;                      // the ledger confirmed the entry in time
  const core::Usage* counted() const { return accounted ? &accounted->usage : nullptr; }
};

// An upstream usage report that cannot be true (a malformed count, or more tokens than the
// deployment's context window plus max output, times `answers`: the input rows of an embeddings
// request) fails the attempt as the upstream's error, counted, and is dropped: the attempt is then
// accounted with the estimate, never priced from it.
void reject_implausible_usage(Metrics& metrics, providers::AttemptResult& r, const routing::PlannedAttempt& attempt,
                              int64_t answers = 1);

// Tokens and cost counters, the access record, the request's spend, and the ledger entry to write.
AttemptAccount account_attempt(RequestContext& ctx, const routing::PlannedAttempt& attempt,
                               const providers::AttemptResult& r);

// Appends to the ledger and waits (bounded) until the entry is durable, so that a response the
// client receives in full is always accounted, even if the process dies right after. Returns
// whether the ledger confirmed it in time.
core::Task<bool> ledger_durable(PipelineServices& svc, LedgerEntry e);

}  // namespace gateway
