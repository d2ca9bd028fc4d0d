// AVX-512 kernels for float weights: F32 (F32 activations), F16 (F16 activations, as ggml rounds
// them), BF16 (BF16 activations; vdpbf16ps when the CPU has AVX512_BF16, else widened to F32).
// Products and sums in F32 lanes (the reference sums in double): differences stay far below the
// goldens' tolerances. Compiled with -mavx512f/bw/vl/dq -mfma -mf16c; the vdpbf16ps loop is
// compiled with a target attribute and only called when cpu_features().avx512bf16.
#include <immintrin.h>

#include "kernels/gemm.h"
#include "kernels/isa.h"
#include "kernels/tile_driver.h"

namespace thinkmesh::kernels {
namespace {

// 16 values starting at element k of a row of `type`, widened to F32; masked past the end.
struct F32Row {
  static __m512 load(const uint8_t* row, int64_t k, __mmask16 m) {
    return _mm512_maskz_loadu_ps(m, reinterpret_cast<const float*>(row) + k);
  }
};
struct F16Row {
  static __m512 load(const uint8_t* row, int64_t k, __mmask16 m) {
    return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, reinterpret_cast<const uint16_t*>(row) + k));
  }
};
struct BF16Row {
  static __m512 load(const uint8_t* row, int64_t k, __mmask16 m) {
    const __m256i h = _mm256_maskz_loadu_epi16(m, reinterpret_cast<const uint16_t*>(row) + k);
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
  }
};

template <class L>
struct FloatKernel {
  static constexpr int kRows = 4;
  static constexpr int kTokens = 4;

  template <int R, int T>
  static void tile(const GemmProblem& p, int64_t r, int64_t t) {
    const uint8_t* x[R];
    const uint8_t* y[T];
    for (int j = 0; j < R; ++j) x[j] = p.w + static_cast<size_t>(r + j) * p.w_stride;
    for (int i = 0; i < T; ++i) y[i] = p.act + static_cast<size_t>(t + i) * p.act_stride;
    __m512 acc[R][T];
    for (int j = 0; j < R; ++j)
      for (int i = 0; i < T; ++i) acc[j][i] = _mm512_setzero_ps();
    for (int64_t k = 0; k < p.n; k += 16) {
      const int64_t left = p.n - k;
      const __mmask16 m =
          left >= 16 ? static_cast<__mmask16>(0xFFFF) : static_cast<__mmask16>((1u << left) - 1);
      __m512 a[T];
      for (int i = 0; i < T; ++i) a[i] = L::load(y[i], k, m);
      for (int j = 0; j < R; ++j) {
        const __m512 w = L::load(x[j], k, m);
        for (int i = 0; i < T; ++i) acc[j][i] = _mm512_fmadd_ps(w, a[i], acc[j][i]);
      }
    }
    for (int i = 0; i < T; ++i) {
      float* out = p.y + (t + i) * p.y_stride + r;
      for (int j = 0; j < R; ++j) out[j] = _mm512_reduce_add_ps(acc[j][i]);
    }
  }
};

// BF16 with vdpbf16ps: 32 products per instruction, pairs summed in F32.
struct Bf16DotKernel {
  static constexpr int kRows = 4;
  static constexpr int kTokens = 4;

  template <int R, int T>
  __attribute__((target("avx512bf16"))) static void tile(const GemmProblem& p, int64_t r,
                                                         int64_t t) {
    const uint16_t* x[R];
    const uint16_t* y[T];
    for (int j = 0; j < R; ++j)
      x[j] = reinterpret_cast<const uint16_t*>(p.w + static_cast<size_t>(r + j) * p.w_stride);
    for (int i = 0; i < T; ++i)
      y[i] = reinterpret_cast<const uint16_t*>(p.act + static_cast<size_t>(t + i) * p.act_stride);
    __m512 acc[R][T];
    for (int j = 0; j < R; ++j)
      for (int i = 0; i < T; ++i) acc[j][i] = _mm512_setzero_ps();
    for (int64_t k = 0; k < p.n; k += 32) {
      const int64_t left = p.n - k;
      const __mmask32 m = left >= 32 ? static_cast<__mmask32>(0xFFFFFFFFu)
                                     : static_cast<__mmask32>((1u << left) - 1);
      __m512bh a[T];
      for (int i = 0; i < T; ++i) a[i] = (__m512bh)_mm512_maskz_loadu_epi16(m, y[i] + k);
      for (int j = 0; j < R; ++j) {
        const __m512bh w = (__m512bh)_mm512_maskz_loadu_epi16(m, x[j] + k);
        for (int i = 0; i < T; ++i) acc[j][i] = _mm512_dpbf16_ps(acc[j][i], w, a[i]);
      }
    }
    for (int i = 0; i < T; ++i) {
      float* out = p.y + (t + i) * p.y_stride + r;
      for (int j = 0; j < R; ++j) out[j] = _mm512_reduce_add_ps(acc[j][i]);
    }
  }
};

void gemm_f32(const GemmProblem& p, int64_t r0, int64_t r1) {
  run_tiles<FloatKernel<F32Row>>(p, r0, r1);
}
void gemm_f16(const GemmProblem& p, int64_t r0, int64_t r1) {
  run_tiles<FloatKernel<F16Row>>(p, r0, r1);
}
void gemm_bf16_widen(const GemmProblem& p, int64_t r0, int64_t r1) {
  run_tiles<FloatKernel<BF16Row>>(p, r0, r1);
}
void gemm_bf16_dot(const GemmProblem& p, int64_t r0, int64_t r1) {
  run_tiles<Bf16DotKernel>(p, r0, r1);
}

}  // namespace

GemmKernel find_gemm_avx512_f(TensorType w) {
  switch (w) {
    case TensorType::F32:
      return &gemm_f32;
    case TensorType::F16:
      return &gemm_f16;
    case TensorType::BF16:
      return cpu_features().avx512bf16 ? &gemm_bf16_dot : &gemm_bf16_widen;
    default:
      return nullptr;
  }
}

}  // namespace thinkmesh::kernels
