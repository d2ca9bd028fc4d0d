// Block layouts of the quantized tensor types, byte-compatible with ggml (ggml-common.h).
// Values along a row are grouped in blocks; `d` is the F16 (or F32) scale, stored as raw bits.
#pragma once

#include <cstdint>

namespace thinkmesh {

inline constexpr int QK4_0 = 32;
inline constexpr int QK4_1 = 32;
inline constexpr int QK5_0 = 32;
inline constexpr int QK5_1 = 32;
inline constexpr int QK8_0 = 32;
inline constexpr int QK_K = 256;         // super-block size of the k-quants
inline constexpr int K_SCALE_SIZE = 12;  // packed 6-bit scales/mins of Q4_K and Q5_K

using f16_bits = uint16_t;

// 32 values: x = d * (q - 8), q in 0..15; qs[j] holds value j (low nibble) and j+16 (high).
struct block_q4_0 {
  f16_bits d;
  uint8_t qs[QK4_0 / 2];
};
// 32 values: x = d * q + m.
struct block_q4_1 {
  f16_bits d;
  f16_bits m;
  uint8_t qs[QK4_1 / 2];
};
// 32 values: x = d * (q - 16), q 5 bits: low 4 in qs, 5th bit in qh.
struct block_q5_0 {
  f16_bits d;
  uint8_t qh[4];
  uint8_t qs[QK5_0 / 2];
};
struct block_q5_1 {
  f16_bits d;
  f16_bits m;
  uint8_t qh[4];
  uint8_t qs[QK5_1 / 2];
};
// 32 values: x = d * q, q int8.
struct block_q8_0 {
  f16_bits d;
  int8_t qs[QK8_0];
};
// 256 values in 16 groups of 16: x = d * scale * q - dmin * min, 2-bit q.
struct block_q2_K {
  uint8_t scales[QK_K / 16];  // low 4 bits scale, high 4 bits min
  uint8_t qs[QK_K / 4];
  f16_bits d;
  f16_bits dmin;
};
// 256 values in 16 groups of 16: 3-bit q (2 low bits in qs, high bit in hmask), 6-bit scales.
struct block_q3_K {
  uint8_t hmask[QK_K / 8];
  uint8_t qs[QK_K / 4];
  uint8_t scales[12];
  f16_bits d;
};
// 256 values in 8 groups of 32: x = d * sc * q - dmin * m, 4-bit q, 6-bit sc/m packed in 12 bytes.
struct block_q4_K {
  f16_bits d;
  f16_bits dmin;
  uint8_t scales[K_SCALE_SIZE];
  uint8_t qs[QK_K / 2];
};
struct block_q5_K {
  f16_bits d;
  f16_bits dmin;
  uint8_t scales[K_SCALE_SIZE];
  uint8_t qh[QK_K / 8];
  uint8_t qs[QK_K / 2];
};
// 256 values in 16 groups of 16: x = d * scale * (q - 32), 6-bit q (4 low in ql, 2 high in qh).
struct block_q6_K {
  uint8_t ql[QK_K / 2];
  uint8_t qh[QK_K / 4];
  int8_t scales[QK_K / 16];
  f16_bits d;
};
// Activation blocks for Q4_1/Q5_1 dot products: x = d * q, with s = d * sum(q) precomputed.
struct block_q8_1 {
  f16_bits d;
  f16_bits s;
  int8_t qs[QK8_0];
};
// Activation blocks for k-quant dot products: F32 scale, int8 values, sums of groups of 16.
struct block_q8_K {
  float d;
  int8_t qs[QK_K];
  int16_t bsums[QK_K / 16];
};

static_assert(sizeof(block_q4_0) == 18);
static_assert(sizeof(block_q4_1) == 20);
static_assert(sizeof(block_q5_0) == 22);
static_assert(sizeof(block_q5_1) == 24);
static_assert(sizeof(block_q8_0) == 34);
static_assert(sizeof(block_q8_1) == 36);
static_assert(sizeof(block_q2_K) == 84);
static_assert(sizeof(block_q3_K) == 110);
static_assert(sizeof(block_q4_K) == 144);
static_assert(sizeof(block_q5_K) == 176);
static_assert(sizeof(block_q6_K) == 210);
static_assert(sizeof(block_q8_K) == 292);

}  // namespace thinkmesh
