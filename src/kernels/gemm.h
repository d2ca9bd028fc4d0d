// Matrix products of weight rows with prepared activation rows, at one kernel level.
//
//   y[t][r] = dot(weight row r, activation row t)   for r in [r0, r1), t < n_tokens
//
// Weights stay in the file's own block layout (no repacking). Activations are prepared once per
// product by quantize_activations(activation_type(w), ...) (vec_dot.h), exactly as the
// reference does, so every level sees the same int8/F16 inputs and differs from the reference
// only in the order float partial sums are added. The SIMD kernels tile the work: a few weight
// rows are decoded once and each decoded block is used for several tokens (and the activations
// of a token for several rows), which is what makes prompt processing compute-bound rather than
// bound by weight traffic.
#pragma once

#include <cstddef>
#include <cstdint>

#include "kernels/isa.h"
#include "thinkmesh/tensor_type.h"

namespace thinkmesh::kernels {

struct GemmProblem {
  TensorType w_type = TensorType::F32;
  const uint8_t* w = nullptr;    // row r at w + r * w_stride
  size_t w_stride = 0;           // bytes between weight rows
  int64_t n = 0;                 // values per row (a multiple of the block size)
  const uint8_t* act = nullptr;  // token t's activations at act + t * act_stride
  size_t act_stride = 0;         // bytes between activation rows
  int64_t n_tokens = 0;
  float* y = nullptr;    // y[t * y_stride + r]
  int64_t y_stride = 0;  // floats between the outputs of consecutive tokens
};

// Computes rows [r0, r1) of the product for every token.
using GemmKernel = void (*)(const GemmProblem& p, int64_t r0, int64_t r1);

// The kernel for weights of type `w` at level `isa`, or nullptr when that level has none (the
// caller then uses a lower level; gemm_reference always exists for has_vec_dot types).
GemmKernel find_gemm(Isa isa, TensorType w);

// The best kernel available at `isa` or below (ending at the scalar reference).
GemmKernel select_gemm(Isa isa, TensorType w);

// Converts one activation row of n floats to `act_type` exactly as quantize_activations does
// (byte-identical), with SIMD at `isa` when that level has a conversion for the type.
void prepare_activations(Isa isa, TensorType act_type, const float* x, void* dst, int64_t n);

// The scalar reference: one vec_dot per (token, row).
void gemm_reference(const GemmProblem& p, int64_t r0, int64_t r1);

// Per-level tables (defined in gemm_<level>_*.cpp; nullptr entries when not built).
GemmKernel find_gemm_avx512(TensorType w);
GemmKernel find_gemm_avx2(TensorType w);
GemmKernel find_gemm_neon(TensorType w);
bool prepare_activations_avx2(TensorType act_type, const float* x, void* dst, int64_t n);

}  // namespace thinkmesh::kernels
