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

}  // namespace thinkmesh::kernels
