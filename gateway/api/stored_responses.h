#pragma once
// The stored-response endpoints of the OpenAI Responses API:
//   GET    /v1/responses/{id}              the Response object
//   GET    /v1/responses/{id}/input_items  its input items, a cursor page (limit, order, after)
//   DELETE /v1/responses/{id}              {"id":...,"object":"response.deleted","deleted":true}
//   POST   /v1/responses/{id}/cancel       refused: only background responses can be cancelled
// A response another tenant stored is answered exactly like one never stored (404), so ids do not
// leak across tenants.
#include <string>
#include <string_view>

#include "core/result.h"
#include "core/task.h"
#include "gateway/state/response_store.h"

namespace boost::asio {
class thread_pool;
}

namespace gateway {

struct StoredResponseReply {
  int status = 200;
  std::string body;  // JSON
};

// True for the paths above (the caller routes them here).
bool stored_response_path(std::string_view path);

// `method` is GET, DELETE or POST; `query` the part after '?'. With no store (state.responses.store
// off), every path answers 404 with a message saying storage is off.
core::Task<StoredResponseReply> serve_stored_response(ResponseStore* store, boost::asio::thread_pool* pool,
                                                      std::string tenant, std::string method, std::string path,
                                                      std::string query);

// One page of input items (the JSON array text `items`): OpenAI's list object with data, first_id,
// last_id and has_more. `order` asc keeps the request's order, desc (the API's default) reverses it;
// `after` starts after the item with that id. Errors: bad_request naming the parameter.
core::Result<std::string> input_items_page(std::string_view items, std::string_view query);

}  // namespace gateway
