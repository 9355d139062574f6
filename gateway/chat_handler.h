#pragma once
// POST /v1/chat/completions: parse, plan, then the attempt loop (fail over before content reached
// the client; in-band error after), and always, last, record the outcome.
#include <boost/asio/awaitable.hpp>
#include <string>

#include "gateway/access_log.h"
#include "gateway/app.h"
#include "gateway/client_io.h"

namespace gateway {

// Returns the HTTP status given to the client (499 when the client went away).
boost::asio::awaitable<int> handle_chat(App& app, providers::UpstreamClient& client, ClientIo& io, std::string body,
                                        AccessRecord& rec);

}  // namespace gateway
