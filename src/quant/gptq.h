// GPTQ-style error-compensating rounding (gptq.cpp; Frantar et al. 2022, "GPTQ: Accurate
// Post-Training Quantization for Generative Pre-trained Transformers"), written from the paper.
// A weight row w (n inputs) is quantized column by column; each column's rounding error is
// spread over the columns not yet quantized so that the product error (w − q)·H·(w − q)ᵀ, with
// H the calibration inputs' second moment, stays small.
#pragma once

#include <cstdint>
#include <vector>

#include "thinkmesh/tensor_type.h"

namespace thinkmesh::quant {

// Types gptq_quantize_row supports: Q4_0, Q4_1, Q5_0, Q5_1, Q8_0.
bool gptq_supports(TensorType type);

// What the rows of one matrix share: the upper Cholesky factor U of the damped H⁻¹
// (H⁻¹ = UᵀU, n × n row-major, zeros below the diagonal) and the per-column importance used
// to choose each block's scale.
struct GptqFactor {
  int64_t n = 0;
  std::vector<double> u;          // n × n
  std::vector<double> h;          // n × n: the damped H (the objective of the scale refit)
  std::vector<float> importance;  // n: 1 / U_ii² (GPTQ's cost of an error in column i)
  double damp = 0;                // what was added to the diagonal
};

// Builds the factor from H (n × n, symmetric; the HessianSet's mean). Damping: `damp_fraction`
// × mean(diag H) is added to the diagonal, zero diagonals (inputs never driven) become the
// mean; when the Cholesky still fails the damping is raised tenfold, up to 4 times, then
// Error(invalid_file) is thrown.
GptqFactor gptq_factor(const float* h, int64_t n, double damp_fraction = 0.01);

// Quantizes one row of n values (a multiple of the type's block size) to `type` into dst.
// `work` is scratch of at least n doubles. Deterministic.
void gptq_quantize_row(TensorType type, const float* w, const GptqFactor& factor, void* dst,
                       std::vector<double>& work);

// (w − q)·H·(w − q)ᵀ of one row: the second-order error GPTQ minimises (H n × n).
double hessian_error(const float* w, const float* q, const float* h, int64_t n);

}  // namespace thinkmesh::quant
