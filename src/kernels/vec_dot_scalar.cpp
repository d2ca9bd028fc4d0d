// Scalar reference kernels: activation quantization and weight·activation dot products, written
// as ggml's scalar (non-SIMD) vec_dot paths at llama.cpp c392e50: integer sums inside a block,
// then float scaling in the same order, accumulated in the same order (the k-quant kernels keep
// ggml's eight float lanes, summed at the end). Compiled with -ffp-contract=off.
#include "kernels/vec_dot.h"

#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "tensor/blocks.h"
#include "thinkmesh/error.h"
#include "thinkmesh/half.h"

namespace thinkmesh::kernels {
namespace {

[[noreturn]] void throw_no_kernel(TensorType w) {
  throw Error(ErrorKind::unsupported,
              "no dot-product kernel for weight type " + std::string(name(w)));
}

// x86's _mm256_round_ps(nearest) + _mm256_cvtps_epi32 + saturating packs to int8.
int8_t round_even_saturate_i8(float v) {
  if (std::isnan(v)) return -128;
  const float r = std::nearbyint(v);
  if (r >= 127.f) return 127;
  if (r <= -128.f) return -128;
  return static_cast<int8_t>(r);
}

int32_t round_even_i32(float v) {
  if (!(v > -2147483904.f && v < 2147483648.f)) return INT32_MIN;
  return static_cast<int32_t>(std::nearbyint(v));
}

// Q8_0/Q8_1 activations as ggml's AVX/AVX2 quantize_row_q8_0/q8_1: d = amax/127 (stored F16),
// q = round_half_even(x * (127/amax)). Q8_1 also stores s = F16(d * sum(q)).
template <class Block, bool kWithSum>
void quantize_q8_x86(const float* x, Block* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, x += QK8_0) {
    float amax = 0.0f;
    for (int j = 0; j < QK8_0; ++j) {
      const float ax = std::fabs(x[j]);
      amax = ax > amax ? ax : amax;
    }
    const float d = amax / 127.f;
    y[i].d = fp32_to_fp16(d);
    const float id = amax != 0.0f ? 127.f / amax : 0.0f;
    int32_t sum = 0;
    for (int j = 0; j < QK8_0; ++j) {
      const float v = x[j] * id;
      sum += round_even_i32(v);
      y[i].qs[j] = round_even_saturate_i8(v);
    }
    if constexpr (kWithSum) y[i].s = fp32_to_fp16(d * static_cast<float>(sum));
  }
}

// --- F32 / F16 / BF16: float products, double accumulator (ggml's scalar ggml_vec_dot_*). ---

float dot_f32(int64_t n, const float* x, const float* y) {
  double sum = 0.0;
  for (int64_t i = 0; i < n; ++i) sum += static_cast<double>(x[i] * y[i]);
  return static_cast<float>(sum);
}

template <float (*kToF32)(uint16_t)>
float dot_half(int64_t n, const uint16_t* x, const uint16_t* y) {
  double sum = 0.0;
  for (int64_t i = 0; i < n; ++i) sum += static_cast<double>(kToF32(x[i]) * kToF32(y[i]));
  return static_cast<float>(sum);
}

// --- 32-value blocks. ---

float dot_q4_0(int64_t nb, const block_q4_0* x, const block_q8_0* y) {
  float sumf = 0;
  for (int64_t ib = 0; ib < nb; ++ib) {
    int sumi0 = 0, sumi1 = 0;
    for (int j = 0; j < QK8_0 / 2; ++j) {
      sumi0 += ((x[ib].qs[j] & 0x0F) - 8) * y[ib].qs[j];
      sumi1 += ((x[ib].qs[j] >> 4) - 8) * y[ib].qs[j + QK8_0 / 2];
    }
    const int sumi = sumi0 + sumi1;
    sumf += static_cast<float>(sumi) * fp16_to_fp32(x[ib].d) * fp16_to_fp32(y[ib].d);
  }
  return sumf;
}

float dot_q4_1(int64_t nb, const block_q4_1* x, const block_q8_1* y) {
  float sumf = 0;
  for (int64_t ib = 0; ib < nb; ++ib) {
    int sumi0 = 0, sumi1 = 0;
    for (int j = 0; j < QK8_0 / 2; ++j) {
      sumi0 += (x[ib].qs[j] & 0x0F) * y[ib].qs[j];
      sumi1 += (x[ib].qs[j] >> 4) * y[ib].qs[j + QK8_0 / 2];
    }
    const int sumi = sumi0 + sumi1;
    sumf += (fp16_to_fp32(x[ib].d) * fp16_to_fp32(y[ib].d)) * static_cast<float>(sumi) +
            fp16_to_fp32(x[ib].m) * fp16_to_fp32(y[ib].s);
  }
  return sumf;
}

uint32_t load_qh(const uint8_t* qh) {
  uint32_t v;
  std::memcpy(&v, qh, sizeof v);
  return v;
}

float dot_q5_0(int64_t nb, const block_q5_0* x, const block_q8_0* y) {
  float sumf = 0;
  for (int64_t ib = 0; ib < nb; ++ib) {
    const uint32_t qh = load_qh(x[ib].qh);
    int sumi0 = 0, sumi1 = 0;
    for (int j = 0; j < QK8_0 / 2; ++j) {
      const int x0 = ((x[ib].qs[j] & 0x0F) | static_cast<int>(((qh >> j) & 1u) << 4)) - 16;
      const int x1 = ((x[ib].qs[j] >> 4) | static_cast<int>(((qh >> (j + 16)) & 1u) << 4)) - 16;
      sumi0 += x0 * y[ib].qs[j];
      sumi1 += x1 * y[ib].qs[j + QK8_0 / 2];
    }
    const int sumi = sumi0 + sumi1;
    sumf += (fp16_to_fp32(x[ib].d) * fp16_to_fp32(y[ib].d)) * static_cast<float>(sumi);
  }
  return sumf;
}

float dot_q5_1(int64_t nb, const block_q5_1* x, const block_q8_1* y) {
  float sumf = 0;
  for (int64_t ib = 0; ib < nb; ++ib) {
    const uint32_t qh = load_qh(x[ib].qh);
    int sumi0 = 0, sumi1 = 0;
    for (int j = 0; j < QK8_0 / 2; ++j) {
      const int x0 = (x[ib].qs[j] & 0x0F) | static_cast<int>(((qh >> j) & 1u) << 4);
      const int x1 = (x[ib].qs[j] >> 4) | static_cast<int>(((qh >> (j + 16)) & 1u) << 4);
      sumi0 += x0 * y[ib].qs[j];
      sumi1 += x1 * y[ib].qs[j + QK8_0 / 2];
    }
    const int sumi = sumi0 + sumi1;
    sumf += (fp16_to_fp32(x[ib].d) * fp16_to_fp32(y[ib].d)) * static_cast<float>(sumi) +
            fp16_to_fp32(x[ib].m) * fp16_to_fp32(y[ib].s);
  }
  return sumf;
}

float dot_q8_0(int64_t nb, const block_q8_0* x, const block_q8_0* y) {
  float sumf = 0;
  for (int64_t ib = 0; ib < nb; ++ib) {
    int sumi = 0;
    for (int j = 0; j < QK8_0; ++j) sumi += x[ib].qs[j] * y[ib].qs[j];
    sumf += static_cast<float>(sumi) * (fp16_to_fp32(x[ib].d) * fp16_to_fp32(y[ib].d));
  }
  return sumf;
}

// --- k-quants against Q8_K. ---

float dot_q2_K(int64_t nb, const block_q2_K* x, const block_q8_K* y) {
  float sumf = 0;
  for (int64_t i = 0; i < nb; ++i) {
    const uint8_t* q2 = x[i].qs;
    const int8_t* q8 = y[i].qs;
    const uint8_t* sc = x[i].scales;
    int summs = 0;  // sum over groups of min level * sum of the group's activations
    for (int j = 0; j < 16; ++j) summs += y[i].bsums[j] * (sc[j] >> 4);
    const float dall = y[i].d * fp16_to_fp32(x[i].d);
    const float dmin = y[i].d * fp16_to_fp32(x[i].dmin);
    int isum = 0, is = 0;
    for (int half = 0; half < QK_K / 128; ++half, q2 += 32) {
      for (int shift = 0; shift < 8; shift += 2, q8 += 32) {
        int d = sc[is++] & 0xF;
        int isuml = 0;
        for (int l = 0; l < 16; ++l) isuml += q8[l] * ((q2[l] >> shift) & 3);
        isum += d * isuml;
        d = sc[is++] & 0xF;
        isuml = 0;
        for (int l = 16; l < 32; ++l) isuml += q8[l] * ((q2[l] >> shift) & 3);
        isum += d * isuml;
      }
    }
    sumf += dall * static_cast<float>(isum) - dmin * static_cast<float>(summs);
  }
  return sumf;
}

// ggml's scalar k-quant kernels accumulate group products into 8 int32 lanes (element index
// mod 8) per super-block, scale the lanes into 8 float sums, and add those at the very end.
struct Lanes {
  int32_t aux32[8];
  void clear() { std::memset(aux32, 0, sizeof aux32); }
  // Adds scale * q8[l] * a[l] for 8 consecutive values.
  void add8(int scale, const int8_t* q8, const int8_t* a) {
    for (int l = 0; l < 8; ++l) aux32[l] += scale * static_cast<int16_t>(q8[l] * a[l]);
  }
};

// Unpacks Q3_K's 16 biased six-bit scales (layout in tensor/dequantize.cpp), minus 32.
void q3_K_scales(const uint8_t* packed, int* scales) {
  for (int g = 0; g < 16; ++g) {
    const int low = g < 8 ? (packed[g] & 0xF) : (packed[g - 8] >> 4);
    const int high = (packed[8 + g % 4] >> (2 * (g / 4))) & 3;
    scales[g] = (low | (high << 4)) - 32;
  }
}

float dot_q3_K(int64_t nb, const block_q3_K* x, const block_q8_K* y) {
  float sums[8] = {};
  int8_t a[QK_K];
  Lanes lanes;
  for (int64_t i = 0; i < nb; ++i) {
    const uint8_t* q3 = x[i].qs;
    const uint8_t* hm = x[i].hmask;
    uint8_t m = 1;
    int8_t* ap = a;
    for (int half = 0; half < QK_K / 128; ++half, q3 += 32) {
      for (int shift = 0; shift < 8; shift += 2, ap += 32, m = static_cast<uint8_t>(m << 1))
        for (int l = 0; l < 32; ++l)
          ap[l] = static_cast<int8_t>(((q3[l] >> shift) & 3) - ((hm[l] & m) ? 0 : 4));
    }
    int scales[16];
    q3_K_scales(x[i].scales, scales);
    lanes.clear();
    const int8_t* q8 = y[i].qs;
    for (int j = 0; j < QK_K / 16; ++j) {
      lanes.add8(scales[j], q8 + 16 * j, a + 16 * j);
      lanes.add8(scales[j], q8 + 16 * j + 8, a + 16 * j + 8);
    }
    const float d = fp16_to_fp32(x[i].d) * y[i].d;
    for (int l = 0; l < 8; ++l) sums[l] += d * static_cast<float>(lanes.aux32[l]);
  }
  float sumf = 0;
  for (float s : sums) sumf += s;
  return sumf;
}

// The 8 six-bit scales and mins of a Q4_K/Q5_K block (layout in tensor/dequantize.cpp).
void k4_scales_mins(const uint8_t* q, int* scales, int* mins) {
  for (int j = 0; j < 8; ++j) {
    if (j < 4) {
      scales[j] = q[j] & 63;
      mins[j] = q[j + 4] & 63;
    } else {
      scales[j] = (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4);
      mins[j] = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
    }
  }
}

// Shared tail of Q4_K and Q5_K: `a` holds the 256 unsigned levels of super-block i.
template <class Block>
void accumulate_k4(const Block& x, const block_q8_K& y, const int8_t* a, float* sums, float& sumf) {
  int scales[8], mins[8];
  k4_scales_mins(x.scales, scales, mins);
  int sumi = 0;
  for (int j = 0; j < QK_K / 16; ++j) sumi += y.bsums[j] * mins[j / 2];
  Lanes lanes;
  lanes.clear();
  for (int j = 0; j < QK_K / 32; ++j)
    for (int k = 0; k < 4; ++k) lanes.add8(scales[j], y.qs + 32 * j + 8 * k, a + 32 * j + 8 * k);
  const float d = fp16_to_fp32(x.d) * y.d;
  for (int l = 0; l < 8; ++l) sums[l] += d * static_cast<float>(lanes.aux32[l]);
  const float dmin = fp16_to_fp32(x.dmin) * y.d;
  sumf -= dmin * static_cast<float>(sumi);
}

float dot_q4_K(int64_t nb, const block_q4_K* x, const block_q8_K* y) {
  float sums[8] = {}, sumf = 0;
  int8_t a[QK_K];
  for (int64_t i = 0; i < nb; ++i) {
    const uint8_t* q4 = x[i].qs;
    for (int c = 0; c < QK_K / 64; ++c, q4 += 32) {
      for (int l = 0; l < 32; ++l) a[64 * c + l] = static_cast<int8_t>(q4[l] & 0xF);
      for (int l = 0; l < 32; ++l) a[64 * c + 32 + l] = static_cast<int8_t>(q4[l] >> 4);
    }
    accumulate_k4(x[i], y[i], a, sums, sumf);
  }
  for (float s : sums) sumf += s;
  return sumf;
}

float dot_q5_K(int64_t nb, const block_q5_K* x, const block_q8_K* y) {
  float sums[8] = {}, sumf = 0;
  int8_t a[QK_K];
  for (int64_t i = 0; i < nb; ++i) {
    const uint8_t* q4 = x[i].qs;
    const uint8_t* hm = x[i].qh;
    for (int c = 0; c < QK_K / 64; ++c, q4 += 32) {
      const auto m1 = static_cast<uint8_t>(1u << (2 * c)), m2 = static_cast<uint8_t>(2u << (2 * c));
      for (int l = 0; l < 32; ++l)
        a[64 * c + l] = static_cast<int8_t>((q4[l] & 0xF) + ((hm[l] & m1) ? 16 : 0));
      for (int l = 0; l < 32; ++l)
        a[64 * c + 32 + l] = static_cast<int8_t>((q4[l] >> 4) + ((hm[l] & m2) ? 16 : 0));
    }
    accumulate_k4(x[i], y[i], a, sums, sumf);
  }
  for (float s : sums) sumf += s;
  return sumf;
}

float dot_q6_K(int64_t nb, const block_q6_K* x, const block_q8_K* y) {
  float sums[8] = {};
  int8_t a[QK_K];
  Lanes lanes;
  for (int64_t i = 0; i < nb; ++i) {
    const uint8_t* ql = x[i].ql;
    const uint8_t* qh = x[i].qh;
    for (int half = 0; half < QK_K / 128; ++half, ql += 64, qh += 32) {
      int8_t* ap = a + 128 * half;
      for (int l = 0; l < 32; ++l) {
        ap[l] = static_cast<int8_t>(((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32);
        ap[l + 32] = static_cast<int8_t>(((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32);
        ap[l + 64] = static_cast<int8_t>(((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32);
        ap[l + 96] = static_cast<int8_t>(((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32);
      }
    }
    lanes.clear();
    for (int j = 0; j < QK_K / 16; ++j) {
      lanes.add8(x[i].scales[j], y[i].qs + 16 * j, a + 16 * j);
      lanes.add8(x[i].scales[j], y[i].qs + 16 * j + 8, a + 16 * j + 8);
    }
    const float d = fp16_to_fp32(x[i].d) * y[i].d;
    for (int l = 0; l < 8; ++l) sums[l] += d * static_cast<float>(lanes.aux32[l]);
  }
  float sumf = 0;
  for (float s : sums) sumf += s;
  return sumf;
}

template <class Block>
const Block* as(const void* p) {
  return static_cast<const Block*>(p);
}

}  // namespace

TensorType activation_type(TensorType w) {
  switch (w) {
    case TensorType::F32:
      return TensorType::F32;
    case TensorType::F16:
      return TensorType::F16;
    case TensorType::BF16:
      return TensorType::BF16;
    case TensorType::Q4_0:
    case TensorType::Q5_0:
    case TensorType::Q8_0:
      return TensorType::Q8_0;
    case TensorType::Q4_1:
    case TensorType::Q5_1:
      return TensorType::Q8_1;
    case TensorType::Q2_K:
    case TensorType::Q3_K:
    case TensorType::Q4_K:
    case TensorType::Q5_K:
    case TensorType::Q6_K:
      return TensorType::Q8_K;
    default:
      throw_no_kernel(w);
  }
}

bool has_vec_dot(TensorType w) {
  switch (w) {
    case TensorType::F32:
    case TensorType::F16:
    case TensorType::BF16:
    case TensorType::Q4_0:
    case TensorType::Q4_1:
    case TensorType::Q5_0:
    case TensorType::Q5_1:
    case TensorType::Q8_0:
    case TensorType::Q2_K:
    case TensorType::Q3_K:
    case TensorType::Q4_K:
    case TensorType::Q5_K:
    case TensorType::Q6_K:
      return true;
    default:
      return false;
  }
}

void quantize_activations(TensorType act_type, const float* x, void* dst, int64_t n) {
  const int64_t nb = static_cast<int64_t>(row_bytes(act_type, n) / traits(act_type).type_size);
  switch (act_type) {
    case TensorType::Q8_0:
      return quantize_q8_x86<block_q8_0, false>(x, static_cast<block_q8_0*>(dst), nb);
    case TensorType::Q8_1:
      return quantize_q8_x86<block_q8_1, true>(x, static_cast<block_q8_1*>(dst), nb);
    case TensorType::F32:
    case TensorType::F16:
    case TensorType::BF16:
    case TensorType::Q8_K:
      return quantize_row_reference(act_type, x, dst, n);
    default:
      throw Error(ErrorKind::invalid_argument,
                  std::string(name(act_type)) + " is not an activation type");
  }
}

float vec_dot(TensorType w, int64_t n, const void* w_row, const void* act_row) {
  if (!has_vec_dot(w)) throw_no_kernel(w);
  const int64_t nb = static_cast<int64_t>(row_bytes(w, n) / traits(w).type_size);
  switch (w) {
    case TensorType::F32:
      return dot_f32(n, as<float>(w_row), as<float>(act_row));
    case TensorType::F16:
      return dot_half<fp16_to_fp32>(n, as<uint16_t>(w_row), as<uint16_t>(act_row));
    case TensorType::BF16:
      return dot_half<bf16_to_fp32>(n, as<uint16_t>(w_row), as<uint16_t>(act_row));
    case TensorType::Q4_0:
      return dot_q4_0(nb, as<block_q4_0>(w_row), as<block_q8_0>(act_row));
    case TensorType::Q4_1:
      return dot_q4_1(nb, as<block_q4_1>(w_row), as<block_q8_1>(act_row));
    case TensorType::Q5_0:
      return dot_q5_0(nb, as<block_q5_0>(w_row), as<block_q8_0>(act_row));
    case TensorType::Q5_1:
      return dot_q5_1(nb, as<block_q5_1>(w_row), as<block_q8_1>(act_row));
    case TensorType::Q8_0:
      return dot_q8_0(nb, as<block_q8_0>(w_row), as<block_q8_0>(act_row));
    case TensorType::Q2_K:
      return dot_q2_K(nb, as<block_q2_K>(w_row), as<block_q8_K>(act_row));
    case TensorType::Q3_K:
      return dot_q3_K(nb, as<block_q3_K>(w_row), as<block_q8_K>(act_row));
    case TensorType::Q4_K:
      return dot_q4_K(nb, as<block_q4_K>(w_row), as<block_q8_K>(act_row));
    case TensorType::Q5_K:
      return dot_q5_K(nb, as<block_q5_K>(w_row), as<block_q8_K>(act_row));
    case TensorType::Q6_K:
      return dot_q6_K(nb, as<block_q6_K>(w_row), as<block_q8_K>(act_row));
    default:
      throw_no_kernel(w);
  }
}

void matvec_reference(TensorType w, const void* weights, int64_t rows, int64_t n, const float* x,
                      float* y) {
  if (!has_vec_dot(w)) throw_no_kernel(w);
  if (rows < 0)
    throw Error(ErrorKind::invalid_argument, "matvec with " + std::to_string(rows) + " rows");
  const size_t w_row_bytes = row_bytes(w, n);
  const TensorType act = activation_type(w);
  std::vector<uint8_t> act_row(row_bytes(act, n));
  quantize_activations(act, x, act_row.data(), n);
  const auto* base = static_cast<const uint8_t*>(weights);
  for (int64_t r = 0; r < rows; ++r)
    y[r] = vec_dot(w, n, base + static_cast<size_t>(r) * w_row_bytes, act_row.data());
}

}  // namespace thinkmesh::kernels
