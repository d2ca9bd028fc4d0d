// NEON kernels for the k-quants Q4_K, Q5_K and Q6_K against Q8_K activations (256-value
// super-blocks). Compiled with -march=armv8.2-a+dotprod.
//
// A super-block is decoded into sixteen int8x16 registers q[s] = values 16s..16s+15 (Q4_K
// 0..15, Q5_K 0..31, Q6_K already minus 32: -32..31, which sdot takes as signed bytes). sdot
// (vdotq_s32) with the int8 activations gives int32 lanes per 16 values, scaled by the integer
// sub-block scale and summed in int32:
//   Q4_K/Q5_K: y += d*d8 * sum_k sc_k * sum(q*a)  -  dmin*d8 * sum_k m_k * sum_k(a)
//   Q6_K:      y += d*d8 * sum_s sc_s * sum((q-32)*a)
// with Q8_K's per-16 activation sums (bsums) giving sum_k(a) for the 32-value sub-block k.
// Integer parts exact (|sum| < 2^27 for every type).
#include <arm_neon.h>

#include "kernels/gemm.h"
#include "kernels/kquant_scales.h"
#include "kernels/tile_driver.h"
#include "tensor/blocks.h"

namespace thinkmesh::kernels {
namespace {

inline float f16(uint16_t h) {
  return vgetq_lane_f32(vcvt_f32_f16(vreinterpret_f16_u16(vdup_n_u16(h))), 0);
}

struct DecodedK {
  int8x16_t q[16];    // values 16s..16s+15
  int32_t scale[16];  // Q4_K/Q5_K: sc[0..7] (per 32 values); Q6_K: the 16 scales
  int16x8_t mins;     // Q4_K/Q5_K: m[0..7]
  float d, dmin;
};

inline void decode_k4_scales(const uint8_t* packed, DecodedK& out) {
  uint8_t sm[16];
  unpack_scales_mins(packed, sm);
  for (int k = 0; k < 8; ++k) out.scale[k] = sm[k];
  out.mins = vreinterpretq_s16_u16(vmovl_u8(vld1_u8(sm + 8)));
}

struct Q4_K {
  using Block = block_q4_K;
  static constexpr bool kMins = true;
  static void decode(const Block& x, DecodedK& out) {
    const uint8x16_t m4 = vdupq_n_u8(0x0F);
    for (int j = 0; j < 4; ++j) {
      // bytes 32j..32j+31: low nibbles are values 64j..64j+31, high nibbles 64j+32..64j+63
      for (int h = 0; h < 2; ++h) {
        const uint8x16_t v = vld1q_u8(x.qs + 32 * j + 16 * h);
        out.q[4 * j + h] = vreinterpretq_s8_u8(vandq_u8(v, m4));
        out.q[4 * j + 2 + h] = vreinterpretq_s8_u8(vshrq_n_u8(v, 4));
      }
    }
    decode_k4_scales(x.scales, out);
    out.d = f16(x.d);
    out.dmin = f16(x.dmin);
  }
};

struct Q5_K {
  using Block = block_q5_K;
  static constexpr bool kMins = true;
  static void decode(const Block& x, DecodedK& out) {
    const uint8x16_t m4 = vdupq_n_u8(0x0F), sixteen = vdupq_n_u8(0x10);
    const uint8x16_t qh[2] = {vld1q_u8(x.qh), vld1q_u8(x.qh + 16)};
    for (int j = 0; j < 4; ++j) {
      // value 64j+l takes bit 2j of qh[l], value 64j+32+l bit 2j+1 (l < 32)
      const uint8x16_t b0 = vdupq_n_u8(static_cast<uint8_t>(1 << (2 * j)));
      const uint8x16_t b1 = vdupq_n_u8(static_cast<uint8_t>(2 << (2 * j)));
      for (int h = 0; h < 2; ++h) {
        const uint8x16_t v = vld1q_u8(x.qs + 32 * j + 16 * h);
        const uint8x16_t h0 = vandq_u8(vtstq_u8(qh[h], b0), sixteen);
        const uint8x16_t h1 = vandq_u8(vtstq_u8(qh[h], b1), sixteen);
        out.q[4 * j + h] = vreinterpretq_s8_u8(vorrq_u8(vandq_u8(v, m4), h0));
        out.q[4 * j + 2 + h] = vreinterpretq_s8_u8(vorrq_u8(vshrq_n_u8(v, 4), h1));
      }
    }
    decode_k4_scales(x.scales, out);
    out.d = f16(x.d);
    out.dmin = f16(x.dmin);
  }
};

struct Q6_K {
  using Block = block_q6_K;
  static constexpr bool kMins = false;
  static void decode(const Block& x, DecodedK& out) {
    const uint8x16_t m4 = vdupq_n_u8(0x0F), m30 = vdupq_n_u8(0x30);
    const int8x16_t m32 = vdupq_n_s8(32);
    for (int half = 0; half < 2; ++half) {
      for (int h = 0; h < 2; ++h) {
        // l = 16h..16h+15 of the half: values l, l+32, l+64, l+96 take ql[l] low, ql[l+32]
        // low, ql[l] high, ql[l+32] high nibbles and qh[l] bits 0-1, 2-3, 4-5, 6-7 as bits 4-5
        const uint8x16_t ql0 = vld1q_u8(x.ql + 64 * half + 16 * h);
        const uint8x16_t ql1 = vld1q_u8(x.ql + 64 * half + 32 + 16 * h);
        const uint8x16_t qh = vld1q_u8(x.qh + 32 * half + 16 * h);
        const uint8x16_t v0 = vorrq_u8(vandq_u8(ql0, m4), vandq_u8(vshlq_n_u8(qh, 4), m30));
        const uint8x16_t v1 = vorrq_u8(vandq_u8(ql1, m4), vandq_u8(vshlq_n_u8(qh, 2), m30));
        const uint8x16_t v2 = vorrq_u8(vshrq_n_u8(ql0, 4), vandq_u8(qh, m30));
        const uint8x16_t v3 = vorrq_u8(vshrq_n_u8(ql1, 4), vandq_u8(vshrq_n_u8(qh, 2), m30));
        int8x16_t* q = out.q + 8 * half + h;
        q[0] = vsubq_s8(vreinterpretq_s8_u8(v0), m32);
        q[2] = vsubq_s8(vreinterpretq_s8_u8(v1), m32);
        q[4] = vsubq_s8(vreinterpretq_s8_u8(v2), m32);
        q[6] = vsubq_s8(vreinterpretq_s8_u8(v3), m32);
      }
    }
    for (int s = 0; s < 16; ++s) out.scale[s] = x.scales[s];
    out.d = f16(x.d);
    out.dmin = 0;
  }
};

template <class D>
struct KKernel {
  static constexpr int kRows = 2;
  static constexpr int kTokens = 2;

