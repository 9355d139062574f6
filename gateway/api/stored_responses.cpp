#include "gateway/api/stored_responses.h"

#include <simdjson.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <vector>

#include "core/error.h"
#include "core/json_scan.h"
#include "core/json_writer.h"
#include "core/offload.h"
#include "gateway/api/openai_chat.h"

namespace gateway {
namespace {

constexpr std::string_view kPrefix = "/v1/responses/";

core::Error bad(std::string msg, std::string param) {
  return core::make_error(core::ErrorKind::bad_request, std::move(msg), core::ErrorSource::client,
                          "invalid_request_error", std::move(param));
}

StoredResponseReply reply_error(const core::Error& e) { return {e.http_status(), error_json(e)}; }

core::Error not_found(std::string_view id) {
  return core::make_error(core::ErrorKind::not_found,
                          "Response with id '" + std::string(id.substr(0, 128)) + "' not found.",
                          core::ErrorSource::client, "not_found");
}

// A response id as the gateway mints them: resp_ and letters/digits, bounded.
bool sane_id(std::string_view id) {
  if (id.size() < 6 || id.size() > 128 || id.substr(0, 5) != "resp_") return false;
  for (char c : id)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-')) return false;
  return true;
}

std::string_view param(std::string_view query, std::string_view name, bool* present = nullptr) {
  while (!query.empty()) {
    const auto amp = query.find('&');
    std::string_view kv = query.substr(0, amp);
    const auto eq = kv.find('=');
    if (kv.substr(0, eq) == name) {
      if (present) *present = true;
      return eq == std::string_view::npos ? std::string_view() : kv.substr(eq + 1);
    }
    if (amp == std::string_view::npos) break;
    query.remove_prefix(amp + 1);
  }
  if (present) *present = false;
  return {};
}

}  // namespace

bool stored_response_path(std::string_view path) {
  return path.size() > kPrefix.size() && path.substr(0, kPrefix.size()) == kPrefix;
}

core::Result<std::string> input_items_page(std::string_view items, std::string_view query) {
  int64_t limit = 20;
  bool has_limit = false;
  std::string_view l = param(query, "limit", &has_limit);
  if (has_limit) {
    auto [p, ec] = std::from_chars(l.data(), l.data() + l.size(), limit);
    if (ec != std::errc() || p != l.data() + l.size() || limit < 1 || limit > 100)
      return bad("limit must be an integer from 1 to 100.", "limit");
  }
  bool has_order = false;
  std::string_view order = param(query, "order", &has_order);
  if (has_order && order != "asc" && order != "desc") return bad("order must be asc or desc.", "order");
  const bool desc = order != "asc";
  bool has_after = false;
  std::string_view after = param(query, "after", &has_after);

  simdjson::dom::parser parser;
  auto padded = core::json::padded_copy(items, simdjson::SIMDJSON_PADDING);
  simdjson::dom::array arr;
  if (parser.parse(padded.data(), items.size(), false).get_array().get(arr))
    return core::make_error(core::ErrorKind::server_error, "a stored response's input items are damaged",
                            core::ErrorSource::gateway, "response_store_damaged");
  std::vector<simdjson::dom::element> all(arr.begin(), arr.end());
  if (desc) std::reverse(all.begin(), all.end());
  size_t start = 0;
  if (has_after) {
    start = all.size();
    for (size_t i = 0; i < all.size(); ++i) {
      std::string_view id;
      if (!all[i]["id"].get_string().get(id) && id == after) {
        start = i + 1;
        break;
      }
    }
  }
  const size_t end = std::min(all.size(), start + static_cast<size_t>(limit));
  std::string out = "{\"object\":\"list\",\"data\":[";
  for (size_t i = start; i < end; ++i) {
    if (i > start) out += ',';
    out += simdjson::minify(all[i]);
  }
  auto id_of = [&](size_t i) {
    std::string_view id;
    return i < end && !all[i]["id"].get_string().get(id) ? std::string(id) : std::string();
  };
  const std::string first_id = id_of(start), last_id = end > start ? id_of(end - 1) : std::string();
  out += "],\"first_id\":";
  out += first_id.empty() ? "null" : core::json_string(first_id);
  out += ",\"last_id\":";
  out += last_id.empty() ? "null" : core::json_string(last_id);
  out += ",\"has_more\":";
  out += end < all.size() ? "true" : "false";
  out += '}';
  return out;
}

core::Task<StoredResponseReply> serve_stored_response(ResponseStore* store, boost::asio::thread_pool* pool,
                                                      std::string tenant, std::string method, std::string path,
                                                      std::string query) {
  std::string_view rest = std::string_view(path).substr(kPrefix.size());
  const auto slash = rest.find('/');
  const std::string id(rest.substr(0, slash));
  const std::string_view sub = slash == std::string_view::npos ? std::string_view() : rest.substr(slash + 1);
  if (sub == "cancel") {
    if (method != "POST") co_return reply_error(core::make_error(core::ErrorKind::bad_request, "Use POST to cancel.",
                                                                core::ErrorSource::client, "method_not_allowed"));
    co_return reply_error(bad("Only responses created with background: true can be cancelled; this gateway does not "
                              "run background responses.", "response_id"));
  }
  if (!sub.empty() && sub != "input_items") co_return reply_error(not_found(id));
  const bool get = method == "GET", del = method == "DELETE" && sub.empty();
  if (!get && !del)
    co_return reply_error(core::make_error(core::ErrorKind::bad_request,
                                           sub.empty() ? "Use GET or DELETE on a stored response." : "Use GET on input_items.",
                                           core::ErrorSource::client, "method_not_allowed"));
  if (!store)
    co_return reply_error(core::make_error(core::ErrorKind::not_found,
                                           "Response with id '" + id.substr(0, 128) +
                                               "' not found: this gateway stores no responses (state.responses.store off).",
                                           core::ErrorSource::client, "not_found"));
  if (!sane_id(id)) co_return reply_error(not_found(id));
  if (del) {
    auto r = co_await core::offload(pool, [store, &tenant, &id] { return store->remove(tenant, id); });
    if (!r) co_return reply_error(r.error());
    if (!*r) co_return reply_error(not_found(id));
    co_return StoredResponseReply{200, "{\"id\":" + core::json_string(id) + ",\"object\":\"response.deleted\",\"deleted\":true}"};
  }
  auto r = co_await core::offload(pool, [store, &tenant, &id] { return store->get(tenant, id); });
  if (!r) co_return reply_error(r.error());
  if (!*r) co_return reply_error(not_found(id));
  if (sub.empty()) {
    StoredResponseReply ok;
    ok.body = std::move((*r)->response_json);
    co_return ok;
  }
  auto page = input_items_page((*r)->input_items_json, query);
  if (!page) co_return reply_error(page.error());
  co_return StoredResponseReply{200, std::move(page).value()};
}

}  // namespace gateway
