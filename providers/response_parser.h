#pragma once
// The upstream client's HTTP/1.1 response parser: Beast's basic_parser does the framing (status
// line, header syntax, Content-Length, chunked and read-to-close bodies); this derived parser keeps
// the status and the header fields in storage owned by the pooled connection (strings reused from
// one exchange to the next), and copies body bytes into a window the caller provides, like
// buffer_body: when the window is full, parsing stops with http::error::need_buffer.
#include <boost/beast/core/string.hpp>
#include <boost/beast/http/basic_parser.hpp>
#include <boost/beast/http/error.hpp>
#include <algorithm>
#include <cstring>
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

  // Where the next body bytes go; body_space() is what is left of the window after a read.
  void set_body_window(char* data, size_t size) { out_ = data, space_ = size; }
  size_t body_space() const { return space_; }

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
    const size_t n = std::min(space_, body.size());
    if (n > 0) std::memcpy(out_, body.data(), n);
    out_ += n;
    space_ -= n;
    if (n < body.size()) ec = boost::beast::http::error::need_buffer;
    return n;
  }

  ResponseHead& head_;
  char* out_ = nullptr;
  size_t space_ = 0;
};

}  // namespace providers
