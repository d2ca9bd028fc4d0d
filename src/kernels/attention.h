// Attention of one query head over the KV-cache rows it sees, with llama.cpp's (non-flash)
// arithmetic: the query rounded to F16 when the cache is F16, scores = K·q * scale in F32,
// softmax in F32, probabilities rounded to F16 before they meet an F16 V.
//
//   out[hd] = sum_j p_j V[cell_j],  p = softmax(scale * K[cell_j] · q)
//
// Rows: K and V of cell c start at k + c * row_stride (elements), hd values each, F16 bits or
// F32. The scalar version (double sums) is the reference the SIMD one is tested against.
#pragma once

#include <cstddef>
#include <cstdint>

#include "kernels/isa.h"

namespace thinkmesh::kernels {

struct AttentionRows {
  const void* k = nullptr;         // K rows of the head (F16 bits or F32)
  const void* v = nullptr;         // V rows of the head
  bool f16 = true;                 // element type of K and V
  bool round_f16 = false;          // F32 rows that hold an F16 cache's values widened (a
                                   // scratch copy): q and p are rounded as for f16 (default false)
  size_t row_stride = 0;           // elements between the rows of consecutive cells
  const int32_t* cells = nullptr;  // the visible cells, in order
  int32_t n_cells = 0;
  int32_t head_dim = 0;
};

// `scratch` holds n_cells floats. q: head_dim floats (rounded to F16 inside when f16).
void attend(Isa isa, const AttentionRows& rows, const float* q, float scale, float* scratch,
            float* out);
void attend_reference(const AttentionRows& rows, const float* q, float scale, float* scratch,
                      float* out);
// AVX2 version (attention_avx2.cpp); false when head_dim is not a multiple of 8.
bool attend_avx2(const AttentionRows& rows, const float* q, float scale, float* scratch,
                 float* out);

// Attention of several queries that read the same K/V rows (the heads of one KV head over a
// block of a prompt's tokens), over a widened F32 copy of an F16 cache (q and p rounded to F16
// as attend does for an F16 cache):
//   kt: K transposed, [head_dim][kt_stride] (element d of cell j at kt[d * kt_stride + j]);
//       kt_stride >= n_max rounded up to 8, the padding columns finite (e.g. zero)
//   v:  [n_max][head_dim]
// Query i (i < n_q) sees cells [0, n_cells[i]), n_cells[i] in [1, n_max].
struct AttentionBlock {
  const float* kt = nullptr;
  size_t kt_stride = 0;
  const float* v = nullptr;
  int32_t n_max = 0;
  int32_t head_dim = 0;
  int32_t n_q = 0;
  const float* const* q = nullptr;  // n_q pointers to head_dim floats
  float* const* out = nullptr;      // n_q pointers to head_dim floats
  const int32_t* n_cells = nullptr;
};
// Widens the K rows of `cells` (F16, head_dim values at k + cell * row_stride) into kt, the
// transposed layout AttentionBlock wants, with kt_stride >= n rounded up to 8; the padding
// columns are zero. Exact at every level.
void widen_k_transposed(Isa isa, const uint16_t* k, size_t row_stride, const int32_t* cells,
                        int32_t n, int32_t head_dim, float* kt, size_t kt_stride);
void widen_k_transposed_avx2(const uint16_t* k, size_t row_stride, const int32_t* cells, int32_t n,
                             int32_t head_dim, float* kt, size_t kt_stride);
// True when `isa` has a block kernel for this head size (attend_block then never returns false
// for well-formed blocks); otherwise attend each query.
bool attend_block_supported(Isa isa, int32_t head_dim);
// Floats of scratch attend_block needs.
size_t attend_block_scratch(const AttentionBlock& b);
// False when `isa` has no block kernel for this head size (then call attend per query).
bool attend_block(Isa isa, const AttentionBlock& b, float scale, float* scratch);
bool attend_block_avx2(const AttentionBlock& b, float scale, float* scratch);

}  // namespace thinkmesh::kernels
