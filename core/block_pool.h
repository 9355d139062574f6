#pragma once
// Equal-sized buffer blocks kept for reuse by one thread. A buffer that is given back whenever its
// connection waits (the upstream read buffer of an open stream) and taken again when bytes come
// would otherwise leave a hole in the heap each time, which small allocations of other requests
// fill: the heap then grows by a block per stream although few blocks are ever in use at once
// (resident memory per open stream: tests/bench/stream_bench.sh). Kept blocks serve only blocks.
// Not thread-safe: one pool per worker thread.
#include <cstddef>
#include <new>

namespace core {

class BlockPool {
 public:
  // Blocks of `block_bytes`; at most `max_kept` are kept while free (the rest go back to the heap).
  BlockPool(size_t block_bytes, size_t max_kept) : block_bytes_(block_bytes), max_kept_(max_kept) {}
  ~BlockPool() {
    while (free_) {
      Free* next = free_->next;
      ::operator delete(free_);
      free_ = next;
    }
  }
  BlockPool(const BlockPool&) = delete;
  BlockPool& operator=(const BlockPool&) = delete;

  // A block when n is the block size (a kept one if any), else plain heap memory.
  void* take(size_t n) {
    if (n != block_bytes_) return ::operator new(n);
    ++in_use_;
    if (!free_) return ::operator new(n);
    Free* f = free_;
    free_ = f->next;
    --kept_;
    return f;
  }
  void give(void* p, size_t n) {
    if (n != block_bytes_) return ::operator delete(p);
    --in_use_;
    if (kept_ == max_kept_) return ::operator delete(p);
    free_ = new (p) Free{free_};
    ++kept_;
  }

  size_t block_bytes() const { return block_bytes_; }
  size_t kept() const { return kept_; }
  size_t in_use() const { return in_use_; }  // blocks taken and not given back

 private:
  struct Free {
    Free* next;
  };
  static_assert(sizeof(Free) <= 16);

  size_t block_bytes_;
  size_t max_kept_;
  Free* free_ = nullptr;
  size_t kept_ = 0;
  size_t in_use_ = 0;
};

// A standard allocator over a BlockPool, for containers whose storage is one block (a
// beast::basic_flat_buffer reserved to the block size). The pool must outlive the container.
template <class T>
class BlockAllocator {
 public:
  using value_type = T;
  explicit BlockAllocator(BlockPool* pool) noexcept : pool_(pool) {}
  template <class U>
  BlockAllocator(const BlockAllocator<U>& other) noexcept : pool_(other.pool()) {}

  T* allocate(size_t n) { return static_cast<T*>(pool_->take(n * sizeof(T))); }
  void deallocate(T* p, size_t n) noexcept { pool_->give(p, n * sizeof(T)); }
  BlockPool* pool() const noexcept { return pool_; }

  template <class U>
  bool operator==(const BlockAllocator<U>& o) const noexcept { return pool_ == o.pool(); }

 private:
  BlockPool* pool_;
};

}  // namespace core
