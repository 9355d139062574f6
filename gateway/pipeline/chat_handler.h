#pragma once
// POST /v1/chat/completions: parse, plan, then the attempt loop (fail over before content reached
// the client; in-band error after), and always, last, record the outcome.
#include "core/task.h"
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "gateway/observe/access_log.h"
#include "gateway/app/app.h"
#include "gateway/state/auth.h"
#include "gateway/http/client_io.h"

namespace gateway {

// The request's header fields, names lower-cased, minus authorization and cookie: views into the
// connection's request, valid until the handler returns.
using RequestHeaders = std::vector<std::pair<std::string_view, std::string_view>>;

// Returns the HTTP status given to the client (499 when the client went away).
core::Task<int> handle_chat(App& app, providers::UpstreamClient& client, ClientIo& io, std::string body,
                            const RequestHeaders& headers, const Caller& caller, AccessRecord& rec);

// What routing sees of a request: its content features plus the trusted routing headers
// (x-gateway-tenant, x-gateway-client-region, x-gateway-data-classification, x-gateway-data-tags).
// The features refer to `headers` (policies can match on them): they must not outlive them.
routing::RequestFeatures features_of(const core::ChatRequest& req, const RequestHeaders& headers, bool trust_headers);

}  // namespace gateway
