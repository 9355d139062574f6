#pragma once
// Errors as values on the request path: what went wrong, where it came from, and
// whether another attempt (possibly at another deployment) may help.
#include <chrono>
#include <string>

namespace core {

enum class ErrorKind {
  bad_request,        // 400: the client's request is wrong; retrying elsewhere will not help
  auth,               // 401: bad or missing credentials (client key, or upstream key)
  forbidden,          // 403: policy refusal or permission denied
  not_found,          // 404: unknown model / path
  timeout,            // 408/504: a deadline passed
  payload_too_large,  // 413
  context_too_long,   // 400: prompt exceeds the model's context
  content_filter,     // 400: provider moderation refused the content
  out_of_balance,     // upstream account has no money: take the deployment out of rotation
  rate_limited,       // 429: slow down (honour retry_after)
  overloaded,         // 503/529: upstream busy, try elsewhere
  server_error,       // 500/502: upstream broke
  unavailable,        // 503: no deployment can serve (none configured, all open circuits)
  cancelled,          // the client went away
  internal,           // 500: a bug or invariant failure in the gateway
};

enum class ErrorSource { client, gateway, upstream, local };

const char* to_string(ErrorKind kind);
const char* to_string(ErrorSource source);

struct Error {
  ErrorKind kind = ErrorKind::internal;
  std::string message;
  std::string code;    // machine-readable code; for upstream errors the provider's own code
  std::string param;   // offending request field, when known
  ErrorSource source = ErrorSource::gateway;
  int upstream_status = 0;                   // HTTP status the upstream returned, 0 if none
  std::chrono::milliseconds retry_after{0};  // from Retry-After, 0 if absent
  // For the operator's log only, never sent to a client: internal host:port, file paths.
  std::string log_detail;
  // Retrying the same request cannot succeed until an operator acts (no API key configured, a policy
  // refusal, a model the tenant may not use): clients get no Retry-After and x-should-retry: false.
  bool permanent = false;
  // The deployment refused for load it carries by design (a full local queue, a concurrency limit):
  // fail over, but it is not a fault that opens its circuit or cools it down.
  bool back_pressure = false;

  // May another attempt (same or other deployment) succeed where this one failed?
  bool retryable() const;
  // Should the deployment be taken out of rotation for a while (breaker / cooldown)?
  bool deployment_fault() const;
  // HTTP status to return to the client for this error.
  int http_status() const;
  // OpenAI error "type" string for this error.
  const char* openai_type() const;
};

Error make_error(ErrorKind kind, std::string message, ErrorSource source = ErrorSource::gateway,
                 std::string code = {}, std::string param = {});

}  // namespace core
