// Reference quantizers of the 32-value block types (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0), reproducing
// ggml's quantize_row_*_ref (llama.cpp c392e50) byte for byte: the same scale choice, the same
// float expressions in the same order, the same truncating conversions (x + 8.5 → int8 rather
// than a rounding call) and the same F16 rounding of the scales.
#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstring>

#include "tensor/quantize_internal.h"
#include "thinkmesh/half.h"

namespace thinkmesh::detail {
namespace {

// The signed value of largest magnitude (the first one on ties), as ggml's Q4_0/Q5_0 pick it.
float signed_absmax(const float* x, int n) {
  float amax = 0.0f, max = 0.0f;
  for (int j = 0; j < n; ++j) {
    if (amax < std::fabs(x[j])) {
      amax = std::fabs(x[j]);
      max = x[j];
    }
  }
  return max;
}

void min_max(const float* x, int n, float& min, float& max) {
  min = FLT_MAX;
  max = -FLT_MAX;
  for (int j = 0; j < n; ++j) {
    if (x[j] < min) min = x[j];
    if (x[j] > max) max = x[j];
  }
}

// (int8_t)(v) as compiled C does it, then MIN(limit, ·), then stored in a byte.
uint8_t clamp_truncated(float v, int limit) {
  const int q = static_cast<int8_t>(truncate_to_int(v));
  return static_cast<uint8_t>(std::min(limit, q));
}

}  // namespace

// Q4_0: d = max / -8 where max is the signed value of largest magnitude, so that value maps to
// q = 0 exactly and the others to q = trunc(x/d + 8.5) capped at 15.
void quantize_q4_0(const float* x, block_q4_0* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, x += QK4_0) {
    const float d = signed_absmax(x, QK4_0) / -8;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    y[i].d = fp32_to_fp16(d);
    for (int j = 0; j < QK4_0 / 2; ++j) {
      const uint8_t lo = clamp_truncated(x[j] * id + 8.5f, 15);
      const uint8_t hi = clamp_truncated(x[j + QK4_0 / 2] * id + 8.5f, 15);
      y[i].qs[j] = static_cast<uint8_t>(lo | (hi << 4));
    }
  }
}

// Q4_1: d = (max - min) / 15, m = min; q = trunc((x - min)/d + 0.5) capped at 15.
void quantize_q4_1(const float* x, block_q4_1* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, x += QK4_1) {
    float min, max;
    min_max(x, QK4_1, min, max);
    const float d = (max - min) / 15;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    y[i].d = fp32_to_fp16(d);
    y[i].m = fp32_to_fp16(min);
    for (int j = 0; j < QK4_1 / 2; ++j) {
      const uint8_t lo = clamp_truncated((x[j] - min) * id + 0.5f, 15);
      const uint8_t hi = clamp_truncated((x[j + QK4_1 / 2] - min) * id + 0.5f, 15);
      y[i].qs[j] = static_cast<uint8_t>(lo | (hi << 4));
    }
  }
}

// Q5_0: as Q4_0 with d = max / -16, q capped at 31; bit 4 of value j goes to bit j of qh.
void quantize_q5_0(const float* x, block_q5_0* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, x += QK5_0) {
    const float d = signed_absmax(x, QK5_0) / -16;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    y[i].d = fp32_to_fp16(d);
    uint32_t qh = 0;
    for (int j = 0; j < QK5_0 / 2; ++j) {
      const uint8_t q0 = clamp_truncated(x[j] * id + 16.5f, 31);
      const uint8_t q1 = clamp_truncated(x[j + QK5_0 / 2] * id + 16.5f, 31);
      y[i].qs[j] = static_cast<uint8_t>((q0 & 0x0F) | ((q1 & 0x0F) << 4));
      qh |= ((q0 & 0x10u) >> 4) << j;
      qh |= ((q1 & 0x10u) >> 4) << (j + QK5_0 / 2);
    }
    std::memcpy(y[i].qh, &qh, sizeof qh);
  }
}

// Q5_1: as Q4_1 with d = (max - min) / 31; no cap (ggml converts straight to uint8).
void quantize_q5_1(const float* x, block_q5_1* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, x += QK5_1) {
    float min, max;
    min_max(x, QK5_1, min, max);
    const float d = (max - min) / 31;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    y[i].d = fp32_to_fp16(d);
    y[i].m = fp32_to_fp16(min);
    uint32_t qh = 0;
    for (int j = 0; j < QK5_1 / 2; ++j) {
      const auto q0 = static_cast<uint8_t>(truncate_to_int((x[j] - min) * id + 0.5f));
      const auto q1 = static_cast<uint8_t>(truncate_to_int((x[j + QK5_1 / 2] - min) * id + 0.5f));
      y[i].qs[j] = static_cast<uint8_t>((q0 & 0x0F) | ((q1 & 0x0F) << 4));
      qh |= ((q0 & 0x10u) >> 4) << j;
      qh |= ((q1 & 0x10u) >> 4) << (j + QK5_1 / 2);
    }
    std::memcpy(y[i].qh, &qh, sizeof qh);
  }
}

// Q8_0: d = amax / 127, q = roundf(x / d) (half away from zero), computed as x * (1/d).
void quantize_q8_0(const float* x, block_q8_0* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, x += QK8_0) {
    float amax = 0.0f;
    for (int j = 0; j < QK8_0; ++j) {
      const float ax = std::fabs(x[j]);
      amax = amax > ax ? amax : ax;  // ggml's MAX(): a NaN replaces the running max
    }
    const float d = amax / 127;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    y[i].d = fp32_to_fp16(d);
    for (int j = 0; j < QK8_0; ++j)
      y[i].qs[j] = static_cast<int8_t>(truncate_to_int(std::round(x[j] * id)));
  }
}

}  // namespace thinkmesh::detail
