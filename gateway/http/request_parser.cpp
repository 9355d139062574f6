#include "gateway/http/request_parser.h"

namespace gateway {

namespace {
void assign_lower(std::string& out, std::string_view in) {
  out.resize(in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    char c = in[i];
    out[i] = (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
  }
}
}  // namespace

std::string_view IncomingRequest::header(std::string_view lower_name) const {
  for (size_t i = 0; i < field_count; ++i)
    if (fields[i].first == lower_name) return fields[i].second;
  return {};
}

void IncomingRequest::clear() {
  method = boost::beast::http::verb::unknown;
  method_string.clear();
  target.clear();
  version = 11;
  keep_alive = true;
  field_count = 0;
  body.clear();
}

RequestParser::RequestParser(IncomingRequest& into) : r_(into) { r_.clear(); }

void RequestParser::on_request_impl(boost::beast::http::verb method, string_view method_str, string_view target,
                                    int version, error_code&) {
  r_.method = method;
  r_.method_string.assign(method_str.data(), method_str.size());
  r_.target.assign(target.data(), target.size());
  r_.version = version;
}

void RequestParser::on_field_impl(boost::beast::http::field, string_view name, string_view value, error_code&) {
  if (r_.field_count == r_.fields.size()) r_.fields.emplace_back();
  auto& [k, v] = r_.fields[r_.field_count++];
  assign_lower(k, std::string_view(name.data(), name.size()));
  v.assign(value.data(), value.size());
}

void RequestParser::on_header_impl(error_code&) { r_.keep_alive = keep_alive(); }

void RequestParser::on_body_init_impl(const boost::optional<std::uint64_t>& content_length, error_code&) {
  // basic_parser has already refused a Content-Length over the body limit.
  if (content_length) r_.body.reserve(static_cast<size_t>(*content_length));
}

std::size_t RequestParser::on_body_impl(string_view body, error_code&) {
  r_.body.append(body.data(), body.size());
  return body.size();
}

std::size_t RequestParser::on_chunk_body_impl(std::uint64_t, string_view body, error_code&) {
  r_.body.append(body.data(), body.size());
  return body.size();
}

}  // namespace gateway
