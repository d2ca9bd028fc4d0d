// Reference dequantizers: one row of blocks → F32, bit-exact with ggml's scalar
// dequantize_row_* (llama.cpp c392e50, ggml-quants.c). Every product is written in ggml's order
// (e.g. Q6_K is (d * scale) * q, not d * (scale * q)) and this file is compiled with
// -ffp-contract=off, so no multiply-add is fused and results match bit for bit.
#include <cstring>
#include <string>

#include "tensor/blocks.h"
#include "thinkmesh/error.h"
#include "thinkmesh/half.h"
#include "thinkmesh/tensor_type.h"

namespace thinkmesh {
namespace {

void dequantize_q4_0(const block_q4_0* x, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, y += QK4_0) {
    const float d = fp16_to_fp32(x[i].d);
    for (int j = 0; j < QK4_0 / 2; ++j) {
      const int lo = (x[i].qs[j] & 0x0F) - 8;
      const int hi = (x[i].qs[j] >> 4) - 8;
      y[j] = static_cast<float>(lo) * d;
      y[j + QK4_0 / 2] = static_cast<float>(hi) * d;
    }
  }
}

void dequantize_q4_1(const block_q4_1* x, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, y += QK4_1) {
    const float d = fp16_to_fp32(x[i].d);
    const float m = fp16_to_fp32(x[i].m);
    for (int j = 0; j < QK4_1 / 2; ++j) {
      y[j] = static_cast<float>(x[i].qs[j] & 0x0F) * d + m;
      y[j + QK4_1 / 2] = static_cast<float>(x[i].qs[j] >> 4) * d + m;
    }
  }
}

// Q5_0/Q5_1: bit j of the little-endian u32 qh is the 5th bit of value j (0..31).
uint32_t load_qh(const uint8_t* qh) {
  uint32_t v;
  std::memcpy(&v, qh, sizeof v);
  return v;
}

void dequantize_q5_0(const block_q5_0* x, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, y += QK5_0) {
    const float d = fp16_to_fp32(x[i].d);
    const uint32_t qh = load_qh(x[i].qh);
    for (int j = 0; j < QK5_0 / 2; ++j) {
      const int hi0 = static_cast<int>((qh >> j) & 1u) << 4;
      const int hi1 = static_cast<int>((qh >> (j + 16)) & 1u) << 4;
      const int q0 = ((x[i].qs[j] & 0x0F) | hi0) - 16;
      const int q1 = ((x[i].qs[j] >> 4) | hi1) - 16;
      y[j] = static_cast<float>(q0) * d;
      y[j + QK5_0 / 2] = static_cast<float>(q1) * d;
    }
  }
}

void dequantize_q5_1(const block_q5_1* x, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, y += QK5_1) {
    const float d = fp16_to_fp32(x[i].d);
    const float m = fp16_to_fp32(x[i].m);
    const uint32_t qh = load_qh(x[i].qh);
    for (int j = 0; j < QK5_1 / 2; ++j) {
      const int q0 = (x[i].qs[j] & 0x0F) | (static_cast<int>((qh >> j) & 1u) << 4);
      const int q1 = (x[i].qs[j] >> 4) | (static_cast<int>((qh >> (j + 16)) & 1u) << 4);
      y[j] = static_cast<float>(q0) * d + m;
      y[j + QK5_1 / 2] = static_cast<float>(q1) * d + m;
    }
  }
}

void dequantize_q8_0(const block_q8_0* x, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, y += QK8_0) {
    const float d = fp16_to_fp32(x[i].d);
    for (int j = 0; j < QK8_0; ++j) y[j] = static_cast<float>(x[i].qs[j]) * d;
  }
}

// Q2_K: 16 groups of 16. Byte l of each 32-byte half of qs holds, in its bit pairs 0..3, the
// values l, l+32, l+64, l+96 of that 128-value half. scales[g]: low nibble scale, high min.
void dequantize_q2_K(const block_q2_K* x, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i) {
    const float d = fp16_to_fp32(x[i].d);
    const float dmin = fp16_to_fp32(x[i].dmin);
    const uint8_t* q = x[i].qs;
    int group = 0;
    for (int half = 0; half < QK_K / 128; ++half, q += 32) {
      for (int shift = 0; shift < 8; shift += 2) {
        for (int sub = 0; sub < 2; ++sub) {  // bytes 0..15, then 16..31
          const uint8_t sc = x[i].scales[group++];
          const float dl = d * static_cast<float>(sc & 0xF);
          const float ml = dmin * static_cast<float>(sc >> 4);
          for (int l = 0; l < 16; ++l)
            *y++ = dl * static_cast<float>((q[16 * sub + l] >> shift) & 3) - ml;
        }
      }
    }
  }
}

