// Scalar element-wise operations and their dispatch (see elementwise.h).
#include "kernels/elementwise.h"

#include <cmath>

#include "thinkmesh/half.h"

namespace thinkmesh::kernels {
namespace {

bool use_avx2(Isa isa) {
#if defined(THINKMESH_HAVE_AVX2_KERNELS)
  return isa == Isa::avx2 || isa == Isa::avx512 || isa == Isa::amx;
#else
  (void)isa;
  return false;
#endif
}

}  // namespace

void rms_norm(Isa isa, const float* x, const float* weight, float eps, int64_t n, float* y) {
#if defined(THINKMESH_HAVE_AVX2_KERNELS)
  if (use_avx2(isa)) return rms_norm_avx2(x, weight, eps, n, y);
#endif
  (void)use_avx2;
  double sum = 0.0;
  for (int64_t i = 0; i < n; ++i) sum += static_cast<double>(x[i]) * x[i];
  const float mean = static_cast<float>(sum / static_cast<double>(n));
  const float scale = 1.0f / std::sqrt(mean + eps);
  for (int64_t i = 0; i < n; ++i) y[i] = (x[i] * scale) * weight[i];
}

void swiglu(Isa isa, float* x, const float* up, int64_t n) {
#if defined(THINKMESH_HAVE_AVX2_KERNELS)
  if (use_avx2(isa)) return swiglu_avx2(x, up, n);
#endif
  for (int64_t i = 0; i < n; ++i) x[i] = x[i] / (1.0f + std::exp(-x[i])) * up[i];
}

void from_f16(Isa isa, const uint16_t* x, float* y, int64_t n) {
#if defined(THINKMESH_HAVE_AVX2_KERNELS)
  if (use_avx2(isa)) return from_f16_avx2(x, y, n);
#endif
  for (int64_t i = 0; i < n; ++i) y[i] = fp16_to_fp32(x[i]);
}

}  // namespace thinkmesh::kernels
