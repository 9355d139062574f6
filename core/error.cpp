#include "core/error.h"

namespace core {

const char* to_string(ErrorKind kind) {
  switch (kind) {
    case ErrorKind::bad_request: return "bad_request";
    case ErrorKind::auth: return "auth";
    case ErrorKind::forbidden: return "forbidden";
    case ErrorKind::not_found: return "not_found";
    case ErrorKind::timeout: return "timeout";
    case ErrorKind::payload_too_large: return "payload_too_large";
    case ErrorKind::context_too_long: return "context_too_long";
    case ErrorKind::content_filter: return "content_filter";
    case ErrorKind::out_of_balance: return "out_of_balance";
    case ErrorKind::rate_limited: return "rate_limited";
    case ErrorKind::overloaded: return "overloaded";
    case ErrorKind::server_error: return "server_error";
    case ErrorKind::unavailable: return "unavailable";
    case ErrorKind::cancelled: return "cancelled";
    case ErrorKind::internal: return "internal";
  }
  return "internal";
}

const char* to_string(ErrorSource source) {
  switch (source) {
    case ErrorSource::client: return "client";
    case ErrorSource::gateway: return "gateway";
    case ErrorSource::upstream: return "upstream";
    case ErrorSource::local: return "local";
  }
  return "gateway";
}

bool Error::retryable() const {
  switch (kind) {
    // Upstream-side failures: another deployment (or the same one later) may succeed.
    // An upstream auth failure is a misconfigured key for that deployment only.
    case ErrorKind::auth: return source == ErrorSource::upstream;
    case ErrorKind::timeout:
    case ErrorKind::out_of_balance:
    case ErrorKind::rate_limited:
    case ErrorKind::overloaded:
    case ErrorKind::server_error:
    case ErrorKind::unavailable: return source != ErrorSource::client;
    // A 404 from an upstream means that deployment lacks the model: others may have it.
    case ErrorKind::not_found: return source == ErrorSource::upstream;
    default: return false;
  }
}

bool Error::deployment_fault() const {
  if (source != ErrorSource::upstream && source != ErrorSource::local) return false;
  if (back_pressure) return false;
  switch (kind) {
    case ErrorKind::auth:
    case ErrorKind::timeout:
    case ErrorKind::out_of_balance:
    case ErrorKind::rate_limited:
    case ErrorKind::overloaded:
    case ErrorKind::server_error:
    case ErrorKind::unavailable: return true;
    default: return false;
  }
}

int Error::http_status() const {
  switch (kind) {
    case ErrorKind::bad_request:
    case ErrorKind::context_too_long:
    case ErrorKind::content_filter: return 400;
    // An upstream key problem is the operator's fault, not the client's: 502.
    case ErrorKind::auth: return source == ErrorSource::upstream ? 502 : 401;
    case ErrorKind::forbidden: return 403;
    case ErrorKind::not_found: return source == ErrorSource::upstream ? 502 : 404;
    case ErrorKind::timeout: return source == ErrorSource::client ? 408 : 504;
    case ErrorKind::payload_too_large: return 413;
    case ErrorKind::out_of_balance: return 503;
    case ErrorKind::rate_limited: return 429;
    case ErrorKind::overloaded: return 503;
    case ErrorKind::server_error: return 502;
    case ErrorKind::unavailable: return 503;
    case ErrorKind::cancelled: return 499;
    case ErrorKind::internal: return 500;
  }
  return 500;
}

const char* Error::openai_type() const {
  switch (kind) {
    case ErrorKind::bad_request:
    case ErrorKind::context_too_long:
    case ErrorKind::content_filter:
    case ErrorKind::payload_too_large: return "invalid_request_error";
    case ErrorKind::not_found: return source == ErrorSource::upstream ? "upstream_error" : "invalid_request_error";
    case ErrorKind::auth: return source == ErrorSource::upstream ? "upstream_error" : "authentication_error";
    case ErrorKind::forbidden: return "permission_error";
    case ErrorKind::rate_limited: return "rate_limit_error";
    case ErrorKind::timeout: return "timeout_error";
    case ErrorKind::internal: return "server_error";
    default: return source == ErrorSource::upstream ? "upstream_error" : "server_error";
  }
}

Error make_error(ErrorKind kind, std::string message, ErrorSource source, std::string code,
                 std::string param) {
  Error e;
  e.kind = kind;
  e.message = std::move(message);
  e.source = source;
  e.code = std::move(code);
  e.param = std::move(param);
  return e;
}

}  // namespace core