// Q3_K's 16 six-bit scales (biased by 32) packed in 12 bytes: bytes 0..7 hold the low nibbles
// (scale g in byte g%8, low nibble for g<8, high nibble for g>=8); bytes 8..11 hold the top two
// bits (scale g in byte 8 + g%4, bit pair g/4).
void unpack_q3_K_scales(const uint8_t* packed, int8_t* scales) {
  for (int g = 0; g < 16; ++g) {
    const int low = g < 8 ? (packed[g] & 0xF) : (packed[g - 8] >> 4);
    const int high = (packed[8 + g % 4] >> (2 * (g / 4))) & 3;
    scales[g] = static_cast<int8_t>((low | (high << 4)) - 32);
  }
}

// Q3_K: 2 low bits laid out as Q2_K; the third bit of value v in 128-value half h, bit pair p
// (v = 128h + 32p + l, l < 32) is bit (4h + p) of hmask[l]. A set bit means q in 0..3, a clear
// bit means q - 4.
void dequantize_q3_K(const block_q3_K* x, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i) {
    const float d_all = fp16_to_fp32(x[i].d);
    int8_t scales[16];
    unpack_q3_K_scales(x[i].scales, scales);
    const uint8_t* q = x[i].qs;
    const uint8_t* hm = x[i].hmask;
    uint8_t m = 1;
    int group = 0;
    for (int half = 0; half < QK_K / 128; ++half, q += 32) {
      for (int shift = 0; shift < 8; shift += 2, m = static_cast<uint8_t>(m << 1)) {
        for (int sub = 0; sub < 2; ++sub) {
          const float dl = d_all * static_cast<float>(scales[group++]);
          for (int l = 16 * sub; l < 16 * sub + 16; ++l) {
            const int v = ((q[l] >> shift) & 3) - ((hm[l] & m) ? 0 : 4);
            *y++ = dl * static_cast<float>(v);
          }
        }
      }
    }
  }
}

// Q4_K/Q5_K: 8 six-bit (scale, min) pairs in 12 bytes. Pairs 0..3: low 6 bits of bytes j
// (scale) and j+4 (min). Pairs 4..7: low nibbles in byte j+4 (scale low, min high nibble),
// top 2 bits in the top bits of bytes j-4 (scale) and j (min).
void scale_min_k4(int j, const uint8_t* q, uint8_t& scale, uint8_t& min) {
  if (j < 4) {
    scale = q[j] & 63;
    min = q[j + 4] & 63;
  } else {
    scale = static_cast<uint8_t>((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4));
    min = static_cast<uint8_t>((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
  }
}

// Q4_K: 4 chunks of 64 values; chunk c uses qs[32c..32c+31]: low nibbles are values 64c+l,
// high nibbles 64c+32+l, with (scale, min) pairs 2c and 2c+1.
void dequantize_q4_K(const block_q4_K* x, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i) {
    const float d = fp16_to_fp32(x[i].d);
    const float dmin = fp16_to_fp32(x[i].dmin);
    const uint8_t* q = x[i].qs;
    for (int chunk = 0; chunk < QK_K / 64; ++chunk, q += 32) {
      uint8_t sc, mn;
      scale_min_k4(2 * chunk, x[i].scales, sc, mn);
      const float d1 = d * static_cast<float>(sc), m1 = dmin * static_cast<float>(mn);
      scale_min_k4(2 * chunk + 1, x[i].scales, sc, mn);
      const float d2 = d * static_cast<float>(sc), m2 = dmin * static_cast<float>(mn);
      for (int l = 0; l < 32; ++l) *y++ = d1 * static_cast<float>(q[l] & 0xF) - m1;
      for (int l = 0; l < 32; ++l) *y++ = d2 * static_cast<float>(q[l] >> 4) - m2;
    }
  }
}

// Q5_K: Q4_K plus a fifth bit: value 64c+l has it in bit 2c of qh[l], 64c+32+l in bit 2c+1.
void dequantize_q5_K(const block_q5_K* x, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i) {
    const float d = fp16_to_fp32(x[i].d);
    const float dmin = fp16_to_fp32(x[i].dmin);
    const uint8_t* ql = x[i].qs;
    const uint8_t* qh = x[i].qh;
    for (int chunk = 0; chunk < QK_K / 64; ++chunk, ql += 32) {
      const uint8_t u1 = static_cast<uint8_t>(1u << (2 * chunk));
      const uint8_t u2 = static_cast<uint8_t>(2u << (2 * chunk));
      uint8_t sc, mn;
      scale_min_k4(2 * chunk, x[i].scales, sc, mn);
      const float d1 = d * static_cast<float>(sc), m1 = dmin * static_cast<float>(mn);
      scale_min_k4(2 * chunk + 1, x[i].scales, sc, mn);
      const float d2 = d * static_cast<float>(sc), m2 = dmin * static_cast<float>(mn);
      for (int l = 0; l < 32; ++l)
        *y++ = d1 * static_cast<float>((ql[l] & 0xF) + ((qh[l] & u1) ? 16 : 0)) - m1;
      for (int l = 0; l < 32; ++l)
        *y++ = d2 * static_cast<float>((ql[l] >> 4) + ((qh[l] & u2) ? 16 : 0)) - m2;
    }
  }
}

