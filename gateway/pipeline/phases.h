#pragma once
// The pipeline's phases (pipeline.h), one declaration each. A phase that can refuse the request
// returns the refusal (the pipeline answers it), or nullopt to let the next phase run; a phase that
// may answer the request itself returns the status it ended with. The phases that need no wait are
// plain functions, and a phase with nothing to do is not entered: a coroutine frame per phase is a
// cost every request would pay (tests/bench/callgrind_request.sh).
#include <optional>
#include <string>
#include <string_view>

#include "core/error.h"
#include "core/task.h"
#include "gateway/pipeline/request_context.h"

namespace gateway {

using Ended = std::optional<int>;

struct PhaseRefusal {
  core::Error error;
  std::string model_label;  // the model label of the request counter
};

// pipeline.cpp
std::optional<PhaseRefusal> decode(RequestContext& ctx, std::string body);
// only for a surface that continues stored state (Surface::continues)
core::Task<std::optional<PhaseRefusal>> load_continuation(RequestContext& ctx);
std::optional<PhaseRefusal> authorize(RequestContext& ctx);
std::optional<PhaseRefusal> route(RequestContext& ctx);
// cache_phase.cpp (only when a cache is configured; storing only when ctx.cache_key is set)
core::Task<Ended> serve_from_cache(RequestContext& ctx);
core::Task<void> store_in_cache(RequestContext& ctx, const providers::AttemptResult& r, CachedResponse entry);
// admission.cpp (only for a tenant's request with budgets or limits; settle only with a reservation)
core::Task<Ended> admit(RequestContext& ctx);
core::Task<void> settle(RequestContext& ctx);
// attempts.cpp
core::Task<int> run_attempts(RequestContext& ctx);

// Shared endings (pipeline.cpp).
// Records a refusal or failure: access record, error counter, the refusal ring. Returns its status.
int note_failure(RequestContext& ctx, const core::Error& e);
// A refusal before any content: retry headers, the surface's error body, the request counted.
core::Task<int> refuse(RequestContext& ctx, const core::Error& e, std::string_view model_label,
                       std::string_view deployment_label = "none");
// The client left while `phase` ran: 499, counted.
int client_left(RequestContext& ctx, std::string_view phase);

}  // namespace gateway
