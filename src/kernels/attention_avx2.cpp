// AVX2 attention of one head (see attention.h). Scores for 8 cells at a time (8 dot products
// reduced together), a vectorised exp, F16 rounding of q and p as the reference, V summed in
// F32 lanes. Compiled with -mavx2 -mfma -mf16c.
#include <immintrin.h>

#include "kernels/attention.h"
#include "kernels/simd_avx2.h"

namespace thinkmesh::kernels {
namespace {

// The 8 lane sums of a[0..7] as one vector (lane j = sum of a[j]).
inline __m256 hsum8(const __m256 a[8]) {
  const __m256 s01 = _mm256_hadd_ps(a[0], a[1]), s23 = _mm256_hadd_ps(a[2], a[3]);
  const __m256 s45 = _mm256_hadd_ps(a[4], a[5]), s67 = _mm256_hadd_ps(a[6], a[7]);
  const __m256 s0123 = _mm256_hadd_ps(s01, s23), s4567 = _mm256_hadd_ps(s45, s67);
  // lanes: [0123 low | 0123 high] and [4567 low | 4567 high]
  const __m256 lo = _mm256_permute2f128_ps(s0123, s4567, 0x20);
  const __m256 hi = _mm256_permute2f128_ps(s0123, s4567, 0x31);
  return _mm256_add_ps(lo, hi);
}

template <bool kF16>
inline __m256 load8(const void* base, size_t i) {
  if constexpr (kF16) {
    return _mm256_cvtph_ps(
        _mm_loadu_si128(reinterpret_cast<const __m128i*>(static_cast<const uint16_t*>(base) + i)));
  } else {
    return _mm256_loadu_ps(static_cast<const float*>(base) + i);
  }
}

inline float round16(float f) {
  return _cvtsh_ss(_cvtss_sh(f, _MM_FROUND_TO_NEAREST_INT));
}

// kF16: the rows are F16 bits; kRound: q and p are rounded to F16 (an F16 cache, read directly
// or through a widened F32 copy); kNv = head_dim / 8, a compile-time count so that q and the
// output accumulators live in registers (a run-time count kept them on the stack).
template <bool kF16, bool kRound, int kNv>
void attend_impl(const AttentionRows& r, const float* q, float scale, float* score, float* out) {
  constexpr int32_t nv = kNv;
  __m256 qv[kNv];
  for (int32_t c = 0; c < nv; ++c) {
    __m256 v = _mm256_loadu_ps(q + 8 * c);
    if constexpr (kRound) v = _mm256_cvtph_ps(_mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT));
    qv[c] = v;
  }
  const __m256 vscale = _mm256_set1_ps(scale);
  __m256 vmax = _mm256_set1_ps(-__builtin_inff());
  int32_t j = 0;
  for (; j + 8 <= r.n_cells; j += 8) {
    __m256 acc[8];
    for (int32_t u = 0; u < 8; ++u) {
      const size_t row = static_cast<size_t>(r.cells[j + u]) * r.row_stride;
      __m256 a = _mm256_mul_ps(load8<kF16>(r.k, row), qv[0]);
      for (int32_t c = 1; c < nv; ++c) a = _mm256_fmadd_ps(load8<kF16>(r.k, row + 8 * c), qv[c], a);
      acc[u] = a;
    }
    const __m256 s = _mm256_mul_ps(hsum8(acc), vscale);
    _mm256_storeu_ps(score + j, s);
    vmax = _mm256_max_ps(vmax, s);
  }
  float max = -__builtin_inff();
  {
    alignas(32) float m[8];
    _mm256_store_ps(m, vmax);
    for (float v : m) max = v > max ? v : max;
  }
  for (; j < r.n_cells; ++j) {
    const size_t row = static_cast<size_t>(r.cells[j]) * r.row_stride;
    __m256 a = _mm256_mul_ps(load8<kF16>(r.k, row), qv[0]);
    for (int32_t c = 1; c < nv; ++c) a = _mm256_fmadd_ps(load8<kF16>(r.k, row + 8 * c), qv[c], a);
    score[j] = hsum(a) * scale;
    max = score[j] > max ? score[j] : max;
  }
  const __m256 vm = _mm256_set1_ps(max);
  __m256 vsum = _mm256_setzero_ps();
  j = 0;
  for (; j + 8 <= r.n_cells; j += 8) {
    const __m256 e = exp256(_mm256_sub_ps(_mm256_loadu_ps(score + j), vm));
    _mm256_storeu_ps(score + j, e);
    vsum = _mm256_add_ps(vsum, e);
  }
  float sum = hsum(vsum);
  for (; j < r.n_cells; ++j) {
    alignas(32) float e[8];
    _mm256_store_ps(e, exp256(_mm256_set1_ps(score[j] - max)));
    score[j] = e[0];
    sum += e[0];
  }
  const float inv = 1.0f / sum;
  __m256 o[16];
  for (int32_t c = 0; c < nv; ++c) o[c] = _mm256_setzero_ps();
  j = 0;
  if constexpr (nv <= 6) {
    // Two cells per step into two accumulator sets: one set alone is a chain of dependent
    // FMAs (4 cycles each) per cell; two halve that (head_dim <= 48 leaves the registers).
    __m256 o2[nv];
    for (int32_t c = 0; c < nv; ++c) o2[c] = _mm256_setzero_ps();
    for (; j + 2 <= r.n_cells; j += 2) {
      float p0 = score[j] * inv, p1 = score[j + 1] * inv;
      if constexpr (kRound) {
        p0 = round16(p0);
        p1 = round16(p1);
      }
      const __m256 vp0 = _mm256_set1_ps(p0), vp1 = _mm256_set1_ps(p1);
      const size_t row0 = static_cast<size_t>(r.cells[j]) * r.row_stride;
      const size_t row1 = static_cast<size_t>(r.cells[j + 1]) * r.row_stride;
      for (int32_t c = 0; c < nv; ++c) {
        o[c] = _mm256_fmadd_ps(vp0, load8<kF16>(r.v, row0 + 8 * c), o[c]);
        o2[c] = _mm256_fmadd_ps(vp1, load8<kF16>(r.v, row1 + 8 * c), o2[c]);
      }
    }
    for (int32_t c = 0; c < nv; ++c) o[c] = _mm256_add_ps(o[c], o2[c]);
  }
  for (; j < r.n_cells; ++j) {
    float p = score[j] * inv;
    if constexpr (kRound) p = round16(p);
    const __m256 vp = _mm256_set1_ps(p);
    const size_t row = static_cast<size_t>(r.cells[j]) * r.row_stride;
    for (int32_t c = 0; c < nv; ++c)
      o[c] = _mm256_fmadd_ps(vp, load8<kF16>(r.v, row + 8 * c), o[c]);
  }
  for (int32_t c = 0; c < nv; ++c) _mm256_storeu_ps(out + 8 * c, o[c]);
}

// head_dim / 8 in 1..16 -> the instantiation for it.
template <bool kF16, bool kRound, int kNv = 1>
void dispatch(const AttentionRows& r, const float* q, float scale, float* score, float* out) {
  if constexpr (kNv <= 16) {
    if (r.head_dim / 8 == kNv) return attend_impl<kF16, kRound, kNv>(r, q, scale, score, out);
    dispatch<kF16, kRound, kNv + 1>(r, q, scale, score, out);
  }
}

}  // namespace

bool attend_avx2(const AttentionRows& r, const float* q, float scale, float* scratch, float* out) {
  if (r.head_dim % 8 != 0 || r.head_dim > 128 || r.n_cells <= 0) return false;
  if (r.f16) {
    dispatch<true, true>(r, q, scale, scratch, out);
  } else if (r.round_f16) {
    dispatch<false, true>(r, q, scale, scratch, out);
  } else {
    dispatch<false, false>(r, q, scale, scratch, out);
  }
  return true;
}

}  // namespace thinkmesh::kernels
