#pragma once
// AVX-512 kernels for F32, F16 and BF16 weights times an F32 activation (internal to quants.cpp's
// dispatch, like quants_legacy.h). Each result is bit-identical to the AVX2 single-row kernel
// (dot_f32_avx2 / dot_f16_avx2 / dot_bf16_avx2) for every row length: a 512-bit accumulator
// holds exactly the AVX2 kernel's two 256-bit ones, lane for lane, and the fold and the scalar
// tail repeat its steps. So logits do not depend on which path ran or how tokens were grouped.
#include <cstdint>

#include "local_backend/quants.h"

namespace local_backend {

// nullptr for other types or without AVX-512 F/BW/VL/VNNI (the gate of the other AVX-512
// kernels; these need only F).
VecDotFn float_dot_avx512(TensorType t);
// Eight activation rows per weight-row load (prefill).
VecDot8Fn float_dot8_avx512(TensorType t);

}  // namespace local_backend
