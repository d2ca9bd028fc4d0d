// Internals shared by the reference quantizers (quantize_legacy.cpp, quantize_kquants.cpp) and
// their dispatcher (quantize.cpp). Each quantize_* takes `nb` blocks worth of input
// (nb * block size floats) and writes nb blocks.
#pragma once

#include <bit>
#include <cstdint>

#include "tensor/blocks.h"

namespace thinkmesh::detail {

// ggml's nearest_int: round half to even through the 1.5 * 2^23 magic constant. Exact for
// |v| <= 2^22; beyond that it returns ggml's (meaningless but deterministic) value.
inline int nearest_int(float v) {
  const float biased = v + 12582912.f;
  const int32_t bits = std::bit_cast<int32_t>(biased);
  return (bits & 0x007fffff) - 0x00400000;
}

// C's float → integer conversion as x86 performs it (cvttss2si): truncation toward zero, and
// INT32_MIN for NaN and out-of-range values, where C leaves the result undefined. ggml's legacy
// quantizers convert with (int8_t)(float) casts; in range the results are identical.
inline int32_t truncate_to_int(float v) {
  if (v > -2147483904.f && v < 2147483648.f) return static_cast<int32_t>(v);
  return INT32_MIN;
}

void quantize_q4_0(const float* x, block_q4_0* y, int64_t nb);
void quantize_q4_1(const float* x, block_q4_1* y, int64_t nb);
void quantize_q5_0(const float* x, block_q5_0* y, int64_t nb);
void quantize_q5_1(const float* x, block_q5_1* y, int64_t nb);
void quantize_q8_0(const float* x, block_q8_0* y, int64_t nb);

void quantize_q2_K(const float* x, block_q2_K* y, int64_t nb);
void quantize_q3_K(const float* x, block_q3_K* y, int64_t nb);
void quantize_q4_K(const float* x, block_q4_K* y, int64_t nb);
void quantize_q5_K(const float* x, block_q5_K* y, int64_t nb);
void quantize_q6_K(const float* x, block_q6_K* y, int64_t nb);
void quantize_q8_K(const float* x, block_q8_K* y, int64_t nb);

}  // namespace thinkmesh::detail
