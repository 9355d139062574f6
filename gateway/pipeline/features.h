#pragma once
// What routing sees of a request: its content features plus the trusted routing headers.
#include <string_view>
#include <utility>
#include <vector>

#include "core/chat.h"
#include "routing/router.h"

namespace gateway {

// The request's header fields, names lower-cased, minus authorization and cookie: views into the
// connection's request, valid until the handler returns.
using RequestHeaders = std::vector<std::pair<std::string_view, std::string_view>>;

// Content features plus, when trusted, x-gateway-tenant, x-gateway-client-region,
// x-gateway-data-classification and x-gateway-data-tags. The features refer to `headers`
// (policies can match on them) and to `req`'s messages (content match conditions): they must not
// outlive either.
routing::RequestFeatures features_of(const core::ChatRequest& req, const RequestHeaders& headers, bool trust_headers);

}  // namespace gateway
