#pragma once
// The upstream client's HTTP/1.1 response parser: Beast's basic_parser does the framing (status
// line, header syntax, Content-Length, chunked and read-to-close bodies); this derived parser keeps
// the status and the header fields in storage owned by the pooled connection (strings reused from
// one exchange to the next), and hands out body bytes as views of the read buffer, uncopied: one
// piece per put() (a second piece in the same put() stops it with http::error::need_buffer and is
// delivered by the next one). A piece stays valid until the read buffer is next prepared, i.e.
// until the next read on the connection; the parser must not be eager (Beast's default), since an
// eager put() could go on to ask for more input, and that read could move the bytes.
#include <boost/beast/core/string.hpp>
#include <boost/beast/http/basic_parser.hpp>
#include <boost/beast/http/error.hpp>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace providers {

struct ResponseHead {
  int status = 0;
  // Header fields as received; only the first `field_count` belong to the current response.
  std::vector<std::pair<std::string, std::string>> fields;
  size_t field_count = 0;

  // Value of the first field with this name (any case), empty if absent.
  std::string_view header(std::string_view name) const {
    for (size_t i = 0; i < field_count; ++i)
      if (boost::beast::iequals(fields[i].first, name)) return fields[i].second;
    return {};
  }
};

class ResponseParser final : public boost::beast::http::basic_parser<false> {
 public:
  // Clears `head`, which receives the status and fields and must outlive the parser.
  explicit ResponseParser(ResponseHead& head) : head_(head) {
    head_.status = 0;
    head_.field_count = 0;
  }

  // The body piece the last put() delivered (empty if none); take_piece() clears it.
  std::string_view take_piece() { return std::exchange(piece_, {}); }
  bool has_piece() const { return !piece_.empty(); }

 private:
  using string_view = boost::beast::string_view;
  using error_code = boost::beast::error_code;

  void on_request_impl(boost::beast::http::verb, string_view, string_view, int, error_code&) override {}
  void on_response_impl(int code, string_view, int, error_code&) override { head_.status = code; }
  void on_field_impl(boost::beast::http::field, string_view name, string_view value, error_code&) override {
    if (head_.field_count == head_.fields.size()) head_.fields.emplace_back();
    auto& [k, v] = head_.fields[head_.field_count++];
    k.assign(name.data(), name.size());
    v.assign(value.data(), value.size());
  }
  void on_header_impl(error_code&) override {}
  void on_body_init_impl(const boost::optional<std::uint64_t>&, error_code&) override {}
  std::size_t on_body_impl(string_view body, error_code& ec) override { return take(body, ec); }
  void on_chunk_header_impl(std::uint64_t, string_view, error_code&) override {}
  std::size_t on_chunk_body_impl(std::uint64_t, string_view body, error_code& ec) override { return take(body, ec); }
  void on_finish_impl(error_code&) override {}

  std::size_t take(string_view body, error_code& ec) {
    if (!piece_.empty()) {
      ec = boost::beast::http::error::need_buffer;
      return 0;
    }
    piece_ = std::string_view(body.data(), body.size());
    return body.size();
  }

  ResponseHead& head_;
  std::string_view piece_;
};

}  // namespace providers
