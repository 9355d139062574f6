#pragma once
// A small, bounded, synchronous Redis client over hiredis: a pool of connections, every call with a
// connect and a command deadline, reconnection with exponential backoff, Lua scripts by EVALSHA
// with a NOSCRIPT fallback. Callers on an event loop should call it from a small dedicated thread
// pool, or accept a blocking of at most pool_wait + connect_timeout + 2 x command_timeout.
//
// Failures come in two kinds:
// - transport (not connected, refused, timed out, in backoff, pool exhausted): a core::Error with
//   kind unavailable; the connection is dropped and re-made on a later call;
// - a Redis error reply (e.g. "WRONGTYPE ..."): a RedisReply of type error, the connection is fine.
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

#include "core/result.h"

struct redisContext;

namespace gateway {

struct RedisReply {
  enum class Type { nil, integer, string, status, error, array };
  Type type = Type::nil;
  int64_t integer = 0;
  std::string str;  // string, status or error text
  std::vector<RedisReply> elements;
  bool is_error() const { return type == Type::error; }
};

struct RedisOptions {
  std::string host = "127.0.0.1";
  int port = 6379;
  std::string password;  // AUTH when not empty (the lead reads it from env/file, never YAML)
  int db = 0;
  std::chrono::milliseconds connect_timeout{200};
  std::chrono::milliseconds command_timeout{200};
  std::chrono::milliseconds pool_wait{200};  // waiting for a free connection
  size_t pool_size = 4;
  std::chrono::milliseconds backoff_min{100}, backoff_max{5000};
};

// A Lua script with its SHA-1, computed once.
struct RedisScript {
  explicit RedisScript(std::string source);
  std::string source;
  std::string sha1;  // 40 lowercase hex digits
};

class RedisClient {
 public:
  explicit RedisClient(RedisOptions options);
  ~RedisClient();
  RedisClient(const RedisClient&) = delete;
  RedisClient& operator=(const RedisClient&) = delete;

  core::Result<RedisReply> command(const std::vector<std::string>& args);
  // EVALSHA sha numkeys keys... args...; on NOSCRIPT, EVAL with the source (which caches it).
  core::Result<RedisReply> eval(const RedisScript& script, const std::vector<std::string>& keys,
                                const std::vector<std::string>& args);

  // False from the first transport failure until the next successful command.
  bool healthy() const { return healthy_.load(std::memory_order_relaxed); }
  uint64_t transport_failures() const { return failures_.load(std::memory_order_relaxed); }
  std::string endpoint() const { return options_.host + ":" + std::to_string(options_.port); }

 private:
  struct Slot {
    redisContext* ctx = nullptr;
    bool busy = false;
  };
  core::Result<size_t> acquire();
  void give_back(size_t slot, bool broken);
  core::Result<RedisReply> run(size_t slot, const std::vector<std::string>& args);
  core::Error transport_error(const std::string& what);
  void mark_failure(const std::string& what);
  void mark_success();

  RedisOptions options_;
  std::mutex mu_;
  std::condition_variable free_cv_;
  std::vector<Slot> slots_;
  // Reconnect backoff, shared by all slots: no connection attempt before next_connect_.
  std::chrono::steady_clock::time_point next_connect_{};
  std::chrono::milliseconds backoff_{0};
  std::string last_error_;
  std::atomic<bool> healthy_{true};
  std::atomic<uint64_t> failures_{0};
};

}  // namespace gateway
