// AVX2 kernels for the 32-value block types with a minimum, Q4_1 and Q5_1, against Q8_1
// activations (block_q8_1: d and s = d * sum(q)). Compiled with -mavx2 -mfma -mf16c; only
// called after isa_supported(Isa::avx2).
//
// Per block:  y += d_w * d_a * sum(q_w * q_a) + m_w * s_a
// One ymm holds one block. The weights are unsigned (0..15 / 0..31), so vpmaddubsw takes them
// as the unsigned operand directly (pairs of 31 x 127 products fit int16), vpmaddwd widens to
// int32; the integer sums are exact, as in the reference. The min term needs one product per
// row and token: the R rows' m go in the lanes of one xmm, and per token one multiply-add with
// a broadcast of s_a accumulates m_w * s_a for the R rows at once.
#include <immintrin.h>

#include <cstring>

#include "kernels/gemm.h"
#include "kernels/simd_avx2.h"
#include "kernels/tile_driver.h"
#include "tensor/blocks.h"

namespace thinkmesh::kernels {
namespace {

struct Q4_1 {
  using Block = block_q4_1;
  static __m256i weights(const Block& x) { return unpack_nibbles(x.qs); }
};
struct Q5_1 {
  using Block = block_q5_1;
  static __m256i weights(const Block& x) {
    uint32_t h;
    std::memcpy(&h, x.qh, 4);
    return _mm256_or_si256(unpack_nibbles(x.qs), bits_to_0x10(h));
  }
};

// The F16 mins of up to 4 rows' block b in the lanes of one xmm (lanes >= R are 0).
template <class Block, int R>
inline __m128 mins(const Block* const (&x)[R], int64_t b) {
  uint16_t m[4] = {0, 0, 0, 0};
  for (int j = 0; j < R; ++j) m[j] = x[j][b].m;
  return _mm_cvtph_ps(_mm_set_epi16(0, 0, 0, 0, static_cast<short>(m[3]), static_cast<short>(m[2]),
                                    static_cast<short>(m[1]), static_cast<short>(m[0])));
}

template <class D>
struct MinKernel {
  static constexpr int kRows = 4;
  static constexpr int kTokens = 2;

  template <int R, int T>
  static void tile(const GemmProblem& p, int64_t r, int64_t t) {
    using Block = typename D::Block;
    const int64_t nb = p.n / 32;
    const Block* x[R];
    const block_q8_1* y[T];
    for (int j = 0; j < R; ++j)
      x[j] = reinterpret_cast<const Block*>(p.w + static_cast<size_t>(r + j) * p.w_stride);
    for (int i = 0; i < T; ++i)
      y[i] = reinterpret_cast<const block_q8_1*>(p.act + static_cast<size_t>(t + i) * p.act_stride);
    __m256 acc[R][T];
    for (int j = 0; j < R; ++j)
      for (int i = 0; i < T; ++i) acc[j][i] = _mm256_setzero_ps();
    __m128 min_acc[T];  // lane j: sum over blocks of m_w(row j) * s_a(token i)
    for (int i = 0; i < T; ++i) min_acc[i] = _mm_setzero_ps();
    const __m256i ones16 = _mm256_set1_epi16(1);

    for (int64_t b = 0; b < nb; ++b) {
      __m256i a[T];
      __m256 da[T];
      for (int i = 0; i < T; ++i) {
        a[i] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(y[i][b].qs));
        da[i] = f16x8(y[i][b].d);
      }
      const __m128 mw = mins<Block, R>(x, b);
      for (int i = 0; i < T; ++i)
        min_acc[i] = _mm_fmadd_ps(mw, _mm_set1_ps(_cvtsh_ss(y[i][b].s)), min_acc[i]);
      for (int j = 0; j < R; ++j) {
        const __m256i w = D::weights(x[j][b]);
        const __m256 dw = f16x8(x[j][b].d);
        for (int i = 0; i < T; ++i) {
          const __m256i isum = _mm256_madd_epi16(_mm256_maddubs_epi16(w, a[i]), ones16);
          acc[j][i] =
              _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum), _mm256_mul_ps(dw, da[i]), acc[j][i]);
        }
      }
    }
    for (int i = 0; i < T; ++i) {
      float m[4];
      _mm_storeu_ps(m, min_acc[i]);
      float* out = p.y + (t + i) * p.y_stride + r;
      for (int j = 0; j < R; ++j) out[j] = hsum(acc[j][i]) + m[j];
    }
  }
};

void gemm_q4_1(const GemmProblem& p, int64_t r0, int64_t r1) {
  run_tiles<MinKernel<Q4_1>>(p, r0, r1);
}
void gemm_q5_1(const GemmProblem& p, int64_t r0, int64_t r1) {
  run_tiles<MinKernel<Q5_1>>(p, r0, r1);
}

}  // namespace

GemmKernel find_gemm_avx2_q41(TensorType w) {
  switch (w) {
    case TensorType::Q4_1:
      return &gemm_q4_1;
    case TensorType::Q5_1:
      return &gemm_q5_1;
    default:
      return nullptr;
  }
}

}  // namespace thinkmesh::kernels
