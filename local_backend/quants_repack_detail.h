#pragma once
// Helpers shared by the repacked kernel files (quants_repack.cpp, quants_repack_k.cpp); not an
// interface for other code.
#include <immintrin.h>

#include <cstddef>
#include <cstdint>

namespace local_backend::repack_detail {

// Calls K<n_tok>::run(args...) for a token count 1..8 (kPackMaxTokens), so that all accumulators of
// the kernel live in registers; other counts run nothing (the caller never passes them).
template <template <int> class K, typename... Args>
void by_tokens(int n_tok, Args... args) {
  switch (n_tok) {
    case 1: return K<1>::run(args...);
    case 2: return K<2>::run(args...);
    case 3: return K<3>::run(args...);
    case 4: return K<4>::run(args...);
    case 5: return K<5>::run(args...);
    case 6: return K<6>::run(args...);
    case 7: return K<7>::run(args...);
    case 8: return K<8>::run(args...);
    default: return;
  }
}

// With one or two tokens a kernel reads each weight byte about once and waits on memory unless the
// stream is requested ahead. A kernel at block p prefetches the kBytes bytes kAhead * kBytes further
// on (past a group's end that is the next group, which the same thread usually runs next). Measured
// on decode at 2 threads, llama-quantize's Q4_K_M file: 43 -> 61 tokens/s; look-aheads of 2, 4 and
// 8 Q6_K super-blocks (6.6 to 26.5 KiB) gave the same.
template <size_t kBytes, size_t kAhead>
inline void prefetch_ahead(const uint8_t* p) {
  for (size_t b = 0; b < kBytes; b += 64) _mm_prefetch(reinterpret_cast<const char*>(p + kAhead * kBytes + b), _MM_HINT_T0);
}

}  // namespace local_backend::repack_detail
