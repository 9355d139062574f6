#pragma once
// POST /v1/chat/completions: parse, plan, then the attempt loop (fail over before content reached
// the client; in-band error after), and always, last, record the outcome.
#include <boost/asio/awaitable.hpp>
#include <string>
#include <utility>
#include <vector>

#include "gateway/access_log.h"
#include "gateway/app.h"
#include "gateway/auth.h"
#include "gateway/client_io.h"

namespace gateway {

using RequestHeaders = std::vector<std::pair<std::string, std::string>>;  // lower-case names

// Returns the HTTP status given to the client (499 when the client went away).
boost::asio::awaitable<int> handle_chat(App& app, providers::UpstreamClient& client, ClientIo& io, std::string body,
                                        RequestHeaders headers, const Caller& caller, AccessRecord& rec);

// What routing sees of a request: its content features plus the trusted routing headers
// (x-gateway-tenant, x-gateway-client-region, x-gateway-data-classification, x-gateway-data-tags).
// The headers end up in the features (policies can match on them), hence taken by value.
routing::RequestFeatures features_of(const core::ChatRequest& req, RequestHeaders headers, bool trust_headers);

}  // namespace gateway
