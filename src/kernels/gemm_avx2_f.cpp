// AVX2 kernels for float weights: F32 (F32 activations), F16 (F16 activations, as ggml rounds
// them) and BF16 (BF16 activations, widened to F32). Products and sums in F32 lanes (the
// reference sums in double). Compiled with -mavx2 -mfma -mf16c.
#include <immintrin.h>

#include "kernels/gemm.h"
#include "kernels/simd_avx2.h"
#include "kernels/tile_driver.h"

namespace thinkmesh::kernels {
namespace {

// 8 values at element k of a row, widened to F32 (k + 8 <= n).
struct F32Row {
  static __m256 load(const uint8_t* row, int64_t k) {
    return _mm256_loadu_ps(reinterpret_cast<const float*>(row) + k);
  }
  static float scalar(const uint8_t* row, int64_t k) {
    return reinterpret_cast<const float*>(row)[k];
  }
};
struct F16Row {
  static __m256 load(const uint8_t* row, int64_t k) {
    return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(row + 2 * k)));
  }
  static float scalar(const uint8_t* row, int64_t k) {
    return _cvtsh_ss(reinterpret_cast<const uint16_t*>(row)[k]);
  }
};
struct BF16Row {
  static __m256 load(const uint8_t* row, int64_t k) {
    const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(row + 2 * k));
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
  }
  static float scalar(const uint8_t* row, int64_t k) {
    const uint32_t bits = static_cast<uint32_t>(reinterpret_cast<const uint16_t*>(row)[k]) << 16;
    float f;
    __builtin_memcpy(&f, &bits, 4);
    return f;
  }
};

template <class L>
struct FloatKernel {
  static constexpr int kRows = 4;
  static constexpr int kTokens = 2;

  template <int R, int T>
  static void tile(const GemmProblem& p, int64_t r, int64_t t) {
    const uint8_t* x[R];
    const uint8_t* y[T];
    for (int j = 0; j < R; ++j) x[j] = p.w + static_cast<size_t>(r + j) * p.w_stride;
    for (int i = 0; i < T; ++i) y[i] = p.act + static_cast<size_t>(t + i) * p.act_stride;
    __m256 acc[R][T];
    for (int j = 0; j < R; ++j)
      for (int i = 0; i < T; ++i) acc[j][i] = _mm256_setzero_ps();
    const int64_t n8 = p.n & ~int64_t{7};
    for (int64_t k = 0; k < n8; k += 8) {
      __m256 a[T];
      for (int i = 0; i < T; ++i) a[i] = L::load(y[i], k);
      for (int j = 0; j < R; ++j) {
        const __m256 w = L::load(x[j], k);
        for (int i = 0; i < T; ++i) acc[j][i] = _mm256_fmadd_ps(w, a[i], acc[j][i]);
      }
    }
    for (int i = 0; i < T; ++i) {
      float* out = p.y + (t + i) * p.y_stride + r;
      for (int j = 0; j < R; ++j) {
        float s = hsum(acc[j][i]);
        for (int64_t k = n8; k < p.n; ++k) s += L::scalar(x[j], k) * L::scalar(y[i], k);
        out[j] = s;
      }
    }
  }
};

void gemm_f32(const GemmProblem& p, int64_t r0, int64_t r1) {
  run_tiles<FloatKernel<F32Row>>(p, r0, r1);
}
void gemm_f16(const GemmProblem& p, int64_t r0, int64_t r1) {
  run_tiles<FloatKernel<F16Row>>(p, r0, r1);
}
void gemm_bf16(const GemmProblem& p, int64_t r0, int64_t r1) {
  run_tiles<FloatKernel<BF16Row>>(p, r0, r1);
}

}  // namespace

GemmKernel find_gemm_avx2_f(TensorType w) {
  switch (w) {
    case TensorType::F32:
      return &gemm_f32;
    case TensorType::F16:
      return &gemm_f16;
    case TensorType::BF16:
      return &gemm_bf16;
    default:
      return nullptr;
  }
}

}  // namespace thinkmesh::kernels
