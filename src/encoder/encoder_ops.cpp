// Encoder element-wise operations (see encoder_ops.h).
#include "encoder/encoder_ops.h"

#include <cmath>
#include <memory>

#include "thinkmesh/half.h"

namespace thinkmesh::encoder {
namespace {

constexpr float kGeluCoefA = 0.044715f;
constexpr float kSqrt2OverPi = 0.79788456080286535587989211986876f;

// table[h] = F16(gelu_f32(F32(h))) for every F16 bit pattern h, as ggml_cpu_init fills
// ggml_table_gelu_f16.
const uint16_t* gelu_f16_table() {
  static const std::unique_ptr<uint16_t[]> table = [] {
    auto t = std::make_unique<uint16_t[]>(1 << 16);
    for (uint32_t h = 0; h < (1u << 16); ++h) {
      t[h] = fp32_to_fp16(gelu_f32(fp16_to_fp32(static_cast<uint16_t>(h))));
    }
    return t;
  }();
  return table.get();
}

}  // namespace

float gelu_f32(float x) {
  return 0.5f * x * (1.0f + std::tanh(kSqrt2OverPi * x * (1.0f + kGeluCoefA * x * x)));
}

float gelu_table(float x) {
  if (x <= -10.0f) return 0.0f;
  if (x >= 10.0f) return x;
  return fp16_to_fp32(gelu_f16_table()[fp32_to_fp16(x)]);
}

void gelu_table(float* x, int64_t n) {
  const uint16_t* table = gelu_f16_table();
  for (int64_t i = 0; i < n; ++i) {
    const float v = x[i];
    x[i] = v <= -10.0f ? 0.0f : v >= 10.0f ? v : fp16_to_fp32(table[fp32_to_fp16(v)]);
  }
}

void layer_norm(const float* x, const float* w, const float* b, float eps, int64_t n, float* y) {
  double sum = 0.0;
  for (int64_t i = 0; i < n; ++i) sum += static_cast<double>(x[i]);
  const auto mean = static_cast<float>(sum / static_cast<double>(n));
  double sum2 = 0.0;
  for (int64_t i = 0; i < n; ++i) {
    const float v = x[i] - mean;
    y[i] = v;
    sum2 += static_cast<double>(v * v);
  }
  const auto variance = static_cast<float>(sum2 / static_cast<double>(n));
  const float scale = 1.0f / std::sqrt(variance + eps);
  for (int64_t i = 0; i < n; ++i) y[i] = (y[i] * scale) * w[i] + b[i];
}

}  // namespace thinkmesh::encoder
