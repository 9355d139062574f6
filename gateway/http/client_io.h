#pragma once
// What request handlers need from a client connection, without Beast in sight: a whole response,
// or a stream of SSE events (ChatSink::send for data-only events, EventSink::send_event for named
// ones), headers to add, and notice when the client leaves.
#include "core/task.h"
#include <string>
#include <string_view>

#include "providers/provider.h"

namespace gateway {

class ClientIo : public providers::ChatSink, public providers::EventSink {
 public:
  // A complete response. Returns false if the client is gone.
  virtual core::Task<bool> respond(int status, std::string_view content_type, std::string body) = 0;
  // Adds or replaces a response header (until the response is committed).
  virtual void set_header(std::string_view name, std::string_view value) = 0;
  // True once the status line and headers were sent (a stream has begun).
  virtual bool committed() const = 0;
  // Sends an SSE comment line (": text") on a committed stream: metadata that SDKs ignore.
  virtual core::Task<bool> send_comment(std::string_view text) = 0;
  // Ends a committed stream cleanly (last chunk). Returns false if the client is gone.
  virtual core::Task<bool> end_stream() = 0;
  // While a request is in progress: cancel `hook` once the client disconnects (noticed within the
  // server's deadline sweep, 100 ms).
  virtual void watch_disconnect(providers::CancelHook* hook) = 0;
  virtual void stop_watch() = 0;
  // The handler no longer holds the request's body: its share of server.max_buffered_body_bytes is
  // given back before the request ends (a stream that committed to one deployment).
  virtual void release_request_body() = 0;
};

}  // namespace gateway
