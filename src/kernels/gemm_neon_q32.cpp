// NEON kernels for the 32-value block types Q4_0, Q5_0 and Q8_0 against Q8_0 activations.
// Compiled with -march=armv8.2-a+dotprod; only called after isa_supported(Isa::neon).
//
// One block is two int8x16 registers (values 0..15 and 16..31). sdot (vdotq_s32) multiplies
// signed by signed bytes and adds groups of four into int32 lanes, so the offset types need no
// correction term: the weights are decoded straight to their signed values
//   Q4_0: q - 8 in -8..7,   Q5_0: q - 16 in -16..15,   Q8_0: q as stored,
// and a block's product is two sdots (|lane| <= 8 * 128 * 128: exact).
//   y += float(int32 lanes) * d_w * d_a   per block; integer sums exact, as the reference.
#include <arm_neon.h>

#include <cstring>

#include "kernels/gemm.h"
#include "kernels/tile_driver.h"
#include "tensor/blocks.h"

namespace thinkmesh::kernels {
namespace {

inline float f16(uint16_t h) {
  return vgetq_lane_f32(vcvt_f32_f16(vreinterpret_f16_u16(vdup_n_u16(h))), 0);
}

// A block's 32 signed values: v[0] = values 0..15, v[1] = values 16..31.
struct Values32 {
  int8x16_t v[2];
};

// 16 bytes of nibbles: qs[j] holds value j (low nibble) and j+16 (high), both 0..15.
inline Values32 unpack_nibbles(const uint8_t* qs) {
  const uint8x16_t q = vld1q_u8(qs);
  return {
      {vreinterpretq_s8_u8(vandq_u8(q, vdupq_n_u8(0x0F))), vreinterpretq_s8_u8(vshrq_n_u8(q, 4))}};
}

// Bits 8h..8h+15 of `bits` -> 16 bytes, 0x10 where the bit is set (byte j <- bit 8h + j).
inline uint8x16_t bits_to_0x10(uint32_t bits, int h) {
  static const uint8_t kBit[16] = {1, 2, 4, 8, 16, 32, 64, 128, 1, 2, 4, 8, 16, 32, 64, 128};
  const uint8x16_t rep = vcombine_u8(vdup_n_u8(static_cast<uint8_t>(bits >> (16 * h))),
                                     vdup_n_u8(static_cast<uint8_t>(bits >> (16 * h + 8))));
  return vandq_u8(vtstq_u8(rep, vld1q_u8(kBit)), vdupq_n_u8(0x10));
}

struct Q4_0 {
  using Block = block_q4_0;
  static Values32 weights(const Block& x) {
    Values32 w = unpack_nibbles(x.qs);
    const int8x16_t eight = vdupq_n_s8(8);
    w.v[0] = vsubq_s8(w.v[0], eight);
    w.v[1] = vsubq_s8(w.v[1], eight);
    return w;
  }
};

struct Q5_0 {
  using Block = block_q5_0;
  static Values32 weights(const Block& x) {
    uint32_t h;
    std::memcpy(&h, x.qh, 4);
    Values32 w = unpack_nibbles(x.qs);
    const int8x16_t sixteen = vdupq_n_s8(16);
    for (int k = 0; k < 2; ++k) {
      const int8x16_t q = vorrq_s8(w.v[k], vreinterpretq_s8_u8(bits_to_0x10(h, k)));
      w.v[k] = vsubq_s8(q, sixteen);
    }
    return w;
  }
};

struct Q8_0 {
  using Block = block_q8_0;
  static Values32 weights(const Block& x) { return {{vld1q_s8(x.qs), vld1q_s8(x.qs + 16)}}; }
};

template <class D>
struct BlockKernel {
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
    float32x4_t acc[R][T];
    for (int j = 0; j < R; ++j)
      for (int i = 0; i < T; ++i) acc[j][i] = vdupq_n_f32(0.0f);
    const int32x4_t zero = vdupq_n_s32(0);

    for (int64_t b = 0; b < nb; ++b) {
      int8x16_t a0[T], a1[T];
      float da[T];
      for (int i = 0; i < T; ++i) {
        a0[i] = vld1q_s8(y[i][b].qs);
        a1[i] = vld1q_s8(y[i][b].qs + 16);
        da[i] = f16(y[i][b].d);
      }
      for (int j = 0; j < R; ++j) {
        const Values32 w = D::weights(x[j][b]);
        const float dw = f16(x[j][b].d);
        for (int i = 0; i < T; ++i) {
          const int32x4_t isum = vdotq_s32(vdotq_s32(zero, w.v[0], a0[i]), w.v[1], a1[i]);
          acc[j][i] = vfmaq_n_f32(acc[j][i], vcvtq_f32_s32(isum), dw * da[i]);
        }
      }
    }
    for (int i = 0; i < T; ++i) {
      float* out = p.y + (t + i) * p.y_stride + r;
      for (int j = 0; j < R; ++j) out[j] = vaddvq_f32(acc[j][i]);
    }
  }
};

void gemm_q4_0(const GemmProblem& p, int64_t r0, int64_t r1) {
  run_tiles<BlockKernel<Q4_0>>(p, r0, r1);
}
void gemm_q5_0(const GemmProblem& p, int64_t r0, int64_t r1) {
  run_tiles<BlockKernel<Q5_0>>(p, r0, r1);
}
void gemm_q8_0(const GemmProblem& p, int64_t r0, int64_t r1) {
  run_tiles<BlockKernel<Q8_0>>(p, r0, r1);
}

}  // namespace

GemmKernel find_gemm_neon_q32(TensorType w) {
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
