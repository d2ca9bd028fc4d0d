// Repacking into interleaved layouts (see repack.h).
#include "kernels/repack.h"

#include <cstring>

#include "tensor/blocks.h"

namespace thinkmesh::kernels {

bool can_repack(Isa isa, TensorType w, int64_t rows, int64_t cols) {
  return find_repacked_gemm(isa, w) != nullptr &&
         (w == TensorType::Q4_0 || w == TensorType::Q8_0) && rows % 8 == 0 && cols % 32 == 0 &&
         rows > 0 && cols <= 65536;  // gemm_avx2_repacked.cpp keeps per-block sums on the stack
}

size_t repacked_bytes(TensorType w, int64_t rows, int64_t cols) {
  return row_bytes(w, cols) * static_cast<size_t>(rows);
}

void repack(TensorType w, const uint8_t* src, size_t row_stride, int64_t rows, int64_t cols,
            uint8_t* dst) {
  const int64_t nb = cols / 32;
  // Q4_0: 16 bytes of nibbles per row and block -> 4 vectors; Q8_0: 32 int8 -> 8 vectors.
  const bool q8 = w == TensorType::Q8_0;
  const int n_vec = q8 ? 8 : 4;
  const size_t block_bytes = q8 ? sizeof(block_q8_0) : sizeof(block_q4_0);
  const size_t group_block = 16 + 32 * static_cast<size_t>(n_vec);  // 144 or 272
  for (int64_t g = 0; g < rows / 8; ++g) {
    for (int64_t b = 0; b < nb; ++b) {
      uint8_t* out = dst + static_cast<size_t>(g * nb + b) * group_block;
      for (int r = 0; r < 8; ++r) {
        const uint8_t* blk = src + static_cast<size_t>(g * 8 + r) * row_stride +
                             static_cast<size_t>(b) * block_bytes;
        std::memcpy(out + 2 * r, blk, 2);  // the F16 scale d comes first in both layouts
        for (int k = 0; k < n_vec; ++k) std::memcpy(out + 16 + 32 * k + 4 * r, blk + 2 + 4 * k, 4);
      }
    }
  }
}

GemmKernel find_repacked_gemm(Isa isa, TensorType w) {
#if defined(THINKMESH_HAVE_AVX2_KERNELS)
  if (isa == Isa::avx2 || isa == Isa::avx512 || isa == Isa::amx) return find_repacked_gemm_avx2(w);
#else
  (void)isa;
  (void)w;
#endif
  return nullptr;
}

}  // namespace thinkmesh::kernels
