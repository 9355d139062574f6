#pragma once
// A real redis-server on 127.0.0.1, started by the test on a free port, no persistence. stop() and
// start() again on the same port simulate an outage and the return of Redis.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <thread>

#include "gateway/state/redis_client.h"

namespace gateway::testing {

class RedisServer {
 public:
#ifdef GW_REDIS_SERVER
  static constexpr const char* kBinary = GW_REDIS_SERVER;
#else
  static constexpr const char* kBinary = nullptr;
#endif
  static bool available() { return kBinary != nullptr && ::access(kBinary, X_OK) == 0; }

  RedisServer() : port_(free_port()) {}
  ~RedisServer() { stop(); }

  // Starts and waits (bounded, 5 s) until it answers PING.
  bool start() {
    pid_ = ::fork();
    if (pid_ == 0) {
      std::string port = std::to_string(port_);
      ::execl(kBinary, kBinary, "--port", port.c_str(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
              "--daemonize", "no", "--loglevel", "warning", "--logfile", "/dev/null", static_cast<char*>(nullptr));
      ::_exit(127);
    }
    if (pid_ < 0) return false;
    RedisOptions o;
    o.port = port_;
    o.pool_size = 1;
    o.backoff_min = o.backoff_max = std::chrono::milliseconds(10);
    RedisClient probe(o);
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (std::chrono::steady_clock::now() < deadline) {
      auto r = probe.command({"PING"});
      if (r.ok() && r->str == "PONG") return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return false;
  }

  void stop() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }

  int port() const { return port_; }

  RedisOptions options() const {
    RedisOptions o;
    o.port = port_;
    o.pool_size = 4;
    o.backoff_min = std::chrono::milliseconds(20);
    o.backoff_max = std::chrono::milliseconds(200);
    return o;
  }

 private:
  static int free_port() {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = 0;
    ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
    socklen_t len = sizeof a;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
    ::close(fd);
    return ntohs(a.sin_port);
  }

  int port_;
  pid_t pid_ = -1;
};

}  // namespace gateway::testing