// Q6_K: two halves of 128 values, each with 64 ql bytes and 32 qh bytes. For l < 32 the values
// l, l+32, l+64, l+96 of the half take the low nibble of ql[l], ql[l+32], the high nibble of
// ql[l], ql[l+32], and bit pairs 0, 1, 2, 3 of qh[l]. q is biased by 32; scale per 16 values.
void dequantize_q6_K(const block_q6_K* x, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i) {
    const float d = fp16_to_fp32(x[i].d);
    const uint8_t* ql = x[i].ql;
    const uint8_t* qh = x[i].qh;
    const int8_t* sc = x[i].scales;
    for (int half = 0; half < QK_K / 128; ++half, y += 128, ql += 64, qh += 32, sc += 8) {
      for (int l = 0; l < 32; ++l) {
        const int is = l / 16;
        const int q1 = ((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
        const int q2 = ((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
        const int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
        const int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
        y[l] = d * static_cast<float>(sc[is]) * static_cast<float>(q1);
        y[l + 32] = d * static_cast<float>(sc[is + 2]) * static_cast<float>(q2);
        y[l + 64] = d * static_cast<float>(sc[is + 4]) * static_cast<float>(q3);
        y[l + 96] = d * static_cast<float>(sc[is + 6]) * static_cast<float>(q4);
      }
    }
  }
}

void dequantize_q8_K(const block_q8_K* x, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i)
    for (int j = 0; j < QK_K; ++j) *y++ = x[i].d * static_cast<float>(x[i].qs[j]);
}

template <class Block>
const Block* blocks(const void* src) {
  return static_cast<const Block*>(src);
}

}  // namespace

void dequantize_row(TensorType type, const void* src, float* dst, int64_t n) {
  const auto& t = traits(type);
  if (!t.can_dequantize)
    throw Error(ErrorKind::unsupported, "no dequantizer for tensor type " + std::string(t.name));
  const int64_t nb = static_cast<int64_t>(row_bytes(type, n) / t.type_size);  // validates n
  switch (type) {
    case TensorType::F32:
      std::memcpy(dst, src, static_cast<size_t>(n) * sizeof(float));
      return;
    case TensorType::F16: {
      const auto* h = static_cast<const uint16_t*>(src);
      for (int64_t i = 0; i < n; ++i) dst[i] = fp16_to_fp32(h[i]);
      return;
    }
    case TensorType::BF16: {
      const auto* h = static_cast<const uint16_t*>(src);
      for (int64_t i = 0; i < n; ++i) dst[i] = bf16_to_fp32(h[i]);
      return;
    }
    case TensorType::Q4_0:
      return dequantize_q4_0(blocks<block_q4_0>(src), dst, nb);
    case TensorType::Q4_1:
      return dequantize_q4_1(blocks<block_q4_1>(src), dst, nb);
    case TensorType::Q5_0:
      return dequantize_q5_0(blocks<block_q5_0>(src), dst, nb);
    case TensorType::Q5_1:
      return dequantize_q5_1(blocks<block_q5_1>(src), dst, nb);
    case TensorType::Q8_0:
      return dequantize_q8_0(blocks<block_q8_0>(src), dst, nb);
    case TensorType::Q2_K:
      return dequantize_q2_K(blocks<block_q2_K>(src), dst, nb);
    case TensorType::Q3_K:
      return dequantize_q3_K(blocks<block_q3_K>(src), dst, nb);
    case TensorType::Q4_K:
      return dequantize_q4_K(blocks<block_q4_K>(src), dst, nb);
    case TensorType::Q5_K:
      return dequantize_q5_K(blocks<block_q5_K>(src), dst, nb);
    case TensorType::Q6_K:
      return dequantize_q6_K(blocks<block_q6_K>(src), dst, nb);
    case TensorType::Q8_K:
      return dequantize_q8_K(blocks<block_q8_K>(src), dst, nb);
    default:
      break;
  }
  throw Error(ErrorKind::internal,
              "tensor type " + std::string(t.name) + " is marked dequantizable but has no case");
}

}  // namespace thinkmesh