  template <int R, int T>
  static void tile(const GemmProblem& p, int64_t r, int64_t t) {
    using Block = typename D::Block;
    const int64_t nb = p.n / QK_K;
    const Block* x[R];
    const block_q8_K* y[T];
    for (int j = 0; j < R; ++j)
      x[j] = reinterpret_cast<const Block*>(p.w + static_cast<size_t>(r + j) * p.w_stride);
    for (int i = 0; i < T; ++i)
      y[i] = reinterpret_cast<const block_q8_K*>(p.act + static_cast<size_t>(t + i) * p.act_stride);
    float32x4_t acc[R][T];
    for (int j = 0; j < R; ++j)
      for (int i = 0; i < T; ++i) acc[j][i] = vdupq_n_f32(0.0f);
    const int32x4_t zero = vdupq_n_s32(0);

    for (int64_t b = 0; b < nb; ++b) {
      for (int j = 0; j < R; ++j) {
        DecodedK w;
        D::decode(x[j][b], w);
        for (int i = 0; i < T; ++i) {
          const block_q8_K& a = y[i][b];
          int32x4_t sumi = zero;
          if constexpr (D::kMins) {
            for (int k = 0; k < 8; ++k) {
              const int32x4_t dot = vdotq_s32(vdotq_s32(zero, w.q[2 * k], vld1q_s8(a.qs + 32 * k)),
                                              w.q[2 * k + 1], vld1q_s8(a.qs + 32 * k + 16));
              sumi = vmlaq_n_s32(sumi, dot, w.scale[k]);
            }
            // sum_k m_k * (bsums[2k] + bsums[2k+1]); a pair sum is at most 32 * 128 (int16)
            const int16x8_t pair = vpaddq_s16(vld1q_s16(a.bsums), vld1q_s16(a.bsums + 8));
            const int32x4_t corr =
                vmlal_high_s16(vmull_s16(vget_low_s16(pair), vget_low_s16(w.mins)), pair, w.mins);
            acc[j][i] = vfmaq_n_f32(acc[j][i], vcvtq_f32_s32(sumi), w.d * a.d);
            acc[j][i] = vfmaq_n_f32(acc[j][i], vcvtq_f32_s32(corr), -w.dmin * a.d);
          } else {
            for (int s = 0; s < 16; ++s) {
              const int32x4_t dot = vdotq_s32(zero, w.q[s], vld1q_s8(a.qs + 16 * s));
              sumi = vmlaq_n_s32(sumi, dot, w.scale[s]);
            }
            acc[j][i] = vfmaq_n_f32(acc[j][i], vcvtq_f32_s32(sumi), w.d * a.d);
          }
        }
      }
    }
    for (int i = 0; i < T; ++i) {
      float* out = p.y + (t + i) * p.y_stride + r;
      for (int j = 0; j < R; ++j) out[j] = vaddvq_f32(acc[j][i]);
    }
  }
};

void gemm_q4_k(const GemmProblem& p, int64_t r0, int64_t r1) {
  run_tiles<KKernel<Q4_K>>(p, r0, r1);
}
void gemm_q5_k(const GemmProblem& p, int64_t r0, int64_t r1) {
  run_tiles<KKernel<Q5_K>>(p, r0, r1);
}
void gemm_q6_k(const GemmProblem& p, int64_t r0, int64_t r1) {
  run_tiles<KKernel<Q6_K>>(p, r0, r1);
}

}  // namespace

GemmKernel find_gemm_neon_kq(TensorType w) {
  switch (w) {
    case TensorType::Q4_K:
      return &gemm_q4_k;
    case TensorType::Q5_K:
      return &gemm_q5_k;
    case TensorType::Q6_K:
      return &gemm_q6_k;
    default:
      return nullptr;
  }
}

}  // namespace thinkmesh::kernels
