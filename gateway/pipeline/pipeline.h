#pragma once
// The request pipeline every API surface shares. Its phases, in order, over one RequestContext:
//   decode       the surface turns the client's body into the core request (and, for a request
//                that continues a stored conversation, loads it: load_continuation)
//   authorize    the tenant may use the model; the ledger can record what is served
//   route        the routing policy's plan: candidates in order, with their prices
//   cache        a stored answer is replayed (it costs nothing)
//   admit        budgets and rate limits reserve the worst case
//   attempts     each candidate in turn, failing over before content reached the client, relayed
//                through the surface's encoder; each attempt is accounted (ledger, metrics, live
//                stats) before its final bytes are sent
//   settle       the reservation is reconciled with what was spent (always runs)
// The surfaces differ only in their decoder and encoder (gateway/api/surface.h).
#include <string>

#include "core/task.h"
#include "gateway/api/surface.h"
#include "gateway/observe/access_log.h"
#include "gateway/pipeline/features.h"
#include "gateway/pipeline/services.h"
#include "gateway/state/auth.h"

namespace gateway {

// Returns the HTTP status given to the client (499 when the client went away).
core::Task<int> handle_request(PipelineServices& svc, providers::UpstreamClient& client, ClientIo& io, Surface& surface,
                               std::string body, const RequestHeaders& headers, const Caller& caller, AccessRecord& rec);

}  // namespace gateway
