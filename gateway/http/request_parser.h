#pragma once
// The server's HTTP/1.1 request parser: Beast's basic_parser does the framing (request line,
// header syntax, Content-Length and chunked bodies, size limits); this derived parser stores what
// it finds in an IncomingRequest that the connection keeps from request to request. Header names
// and values reuse the strings of the previous request, so on a keep-alive connection parsing a
// request allocates only its body (which the handler takes). Beast's own request<> would build a
// basic_fields (an allocation per field plus a search tree) that every lookup then walks.
#include <boost/beast/http/basic_parser.hpp>
#include <boost/beast/http/verb.hpp>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace gateway {

struct IncomingRequest {
  boost::beast::http::verb method = boost::beast::http::verb::unknown;
  std::string method_string;
  std::string target;
  int version = 11;
  bool keep_alive = true;
  // Header fields in arrival order, names lower-cased; only the first `field_count` are this request's.
  std::vector<std::pair<std::string, std::string>> fields;
  size_t field_count = 0;
  std::string body;

  // Value of the first field with this name (given in lower case), empty if absent.
  std::string_view header(std::string_view lower_name) const;
  // Forgets the previous request but keeps every string's capacity.
  void clear();
};

class RequestParser final : public boost::beast::http::basic_parser<true> {
 public:
  // Clears `into`; it receives the request as it is parsed and must outlive the parser.
  explicit RequestParser(IncomingRequest& into);

 private:
  using string_view = boost::beast::string_view;
  using error_code = boost::beast::error_code;
  void on_request_impl(boost::beast::http::verb method, string_view method_str, string_view target, int version,
                       error_code& ec) override;
  void on_response_impl(int, string_view, int, error_code&) override {}
  void on_field_impl(boost::beast::http::field, string_view name, string_view value, error_code& ec) override;
  void on_header_impl(error_code& ec) override;
  void on_body_init_impl(const boost::optional<std::uint64_t>& content_length, error_code& ec) override;
  std::size_t on_body_impl(string_view body, error_code& ec) override;
  void on_chunk_header_impl(std::uint64_t, string_view, error_code&) override {}
  std::size_t on_chunk_body_impl(std::uint64_t, string_view body, error_code& ec) override;
  void on_finish_impl(error_code&) override {}

  IncomingRequest& r_;
};

}  // namespace gateway
