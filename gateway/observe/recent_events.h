#pragma once
// What the status page shows besides live figures: the last refusals the request pipeline sent
// (a bounded ring, oldest dropped first) and the outcome of the last policy load or reload.
#include <array>
#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

#include "core/error.h"

namespace gateway {

struct Refusal {
  int64_t at_ms = 0;  // UTC wall clock
  std::string request_id, tenant, model;
  int status = 0;
  std::string kind, code, message;
};

class RefusalLog {
 public:
  static constexpr size_t kCapacity = 64;
  void add(Refusal r);
  // Newest first.
  std::vector<Refusal> recent() const;
  uint64_t total() const;

 private:
  mutable std::mutex mu_;
  std::array<Refusal, kCapacity> ring_;
  size_t next_ = 0;
  uint64_t total_ = 0;
};

struct PolicyLoad {
  int64_t at_ms = 0;
  std::string trigger;  // "start", "SIGHUP", "POST /admin/reload", "file change"
  bool ok = true;
  std::string message;  // the compiler's errors when not ok
};

class PolicyLoadLog {
 public:
  void record(PolicyLoad load);
  PolicyLoad last() const;
  // Successful loads so far, the start-up one included: the serving policy's generation.
  uint64_t generation() const;

 private:
  mutable std::mutex mu_;
  PolicyLoad last_;
  uint64_t generation_ = 0;
};

int64_t wall_ms_now();

}  // namespace gateway
