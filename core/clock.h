#pragma once
// Injectable clocks: wall time for price schedules and logs, steady time for deadlines and stats.
#include <chrono>

namespace core {

using SteadyTime = std::chrono::steady_clock::time_point;
using WallTime = std::chrono::system_clock::time_point;

class Clock {
 public:
  virtual ~Clock() = default;
  virtual WallTime wall_now() const = 0;
  virtual SteadyTime steady_now() const = 0;
};

class SystemClock final : public Clock {
 public:
  WallTime wall_now() const override { return std::chrono::system_clock::now(); }
  SteadyTime steady_now() const override { return std::chrono::steady_clock::now(); }
  static const SystemClock& instance() {
    static const SystemClock clock;
    return clock;
  }
};

// For tests: time moves only when told to.
class ManualClock final : public Clock {
 public:
  explicit ManualClock(WallTime wall = WallTime{}) : wall_(wall) {}
  WallTime wall_now() const override { return wall_; }
  SteadyTime steady_now() const override { return steady_; }
  void advance(std::chrono::nanoseconds d) { wall_ += std::chrono::duration_cast<WallTime::duration>(d); steady_ += d; }
  void set_wall(WallTime t) { wall_ = t; }

 private:
  WallTime wall_;
  SteadyTime steady_{};
};

}  // namespace core
