#include "gateway/observe/recent_events.h"

#include <chrono>

namespace gateway {

int64_t wall_ms_now() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

void RefusalLog::add(Refusal r) {
  std::lock_guard lock(mu_);
  ring_[next_] = std::move(r);
  next_ = (next_ + 1) % kCapacity;
  ++total_;
}

std::vector<Refusal> RefusalLog::recent() const {
  std::lock_guard lock(mu_);
  const size_t n = total_ < kCapacity ? size_t(total_) : kCapacity;
  std::vector<Refusal> out;
  out.reserve(n);
  for (size_t i = 1; i <= n; ++i) out.push_back(ring_[(next_ + kCapacity - i) % kCapacity]);
  return out;
}

uint64_t RefusalLog::total() const {
  std::lock_guard lock(mu_);
  return total_;
}

void PolicyLoadLog::record(PolicyLoad load) {
  std::lock_guard lock(mu_);
  if (load.ok) ++generation_;
  last_ = std::move(load);
}

PolicyLoad PolicyLoadLog::last() const {
  std::lock_guard lock(mu_);
  return last_;
}

uint64_t PolicyLoadLog::generation() const {
  std::lock_guard lock(mu_);
  return generation_;
}

}  // namespace gateway
