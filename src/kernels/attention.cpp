// The reference attention of one head and the dispatch (see attention.h).
#include "kernels/attention.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "thinkmesh/half.h"

namespace thinkmesh::kernels {
namespace {

float element(const void* base, bool f16, size_t i) {
  return f16 ? fp16_to_fp32(static_cast<const uint16_t*>(base)[i])
             : static_cast<const float*>(base)[i];
}

}  // namespace

void attend_reference(const AttentionRows& r, const float* q, float scale, float* score,
                      float* out) {
  const int32_t hd = r.head_dim;
  thread_local std::vector<float> qh;
  qh.resize(static_cast<size_t>(hd));
  for (int32_t i = 0; i < hd; ++i)
    qh[static_cast<size_t>(i)] = r.f16 || r.round_f16 ? round_to_fp16(q[i]) : q[i];
  float max = -INFINITY;
  for (int32_t j = 0; j < r.n_cells; ++j) {
    const size_t row = static_cast<size_t>(r.cells[j]) * r.row_stride;
    double dot = 0.0;
    for (int32_t i = 0; i < hd; ++i)
      dot += static_cast<double>(element(r.k, r.f16, row + i)) * qh[static_cast<size_t>(i)];
    score[j] = static_cast<float>(dot) * scale;
    max = std::max(max, score[j]);
  }
  double sum = 0.0;
  for (int32_t j = 0; j < r.n_cells; ++j) {
    score[j] = std::exp(score[j] - max);
    sum += score[j];
  }
  const float inv = static_cast<float>(1.0 / sum);
  thread_local std::vector<double> acc;
  acc.assign(static_cast<size_t>(hd), 0.0);
  for (int32_t j = 0; j < r.n_cells; ++j) {
    float p = score[j] * inv;
    if (r.f16 || r.round_f16) p = round_to_fp16(p);
    const size_t row = static_cast<size_t>(r.cells[j]) * r.row_stride;
    for (int32_t i = 0; i < hd; ++i)
      acc[static_cast<size_t>(i)] += static_cast<double>(p) * element(r.v, r.f16, row + i);
  }
  for (int32_t i = 0; i < hd; ++i) out[i] = static_cast<float>(acc[static_cast<size_t>(i)]);
}

void attend(Isa isa, const AttentionRows& rows, const float* q, float scale, float* scratch,
            float* out) {
#if defined(THINKMESH_HAVE_AVX2_KERNELS)
  if ((isa == Isa::avx2 || isa == Isa::avx512 || isa == Isa::amx) &&
      attend_avx2(rows, q, scale, scratch, out))
    return;
#else
  (void)isa;
#endif
  attend_reference(rows, q, scale, scratch, out);
}

void widen_k_transposed(Isa isa, const uint16_t* k, size_t row_stride, const int32_t* cells,
                        int32_t n, int32_t head_dim, float* kt, size_t kt_stride) {
#if defined(THINKMESH_HAVE_AVX2_KERNELS)
  if ((isa == Isa::avx2 || isa == Isa::avx512 || isa == Isa::amx) && head_dim % 8 == 0)
    return widen_k_transposed_avx2(k, row_stride, cells, n, head_dim, kt, kt_stride);
#else
  (void)isa;
#endif
  const int32_t cols = (n + 7) / 8 * 8;
  for (int32_t d = 0; d < head_dim; ++d) {
    float* row = kt + static_cast<size_t>(d) * kt_stride;
    for (int32_t j = 0; j < cols; ++j)
      row[j] = j < n ? fp16_to_fp32(k[static_cast<size_t>(cells[j]) * row_stride + d]) : 0.0f;
  }
}

bool attend_block_supported(Isa isa, int32_t head_dim) {
#if defined(THINKMESH_HAVE_AVX2_KERNELS)
  return (isa == Isa::avx2 || isa == Isa::avx512 || isa == Isa::amx) && head_dim % 32 == 0;
#else
  (void)isa;
  (void)head_dim;
  return false;
#endif
}

size_t attend_block_scratch(const AttentionBlock& b) {
  const size_t stride = (static_cast<size_t>(b.n_max) + 7) / 8 * 8;
  return static_cast<size_t>(b.n_q) * (stride + static_cast<size_t>(b.head_dim));
}

bool attend_block(Isa isa, const AttentionBlock& b, float scale, float* scratch) {
#if defined(THINKMESH_HAVE_AVX2_KERNELS)
  if (isa == Isa::avx2 || isa == Isa::avx512 || isa == Isa::amx)
    return attend_block_avx2(b, scale, scratch);
#else
  (void)isa;
  (void)b;
  (void)scale;
  (void)scratch;
#endif
  return false;
}

}  // namespace thinkmesh::kernels
