// Load-time repacking of weights into a row-interleaved layout (optional; the file's own
// layout always works without it).
//
// Q4_0x8: rows are taken 8 at a time; for every 32-value block column of such a group the
// 8 F16 scales come first (16 bytes), then 4 x 32 bytes of nibbles where 32-bit lane r of the
// k-th vector holds bytes 4k..4k+3 of row r's block. One vector load then feeds the same
// 4 (low nibbles) or 4+16 (high nibbles) values of 8 rows, multiplied against a broadcast of
// the matching 4 activation bytes: the 8 rows' sums end up in the 8 lanes, so a block costs
// one conversion and one multiply-add for 8 rows instead of 8, and no horizontal sums.
// Q8_0x8: the same with 8 vectors of int8 quads per block column (272 bytes).
// Same size as the original (8 x 18 bytes per block column); the cost is the copy: the
// repacked matrix lives in anonymous memory beside the (clean, reclaimable) file pages.
#pragma once

#include <cstddef>
#include <cstdint>

#include "kernels/gemm.h"

namespace thinkmesh::kernels {

// True when `isa` has a repacked kernel for weights of type `w` with this many rows.
bool can_repack(Isa isa, TensorType w, int64_t rows, int64_t cols);
// Bytes of the repacked matrix.
size_t repacked_bytes(TensorType w, int64_t rows, int64_t cols);
// Writes the repacked matrix (src: rows of row_stride bytes in the file's layout).
void repack(TensorType w, const uint8_t* src, size_t row_stride, int64_t rows, int64_t cols,
            uint8_t* dst);
// The kernel for repacked weights of type `w` at `isa` (p.w points to the repacked matrix,
// p.w_stride is ignored; r0 and r1 must be multiples of 8), or nullptr.
GemmKernel find_repacked_gemm(Isa isa, TensorType w);
GemmKernel find_repacked_gemm_avx2(TensorType w);

}  // namespace thinkmesh::kernels
