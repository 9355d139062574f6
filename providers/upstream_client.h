#pragma once
// HTTP/1.1 client for upstream providers: HTTPS with certificate and host-name verification and
// SNI, keep-alive pools per endpoint (per worker thread, so no locks), and separate deadlines for
// connect, TLS handshake, time to first byte, idle time between body reads, and total.
// Beast stays inside the .cpp: this header needs only Asio's awaitable.
#include "core/task.h"
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/clock.h"
#include "core/result.h"

namespace providers {

struct Endpoint {
  bool tls = false;
  std::string host;
  std::string port;
  std::string base_path;  // e.g. "/compatible-mode/v1" (no trailing slash)
  std::string key;        // "http(s)://host:port": names the endpoint's connection pool
  std::string authority;  // the Host header: host, [IPv6], and ":port" unless the scheme's default
};
// Parses "http(s)://host[:port][/path]". Rejects anything else.
core::Result<Endpoint> parse_endpoint(std::string_view url);

struct UpstreamTimeouts {
  std::chrono::milliseconds connect{5000};
  std::chrono::milliseconds tls{5000};
  std::chrono::milliseconds first_byte{120000};
  std::chrono::milliseconds idle{60000};
  std::chrono::milliseconds total{600000};
};

struct TlsSettings {
  std::string ca_file;  // extra trusted CA bundle; empty = system store only
};

class TlsContext;  // wraps boost::asio::ssl::context; defined in the .cpp
core::Result<std::shared_ptr<TlsContext>> make_tls_context(const TlsSettings& settings);

// Lets the gateway abort a request's upstream work when its client goes away (or the gateway
// drains): set by whoever holds something to abort at the moment (the upstream client while it
// connects and waits for the header, the provider while it reads the body, the local engine while
// it generates), cleared when that thing is gone. Used on one thread: the request's worker.
struct CancelHook {
  enum class Reason { none, client_gone, drain };
  std::function<void()> fn;
  bool cancelled = false;
  Reason reason = Reason::none;
  void cancel(Reason why = Reason::client_gone) {
    if (cancelled) return;
    cancelled = true;
    reason = why;
    if (fn) fn();
  }
};

struct UpstreamRequest {
  // Views: the strings they name must outlive the start() call (literals, the caller's frame, or
  // the provider's own precomputed strings).
  std::string_view target;  // path + query
  std::vector<std::pair<std::string_view, std::string_view>> headers;
  std::string body;
  // When set, becomes true once the whole request was written to the upstream's socket: from then
  // on the upstream may be working on (and billing) it, even if the exchange fails or is cancelled.
  bool* written = nullptr;
};

class UpstreamExchange {
 public:
  virtual ~UpstreamExchange() = default;
  virtual int status() const = 0;
  virtual std::string header(std::string_view name) const = 0;
  // Next piece of the body as it arrives; an empty view means the body is complete.
  // `deadline` bounds this read (the caller combines idle and total deadlines).
  virtual core::Task<core::Result<std::string_view>> read_some(core::SteadyTime deadline) = 0;
  // Whole body, bounded in bytes.
  virtual core::Task<core::Result<std::string>> read_all(core::SteadyTime deadline, size_t max_bytes) = 0;
  // Abort: close the connection now (the client went away). Safe to call at any time on the same thread.
  virtual void cancel() = 0;
};

struct PoolStats {
  uint64_t connects = 0, reuses = 0, tls_handshakes = 0;
};

// One per worker thread: all its coroutines run on that thread's io_context.
class UpstreamClient {
 public:
  UpstreamClient(core::Executor executor, std::shared_ptr<TlsContext> tls, size_t max_idle_per_endpoint,
                 size_t max_open_per_endpoint);
  ~UpstreamClient();

  // Connects (or reuses a pooled connection), sends the request and reads the response header.
  // `endpoint` (from parse_endpoint) must outlive the exchange returned.
  // Errors: timeout (which phase in the message), server_error (connect refused, TLS failure, reset),
  // cancelled (`cancel` fired: the connection in progress is closed at once, in every phase).
  core::Task<core::Result<std::unique_ptr<UpstreamExchange>>> start(const Endpoint& endpoint,
                                                                    const UpstreamRequest& request,
                                                                    const UpstreamTimeouts& timeouts,
                                                                    core::SteadyTime total_deadline,
                                                                    CancelHook* cancel = nullptr);
  const PoolStats& stats() const { return stats_; }
  // Connections' read buffers held now: one per connection that is reading, none for a connection
  // that waits for its peer's next bytes (an open stream between events) or sits in the pool.
  size_t read_buffers_in_use() const;
  struct Impl;

 private:
  std::shared_ptr<Impl> impl_;
  PoolStats stats_;
};

}  // namespace providers
