// Element-wise operations of a forward pass, at a kernel level (scalar code below avx2).
//   rms_norm: y = x / sqrt(mean(x^2) + eps) * w   (sum of squares in double, as ggml)
//   swiglu:   x = silu(x) * up = x / (1 + exp(-x)) * up
//   from_f16: F16 bits -> F32, exact (F32 -> F16 rows: prepare_activations(isa, F16, ...))
// The AVX2 versions differ from the scalar ones by a few ulps (exp polynomial, lane order).
#pragma once

#include <cstdint>

#include "kernels/isa.h"

namespace thinkmesh::kernels {

void rms_norm(Isa isa, const float* x, const float* weight, float eps, int64_t n, float* y);
void swiglu(Isa isa, float* x, const float* up, int64_t n);
void from_f16(Isa isa, const uint16_t* x, float* y, int64_t n);  // exact

// AVX2 versions (elementwise_avx2.cpp).
void rms_norm_avx2(const float* x, const float* weight, float eps, int64_t n, float* y);
void swiglu_avx2(float* x, const float* up, int64_t n);
void from_f16_avx2(const uint16_t* x, float* y, int64_t n);

}  // namespace thinkmesh::kernels
