// Importance-weighted quantizers of one row (quantize_weighted.cpp). Each takes a row of `n`
// F32 values (a multiple of the type's block size) and `importance`, n per-column weights
// (mean x² of the column over calibration text), and writes n / block_size blocks.
#pragma once

#include <cstdint>

#include "tensor/blocks.h"

namespace thinkmesh::quant {

void quantize_q4_0_weighted(const float* x, block_q4_0* y, int64_t n, const float* importance);
void quantize_q4_1_weighted(const float* x, block_q4_1* y, int64_t n, const float* importance);
void quantize_q5_0_weighted(const float* x, block_q5_0* y, int64_t n, const float* importance);
void quantize_q5_1_weighted(const float* x, block_q5_1* y, int64_t n, const float* importance);
void quantize_q4_K_weighted(const float* x, block_q4_K* y, int64_t n, const float* importance);
void quantize_q5_K_weighted(const float* x, block_q5_K* y, int64_t n, const float* importance);
void quantize_q6_K_weighted(const float* x, block_q6_K* y, int64_t n, const float* importance);

}  // namespace thinkmesh::quant
