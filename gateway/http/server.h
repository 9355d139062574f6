#pragma once
// Listeners and sessions: one io_context per worker thread, SO_REUSEPORT acceptors (among the
// process's own workers: a port bound by another process is a start-up error), optional TLS,
// deadlines on every read and write, bounded connections, graceful drain on SIGTERM/SIGINT.
#include <memory>

#include "core/result.h"
#include "gateway/app/app.h"

namespace gateway {

class Server {
 public:
  explicit Server(App& app);
  ~Server();
  // Binds, prints "gateway: listening on URL", serves until a signal drains it. Returns the exit code.
  int run();
  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace gateway
