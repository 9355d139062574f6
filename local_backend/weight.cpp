#include "local_backend/weight.h"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <thread>

namespace local_backend {
namespace {

// Packs groups [g0, g1) of every matrix of w into dst.
void pack_range(const Weight& w, const PackKernels& k, uint8_t* dst, int64_t g0, int64_t g1) {
  for (int64_t m = 0; m < w.n_mat; ++m)
    for (int64_t g = g0; g < g1; ++g) {
      const uint8_t* rows[kPackRows];
      for (int i = 0; i < kPackRows; ++i) {
        const int64_t r = g * kPackRows + i;
        rows[i] = r < w.rows ? w.row(m, r) : nullptr;
      }
      k.pack(rows, w.cols, dst + (static_cast<size_t>(m) * static_cast<size_t>(w.groups) + static_cast<size_t>(g)) * w.group_bytes);
    }
}

// Gives the pages wholly inside [p, p + n) of the model file's (anonymous) copy back to the OS.
void release_pages(const uint8_t* p, size_t n) {
  const uintptr_t page = static_cast<uintptr_t>(sysconf(_SC_PAGESIZE));
  const uintptr_t b = (reinterpret_cast<uintptr_t>(p) + page - 1) & ~(page - 1);
  const uintptr_t e = (reinterpret_cast<uintptr_t>(p) + n) & ~(page - 1);
  if (e > b) madvise(reinterpret_cast<void*>(b), e - b, MADV_DONTNEED);
}

}  // namespace

PackedWeights::~PackedWeights() {
  for (const Region& r : regions_) munmap(r.p, r.n);
}

bool PackedWeights::pack(Weight& w, bool keep_rows) {
  if (!w) return true;
  const PackKernels k = pack_kernels(w.type);
  if (!k) return true;
  const int64_t groups = (w.rows + kPackRows - 1) / kPackRows;
  const size_t group_bytes = k.group_bytes(w.cols);
  const size_t n = static_cast<size_t>(w.n_mat) * static_cast<size_t>(groups) * group_bytes;
  void* p = mmap(nullptr, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return false;
  madvise(p, n, MADV_HUGEPAGE);
  regions_.push_back({p, n});
  bytes_ += n;
  Weight packed = w;
  packed.groups = groups;
  packed.group_bytes = group_bytes;
  // Large stacks (expert matrices) are packed on every core: it is a pass over the whole file.
  const int64_t threads = n < (size_t{8} << 20) ? 1 : std::max<int64_t>(1, std::thread::hardware_concurrency());
  std::vector<std::thread> pool;
  const int64_t per = (groups + threads - 1) / threads;
  for (int64_t t = 1; t < threads; ++t)
    pool.emplace_back(pack_range, std::cref(packed), std::cref(k), static_cast<uint8_t*>(p), std::min(groups, t * per),
                      std::min(groups, (t + 1) * per));
  pack_range(packed, k, static_cast<uint8_t*>(p), 0, std::min(groups, per));
  for (auto& t : pool) t.join();
  if (!keep_rows) release_pages(w.data, static_cast<size_t>(w.n_mat) * static_cast<size_t>(w.rows) * w.row_bytes);
  w.packed = static_cast<const uint8_t*>(p);
  w.groups = groups;
  w.group_bytes = group_bytes;
  w.gemm = k.gemm;
  w.act = k.act;
  return true;
}

}  // namespace local_backend
