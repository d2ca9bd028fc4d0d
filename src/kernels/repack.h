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
// Q4_1x8 (160 bytes per block column, the file's 8 x 20): 8 F16 scales d, 8 F16 mins m, then
// the 4 nibble vectors of Q4_0x8.
// Q5_1x8 (192 bytes, the file's 8 x 24): d[8], m[8], one vector of 5th bits, the 4 nibble
// vectors. Byte i of lane r of the 5th-bit vector: bit k = the 5th bit of row r's value
// 4k + i (low nibble of nibble vector k), bit 4 + k = that of value 16 + 4k + i (its high
// nibble), so one shift and mask per nibble vector puts the bits at 0x10.
// Same size as the original (8 x 18 bytes per block column); the cost is the copy: the
// repacked matrix lives in anonymous memory beside the (clean, reclaimable) file pages.
//
// Q4_Kx8 (k-quants, 256-value super-block columns of 8 rows; q[r][v] = row r's 4-bit value v
// of the super-block, sc/m its 6-bit sub-block scales and mins, already unpacked):
//   [0, 16)      d[r]    F16                     [16, 32)  dmin[r] F16
//   [32, 96)     sc[s][r]  uint8 (s = 32-value sub-block 0..7)
//   [96, 160)    m[p][r][2] uint8 = (m[r][2p], m[r][2p+1]), p = 0..3 (int16 pairs after
//                vpmovzxbw, for vpmaddwd against pairs of 32-value activation sums)
//   [160, 1184)  per sub-block s, 4 vectors k = 0..3; byte i of lane r: low nibble
//                q[r][32s + 4k + i], high nibble q[r][32s + 16 + 4k + i] (Q4_0x8's order)
//   1184 bytes per column, the file's 8 x 144 = 1152 plus 32 (the scales take a byte each).
// Q6_Kx8 (q = the 6-bit value 0..63, sc the int8 scale of 16 values):
//   [0, 16)      d[r] F16
//   [16, 144)    sc[p][r][2] int8 = (sc[r][2p], sc[r][2p+1]), p = 0..7
//   [144, 1680)  per 16-value sub-block s, 3 vectors v0..v2. Byte i of lane r of v_j: bits
//                0-5 = q[r][16s + 4j + i], bits 6-7 = bits 4-2j..5-2j of q[r][16s + 12 + i]
//                (the 4th quad spread over the top bits of the other three)
//   1680 bytes per column, the file's 8 x 210.
#pragma once

#include <cstddef>
#include <cstdint>

#include "kernels/gemm.h"

namespace thinkmesh::kernels {

// Bytes per 8-row super-block column of the k-quant layouts above.
inline constexpr size_t kQ4_Kx8Bytes = 1184;
inline constexpr size_t kQ6_Kx8Bytes = 1680;

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
GemmKernel find_repacked_gemm_avx2(TensorType w);      // Q4_0x8, Q8_0x8
GemmKernel find_repacked_gemm_avx2_kq(TensorType w);   // Q4_Kx8, Q6_Kx8
GemmKernel find_repacked_gemm_avx2_q41(TensorType w);  // Q4_1x8, Q5_1x8

}  // namespace thinkmesh::kernels
