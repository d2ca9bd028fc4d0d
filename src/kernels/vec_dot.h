// Scalar reference dot products of one weight row with one activation row, mirroring ggml's CPU
// backend (llama.cpp c392e50, ggml-cpu.c / ggml-cpu-quants.c). They are the ground truth that
// the SIMD kernels are tested against, and what the decoder calls when no faster kernel exists.
//
// As in ggml, a matrix-vector product first converts the activations (F32) to the weight type's
// `activation_type` once, then takes one vec_dot per weight row:
//
//   weights                 activations   dot product arithmetic
//   F32                     F32           float products summed in double
//   F16 / BF16              F16 / BF16    activations rounded to F16/BF16; products in float,
//                                         summed in double
//   Q4_0, Q5_0, Q8_0        Q8_0          integer sum per 32-block, times both block scales
//   Q4_1, Q5_1              Q8_1          as Q8_0, plus the weight min times Q8_1's s = d*sum(q)
//   Q2_K..Q6_K              Q8_K          integer sums per 16/32-value group times the group
//                                         scales, per 256-block float scale (and min via bsums)
//
// Rows are `n` values, a multiple of the weight type's block size (checked:
// Error(invalid_argument)). Weight types without a kernel throw Error(unsupported) naming the type.
#pragma once

#include <cstdint>

#include "thinkmesh/tensor_type.h"

namespace thinkmesh::kernels {

// The type activations are converted to before a dot product with weights of type `w` (ggml's
// type_traits_cpu[w].vec_dot_type).
TensorType activation_type(TensorType w);

// True when vec_dot has a kernel for weights of type `w`.
bool has_vec_dot(TensorType w);

// Converts one activation row of n floats to `act_type` (one of the activation types above);
// `dst` holds row_bytes(act_type, n) bytes. Q8_0 and Q8_1 are rounded as ggml's x86 AVX/AVX2
// quantize_row_q8_0/q8_1 do (scale 127/amax, round half to even), which is what the llama.cpp
// goldens used; Q8_K is quantize_row_reference(Q8_K).
void quantize_activations(TensorType act_type, const float* x, void* dst, int64_t n);

// Dot product of one weight row (type w, n values) with one activation row prepared by
// quantize_activations(activation_type(w), ...).
float vec_dot(TensorType w, int64_t n, const void* w_row, const void* act_row);

// y[r] = dot(weight row r, x) for r < rows; weights are `rows` consecutive rows of n values of
// type w (row_bytes(w, n) bytes each). Quantizes x once.
void matvec_reference(TensorType w, const void* weights, int64_t rows, int64_t n, const float* x,
                      float* y);

}  // namespace thinkmesh::kernels
