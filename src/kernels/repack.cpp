// Repacking into interleaved layouts (see repack.h).
#include "kernels/repack.h"

#include <cstring>

#include "kernels/kquant_scales.h"
#include "tensor/blocks.h"

namespace thinkmesh::kernels {

namespace {

// Q4_0x8 / Q8_0x8: the file's bytes moved, not decoded.
void repack_q32(TensorType w, const uint8_t* src, size_t row_stride, int64_t rows, int64_t cols,
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

// Q4_1x8 / Q5_1x8 (layout in repack.h): scales, mins and nibbles moved; Q5_1's 5th bits
// regrouped per nibble vector.
void repack_q41(TensorType w, const uint8_t* src, size_t row_stride, int64_t rows, int64_t cols,
                uint8_t* dst) {
  const int64_t nb = cols / 32;
  const bool q5 = w == TensorType::Q5_1;
  const size_t block_bytes = q5 ? sizeof(block_q5_1) : sizeof(block_q4_1);
  const size_t column = q5 ? 192 : 160;
  const size_t nibbles = q5 ? 64 : 32;  // where the nibble vectors start
  const size_t qs = q5 ? 8 : 4;         // where the nibbles start in the file's block
  for (int64_t g = 0; g < rows / 8; ++g) {
    for (int64_t b = 0; b < nb; ++b) {
      uint8_t* out = dst + static_cast<size_t>(g * nb + b) * column;
      for (int r = 0; r < 8; ++r) {
        const uint8_t* blk = src + static_cast<size_t>(g * 8 + r) * row_stride +
                             static_cast<size_t>(b) * block_bytes;
        std::memcpy(out + 2 * r, blk, 2);           // d
        std::memcpy(out + 16 + 2 * r, blk + 2, 2);  // m
        for (int k = 0; k < 4; ++k)
          std::memcpy(out + nibbles + 32 * k + 4 * r, blk + qs + 4 * k, 4);
        if (!q5) continue;
        uint32_t h;
        std::memcpy(&h, blk + 4, 4);
        for (int i = 0; i < 4; ++i) {
          uint32_t byte = 0;
          for (int k = 0; k < 4; ++k) {
            byte |= ((h >> (4 * k + i)) & 1u) << k;
            byte |= ((h >> (16 + 4 * k + i)) & 1u) << (4 + k);
          }
          out[32 + 4 * r + i] = static_cast<uint8_t>(byte);
        }
      }
    }
  }
}

// One super-block column of 8 Q4_K rows -> Q4_Kx8 (layout in repack.h).
void repack_q4_k_column(const block_q4_K* const x[8], uint8_t* out) {
  for (int r = 0; r < 8; ++r) {
    std::memcpy(out + 2 * r, &x[r]->d, 2);
    std::memcpy(out + 16 + 2 * r, &x[r]->dmin, 2);
    uint8_t sm[16];
    unpack_scales_mins(x[r]->scales, sm);
    for (int s = 0; s < 8; ++s) out[32 + 8 * s + r] = sm[s];
    for (int p = 0; p < 4; ++p) {
      out[96 + 16 * p + 2 * r] = sm[8 + 2 * p];
      out[96 + 16 * p + 2 * r + 1] = sm[8 + 2 * p + 1];
    }
    uint8_t q[QK_K];  // the file: qs[32c + l] holds values 64c + l (low) and 64c + 32 + l
    for (int c = 0; c < 4; ++c) {
      for (int l = 0; l < 32; ++l) {
        q[64 * c + l] = x[r]->qs[32 * c + l] & 0x0F;
        q[64 * c + 32 + l] = x[r]->qs[32 * c + l] >> 4;
      }
    }
    for (int s = 0; s < 8; ++s) {
      for (int k = 0; k < 4; ++k) {
        for (int i = 0; i < 4; ++i) {
          out[160 + 128 * s + 32 * k + 4 * r + i] =
              static_cast<uint8_t>(q[32 * s + 4 * k + i] | (q[32 * s + 16 + 4 * k + i] << 4));
        }
      }
    }
  }
}

// One super-block column of 8 Q6_K rows -> Q6_Kx8 (layout in repack.h).
void repack_q6_k_column(const block_q6_K* const x[8], uint8_t* out) {
  for (int r = 0; r < 8; ++r) {
    std::memcpy(out + 2 * r, &x[r]->d, 2);
    for (int p = 0; p < 8; ++p) {
      std::memcpy(out + 16 + 16 * p + 2 * r, &x[r]->scales[2 * p], 2);
    }
    uint8_t q[QK_K];  // 0..63, the file's order (ggml's dequantize_row_q6_K)
    for (int h = 0; h < 2; ++h) {
      const uint8_t* ql = x[r]->ql + 64 * h;
      const uint8_t* qh = x[r]->qh + 32 * h;
      uint8_t* qo = q + 128 * h;
      for (int l = 0; l < 32; ++l) {
        qo[l] = static_cast<uint8_t>((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4));
        qo[l + 32] = static_cast<uint8_t>((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4));
        qo[l + 64] = static_cast<uint8_t>((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4));
        qo[l + 96] = static_cast<uint8_t>((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4));
      }
    }
    for (int s = 0; s < 16; ++s) {
      uint8_t* sb = out + 144 + 96 * s;
      const uint8_t* v = q + 16 * s;
      for (int j = 0; j < 3; ++j) {
        for (int i = 0; i < 4; ++i) {
          // quad j's 6 bits, and bits 4-2j..5-2j of quad 3's value on top
          const int top = (v[12 + i] >> (4 - 2 * j)) & 3;
          sb[32 * j + 4 * r + i] = static_cast<uint8_t>(v[4 * j + i] | (top << 6));
        }
      }
    }
  }
}

template <class Block, void (*Column)(const Block* const*, uint8_t*)>
void repack_k(const uint8_t* src, size_t row_stride, int64_t rows, int64_t cols, uint8_t* dst,
              size_t column_bytes) {
  const int64_t nb = cols / QK_K;
  for (int64_t g = 0; g < rows / 8; ++g) {
    for (int64_t b = 0; b < nb; ++b) {
      const Block* x[8];
      for (int r = 0; r < 8; ++r) {
        x[r] =
            reinterpret_cast<const Block*>(src + static_cast<size_t>(g * 8 + r) * row_stride) + b;
      }
      Column(x, dst + static_cast<size_t>(g * nb + b) * column_bytes);
    }
  }
}

}  // namespace

bool can_repack(Isa isa, TensorType w, int64_t rows, int64_t cols) {
  if (find_repacked_gemm(isa, w) == nullptr || rows <= 0 || rows % 8 != 0) return false;
  // gemm_avx2_repacked*.cpp keep per-block activation sums on the stack: rows of up to 65,536
  if (w == TensorType::Q4_0 || w == TensorType::Q8_0 || w == TensorType::Q4_1 ||
      w == TensorType::Q5_1)
    return cols % 32 == 0 && cols <= 65536;
  if (w == TensorType::Q4_K || w == TensorType::Q6_K) return cols % QK_K == 0 && cols <= 65536;
  return false;
}

size_t repacked_bytes(TensorType w, int64_t rows, int64_t cols) {
  const auto columns = static_cast<size_t>(rows / 8) * static_cast<size_t>(cols / QK_K);
  if (w == TensorType::Q4_K) return columns * kQ4_Kx8Bytes;
  if (w == TensorType::Q6_K) return columns * kQ6_Kx8Bytes;
  return row_bytes(w, cols) * static_cast<size_t>(rows);
}

void repack(TensorType w, const uint8_t* src, size_t row_stride, int64_t rows, int64_t cols,
            uint8_t* dst) {
  if (w == TensorType::Q4_K) {
    repack_k<block_q4_K, &repack_q4_k_column>(src, row_stride, rows, cols, dst, kQ4_Kx8Bytes);
  } else if (w == TensorType::Q6_K) {
    repack_k<block_q6_K, &repack_q6_k_column>(src, row_stride, rows, cols, dst, kQ6_Kx8Bytes);
  } else if (w == TensorType::Q4_1 || w == TensorType::Q5_1) {
    repack_q41(w, src, row_stride, rows, cols, dst);
  } else {
    repack_q32(w, src, row_stride, rows, cols, dst);
  }
}

GemmKernel find_repacked_gemm(Isa isa, TensorType w) {
#if defined(THINKMESH_HAVE_AVX2_KERNELS)
  if (isa == Isa::avx2 || isa == Isa::avx512 || isa == Isa::amx) {
    if (GemmKernel k = find_repacked_gemm_avx2(w)) return k;
    if (GemmKernel k = find_repacked_gemm_avx2_q41(w)) return k;
    return find_repacked_gemm_avx2_kq(w);
  }
#else
  (void)isa;
  (void)w;
#endif
  return nullptr;
}

}  // namespace thinkmesh::kernels
