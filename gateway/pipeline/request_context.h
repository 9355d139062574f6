#pragma once
// One request's state as it moves through the pipeline's phases (pipeline.h). Each phase reads
// what the phases before it set and adds its own part; nothing here outlives the request.
#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include "core/chat.h"
#include "core/money.h"
#include "gateway/api/surface.h"
#include "gateway/observe/access_log.h"
#include "gateway/pipeline/features.h"
#include "gateway/pipeline/services.h"
#include "gateway/state/auth.h"
#include "gateway/state/limits.h"
#include "providers/provider.h"
#include "routing/router.h"

namespace gateway {

using PipelineClock = std::chrono::steady_clock;

// What the request's attempts cost so far (settled against the budget reservation at the end).
struct Spend {
  core::Money cost;
  int64_t tokens = 0;
  bool any = false;
};

struct RequestContext {
  RequestContext(PipelineServices& s, providers::UpstreamClient& c, ClientIo& i, Surface& sf, const RequestHeaders& h,
                 const Caller& who, AccessRecord& r)
      : svc(s), client(c), io(i), surface(sf), headers(h), caller(who), rec(r) {}

  // Given by the HTTP layer.
  PipelineServices& svc;
  providers::UpstreamClient& client;  // this worker thread's upstream pool
  ClientIo& io;
  Surface& surface;
  const RequestHeaders& headers;
  const Caller& caller;               // authenticated before the body was read
  AccessRecord& rec;                  // what the access log writes
  const PipelineClock::time_point t0 = PipelineClock::now();
  // Cancelled when the client leaves (or the drain deadline passes), whatever phase is running.
  providers::CancelHook hook;

  // decode
  core::ChatRequest req;
  std::string tenant;
  std::string ledger_id;              // the ledger's key; the client's id is only echoed
  // route
  std::shared_ptr<routing::Router> router;
  routing::RequestFeatures features;
  routing::Plan plan;
  // cache lookup: the key the answer is stored under; empty when not cacheable
  std::string cache_key;
  // admit
  std::optional<Reservation> reservation;
  // attempts
  Spend spend;
  bool native = false;                // the current attempt is relayed natively (not translated)
  int64_t created = 0;                // unix seconds, for chunks the gateway writes itself

  double seconds() const { return std::chrono::duration<double>(PipelineClock::now() - t0).count(); }
};

}  // namespace gateway
