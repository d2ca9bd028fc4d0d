// NEON kernels for float weights: F32 (F32 activations), F16 (F16 activations, as ggml rounds
// them; widened with fcvtl) and BF16 (BF16 activations, widened by a 16-bit shift). Products and
// sums in F32 lanes with fused multiply-add (the reference sums in double). Compiled with
// -march=armv8.2-a+dotprod.
#include <arm_neon.h>

#include <cstring>

#include "kernels/gemm.h"
#include "kernels/tile_driver.h"

namespace thinkmesh::kernels {
namespace {

// 8 values at element k of a row, widened to F32 (k + 8 <= n): lo = k..k+3, hi = k+4..k+7.
struct F32Row {
  static void load(const uint8_t* row, int64_t k, float32x4_t& lo, float32x4_t& hi) {
    const float* f = reinterpret_cast<const float*>(row) + k;
    lo = vld1q_f32(f);
    hi = vld1q_f32(f + 4);
  }
  static float scalar(const uint8_t* row, int64_t k) {
    float f;
    std::memcpy(&f, row + 4 * k, 4);
    return f;
  }
};
struct F16Row {
  static void load(const uint8_t* row, int64_t k, float32x4_t& lo, float32x4_t& hi) {
    const float16x8_t h =
        vreinterpretq_f16_u16(vld1q_u16(reinterpret_cast<const uint16_t*>(row) + k));
    lo = vcvt_f32_f16(vget_low_f16(h));
    hi = vcvt_high_f32_f16(h);
  }
  static float scalar(const uint8_t* row, int64_t k) {
    uint16_t h;
    std::memcpy(&h, row + 2 * k, 2);
    return vgetq_lane_f32(vcvt_f32_f16(vreinterpret_f16_u16(vdup_n_u16(h))), 0);
  }
};
struct BF16Row {
  static void load(const uint8_t* row, int64_t k, float32x4_t& lo, float32x4_t& hi) {
    const uint16x8_t h = vld1q_u16(reinterpret_cast<const uint16_t*>(row) + k);
    lo = vreinterpretq_f32_u32(vshll_n_u16(vget_low_u16(h), 16));
    hi = vreinterpretq_f32_u32(vshll_high_n_u16(h, 16));
  }
  static float scalar(const uint8_t* row, int64_t k) {
    uint16_t h;
    std::memcpy(&h, row + 2 * k, 2);
    const uint32_t bits = static_cast<uint32_t>(h) << 16;
    float f;
    std::memcpy(&f, &bits, 4);
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
    // Two accumulators per (row, token): values k..k+3 and k+4..k+7 of each step of 8.
    float32x4_t acc_lo[R][T], acc_hi[R][T];
    for (int j = 0; j < R; ++j)
      for (int i = 0; i < T; ++i) acc_lo[j][i] = acc_hi[j][i] = vdupq_n_f32(0.0f);
    const int64_t n8 = p.n & ~int64_t{7};
    for (int64_t k = 0; k < n8; k += 8) {
      float32x4_t a_lo[T], a_hi[T];
      for (int i = 0; i < T; ++i) L::load(y[i], k, a_lo[i], a_hi[i]);
      for (int j = 0; j < R; ++j) {
        float32x4_t w_lo, w_hi;
        L::load(x[j], k, w_lo, w_hi);
        for (int i = 0; i < T; ++i) {
          acc_lo[j][i] = vfmaq_f32(acc_lo[j][i], w_lo, a_lo[i]);
          acc_hi[j][i] = vfmaq_f32(acc_hi[j][i], w_hi, a_hi[i]);
        }
      }
    }
    for (int i = 0; i < T; ++i) {
      float* out = p.y + (t + i) * p.y_stride + r;
      for (int j = 0; j < R; ++j) {
        float s = vaddvq_f32(vaddq_f32(acc_lo[j][i], acc_hi[j][i]));
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

GemmKernel find_gemm_neon_f(TensorType w) {
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
