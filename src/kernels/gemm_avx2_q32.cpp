// AVX2 kernels for the 32-value block types Q4_0, Q5_0 and Q8_0 against Q8_0 activations.
// Compiled with -mavx2 -mfma -mf16c; only called after isa_supported(Isa::avx2).
//
// One ymm holds one block. Without VNNI the int8 products go through vpmaddubsw (unsigned x
// signed bytes -> int16 pairs) and vpmaddwd (-> int32):
//   Q4_0 / Q5_0: q stored unsigned (0..15 / 0..31); the offset (8 / 16) times the activation
//                pair sums, prepared once per token and block, is subtracted from the int16
//                pairs (no overflow: |pair| <= 2*31*128 + 16*256).
//   Q8_0:        |w| x (a with w's sign) as ggml does (a pair of 128*127 products fits int16).
//   y += float(int sum) * d_w * d_a   per block; integer sums exact, as the reference.
#include <immintrin.h>

#include <cstring>

#include "kernels/gemm.h"
#include "kernels/simd_avx2.h"
#include "kernels/tile_driver.h"
#include "tensor/blocks.h"

namespace thinkmesh::kernels {
namespace {

inline __m256i load_q8(const block_q8_0& y) {
  return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(y.qs));
}

// Offset types: weights unsigned, offset*pair sums subtracted. Per token and block the kernel
// prepares `corr` = offset * (a_2i + a_2i+1) as int16 (vpmaddubsw of the offset bytes with a).
struct Q4_0 {
  using Block = block_q4_0;
  static constexpr char kOffset = 8;
  static __m256i weights(const Block& x) { return unpack_nibbles(x.qs); }
};
struct Q5_0 {
  using Block = block_q5_0;
  static constexpr char kOffset = 16;
  static __m256i weights(const Block& x) {
    uint32_t h;
    std::memcpy(&h, x.qh, 4);
    return _mm256_or_si256(unpack_nibbles(x.qs), bits_to_0x10(h));
  }
};

template <class D>
struct OffsetKernel {
  static constexpr int kRows = 4;
  static constexpr int kTokens = 2;

  template <int R, int T>
  static void tile(const GemmProblem& p, int64_t r, int64_t t) {
    using Block = typename D::Block;
    const int64_t nb = p.n / 32;
    const Block* x[R];
    const block_q8_0* y[T];
    for (int j = 0; j < R; ++j)
      x[j] = reinterpret_cast<const Block*>(p.w + static_cast<size_t>(r + j) * p.w_stride);
    for (int i = 0; i < T; ++i)
      y[i] = reinterpret_cast<const block_q8_0*>(p.act + static_cast<size_t>(t + i) * p.act_stride);
    __m256 acc[R][T];
    for (int j = 0; j < R; ++j)
      for (int i = 0; i < T; ++i) acc[j][i] = _mm256_setzero_ps();
    const __m256i ones16 = _mm256_set1_epi16(1);
    const __m256i offset = _mm256_set1_epi8(D::kOffset);

    for (int64_t b = 0; b < nb; ++b) {
      __m256i a[T], corr[T];
      __m256 da[T];
      for (int i = 0; i < T; ++i) {
        a[i] = load_q8(y[i][b]);
        corr[i] = _mm256_maddubs_epi16(offset, a[i]);
        da[i] = f16x8(y[i][b].d);
      }
      for (int j = 0; j < R; ++j) {
        const __m256i w = D::weights(x[j][b]);
        const __m256 dw = f16x8(x[j][b].d);
        for (int i = 0; i < T; ++i) {
          const __m256i pairs = _mm256_sub_epi16(_mm256_maddubs_epi16(w, a[i]), corr[i]);
          const __m256i isum = _mm256_madd_epi16(pairs, ones16);
          acc[j][i] =
              _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum), _mm256_mul_ps(dw, da[i]), acc[j][i]);
        }
      }
    }
    store(p, r, t, acc);
  }

  template <int R, int T>
  static void store(const GemmProblem& p, int64_t r, int64_t t, __m256 (&acc)[R][T]);
};

template <class D>
template <int R, int T>
void OffsetKernel<D>::store(const GemmProblem& p, int64_t r, int64_t t, __m256 (&acc)[R][T]) {
  for (int i = 0; i < T; ++i) {
    float* out = p.y + (t + i) * p.y_stride + r;
    for (int j = 0; j < R; ++j) out[j] = hsum(acc[j][i]);
  }
}

struct Q8_0Kernel {
  static constexpr int kRows = 4;
  static constexpr int kTokens = 2;

  template <int R, int T>
  static void tile(const GemmProblem& p, int64_t r, int64_t t) {
    const int64_t nb = p.n / 32;
    const block_q8_0* x[R];
    const block_q8_0* y[T];
    for (int j = 0; j < R; ++j)
      x[j] = reinterpret_cast<const block_q8_0*>(p.w + static_cast<size_t>(r + j) * p.w_stride);
    for (int i = 0; i < T; ++i)
      y[i] = reinterpret_cast<const block_q8_0*>(p.act + static_cast<size_t>(t + i) * p.act_stride);
    __m256 acc[R][T];
    for (int j = 0; j < R; ++j)
      for (int i = 0; i < T; ++i) acc[j][i] = _mm256_setzero_ps();
    const __m256i ones16 = _mm256_set1_epi16(1);

    for (int64_t b = 0; b < nb; ++b) {
      __m256i a[T];
      __m256 da[T];
      for (int i = 0; i < T; ++i) {
        a[i] = load_q8(y[i][b]);
        da[i] = f16x8(y[i][b].d);
      }
      for (int j = 0; j < R; ++j) {
        const __m256i w = load_q8(x[j][b]);
        const __m256i aw = _mm256_sign_epi8(w, w);  // |w| (-128 stays 0x80 = 128 unsigned)
        const __m256 dw = f16x8(x[j][b].d);
        for (int i = 0; i < T; ++i) {
          const __m256i pairs = _mm256_maddubs_epi16(aw, _mm256_sign_epi8(a[i], w));
          const __m256i isum = _mm256_madd_epi16(pairs, ones16);
          acc[j][i] =
              _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum), _mm256_mul_ps(dw, da[i]), acc[j][i]);
        }
      }
    }
    for (int i = 0; i < T; ++i) {
      float* out = p.y + (t + i) * p.y_stride + r;
      for (int j = 0; j < R; ++j) out[j] = hsum(acc[j][i]);
    }
  }
};

void gemm_q4_0(const GemmProblem& p, int64_t r0, int64_t r1) {
  run_tiles<OffsetKernel<Q4_0>>(p, r0, r1);
}
void gemm_q5_0(const GemmProblem& p, int64_t r0, int64_t r1) {
  run_tiles<OffsetKernel<Q5_0>>(p, r0, r1);
}
void gemm_q8_0(const GemmProblem& p, int64_t r0, int64_t r1) {
  run_tiles<Q8_0Kernel>(p, r0, r1);
}

}  // namespace

GemmKernel find_gemm_avx2_q32(TensorType w) {
  switch (w) {
    case TensorType::Q4_0:
      return &gemm_q4_0;
    case TensorType::Q5_0:
      return &gemm_q5_0;
    case TensorType::Q8_0:
      return &gemm_q8_0;
    default:
      return nullptr;
  }
}

}  // namespace thinkmesh::kernels
