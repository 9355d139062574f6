#pragma once
// The engine's own fork-join pool: never the gateway's I/O threads. One caller at a time
// (the engine's scheduler thread) runs a parallel loop; the caller takes part in the work.
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace local_backend {

class ThreadPool {
 public:
  // n_threads counts the caller: n_threads - 1 workers are started. 0 = hardware threads.
  explicit ThreadPool(int n_threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return n_threads_; }
  // Runs fn(task, thread_index) for task in [0, n_tasks); returns when all are done.
  void run(int64_t n_tasks, const std::function<void(int64_t task, int thread)>& fn);

 private:
  void worker(int index);
  void work(int thread);

  int n_threads_;
  std::vector<std::thread> workers_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::atomic<uint64_t> generation_{0};
  std::atomic<bool> stop_{false};
  const std::function<void(int64_t, int)>* fn_ = nullptr;
  std::atomic<int64_t> next_{0};
  int64_t n_tasks_ = 0;
  std::atomic<int> active_{0};
};

}  // namespace local_backend
