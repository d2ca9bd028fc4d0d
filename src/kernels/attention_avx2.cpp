// AVX2 attention of one head (see attention.h). Scores for 8 cells at a time (8 dot products
// reduced together), a vectorised exp, F16 rounding of q and p as the reference, V summed in
// F32 lanes. Compiled with -mavx2 -mfma -mf16c.
#include <immintrin.h>

#include <algorithm>

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

// ---- several queries over shared rows (attention.h: AttentionBlock) ------------------------
//
// Scores: with K transposed, 8 consecutive cells are one vector per dimension, so a score
// vector is head_dim FMAs against a broadcast q element — no horizontal sums; two queries and
// three cell vectors per step share the loads (6 accumulators). Softmax per query row over its
// own cells (the rest of the row is -inf, so exp gives 0). V: two queries and four head_dim
// vectors per step (8 accumulators), each V load used twice.
namespace thinkmesh::kernels {
namespace {

inline __m256 round16v(__m256 v) {
  return _mm256_cvtph_ps(_mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT));
}

// Scores of queries qa, qb (rows sa, sb of the score matrix) for the 8-cell columns [c0, c1).
template <int kCols>
inline void score_cols(const float* kt, size_t ks, int32_t hd, const float* qa, const float* qb,
                       float* sa, float* sb, int32_t j) {
  __m256 a[kCols], b[kCols];
  for (int c = 0; c < kCols; ++c) a[c] = b[c] = _mm256_setzero_ps();
  for (int32_t d = 0; d < hd; ++d) {
    const __m256 xa = _mm256_broadcast_ss(qa + d), xb = _mm256_broadcast_ss(qb + d);
    const float* row = kt + static_cast<size_t>(d) * ks + j;
    for (int c = 0; c < kCols; ++c) {
      const __m256 k = _mm256_loadu_ps(row + 8 * c);
      a[c] = _mm256_fmadd_ps(xa, k, a[c]);
      b[c] = _mm256_fmadd_ps(xb, k, b[c]);
    }
  }
  for (int c = 0; c < kCols; ++c) {
    _mm256_storeu_ps(sa + j + 8 * c, a[c]);
    _mm256_storeu_ps(sb + j + 8 * c, b[c]);
  }
}

// Output vectors [c, c + 4) of queries (pa, oa) and (pb, ob): o = sum_j p_j V_j.
inline void v_cols(const float* v, int32_t hd, int32_t n, const float* pa, const float* pb,
                   float* oa, float* ob, int32_t c) {
  __m256 a[4], b[4];
  for (int u = 0; u < 4; ++u) a[u] = b[u] = _mm256_setzero_ps();
  for (int32_t j = 0; j < n; ++j) {
    const __m256 xa = _mm256_broadcast_ss(pa + j), xb = _mm256_broadcast_ss(pb + j);
    const float* row = v + static_cast<size_t>(j) * hd + 8 * c;
    for (int u = 0; u < 4; ++u) {
      const __m256 x = _mm256_loadu_ps(row + 8 * u);
      a[u] = _mm256_fmadd_ps(xa, x, a[u]);
      b[u] = _mm256_fmadd_ps(xb, x, b[u]);
    }
  }
  for (int u = 0; u < 4; ++u) {
    _mm256_storeu_ps(oa + 8 * (c + u), a[u]);
    _mm256_storeu_ps(ob + 8 * (c + u), b[u]);
  }
}

}  // namespace

bool attend_block_avx2(const AttentionBlock& b, float scale, float* scratch) {
  const int32_t hd = b.head_dim;
  if (hd % 32 != 0 || b.n_q <= 0 || b.n_max <= 0) return false;
  const int32_t cols = (b.n_max + 7) / 8 * 8;  // score row length
  if (b.kt_stride < static_cast<size_t>(cols)) return false;
  float* scores = scratch;                                  // [n_q][cols]
  float* qr = scratch + static_cast<size_t>(b.n_q) * cols;  // [n_q][hd]: q rounded to F16
  for (int32_t i = 0; i < b.n_q; ++i) {
    for (int32_t d = 0; d < hd; d += 8)
      _mm256_storeu_ps(qr + static_cast<size_t>(i) * hd + d, round16v(_mm256_loadu_ps(b.q[i] + d)));
  }
  // scores, two queries at a time (an odd last query is paired with itself)
  for (int32_t i = 0; i < b.n_q; i += 2) {
    const int32_t i2 = i + 1 < b.n_q ? i + 1 : i;
    const float* qa = qr + static_cast<size_t>(i) * hd;
    const float* qb = qr + static_cast<size_t>(i2) * hd;
    float* sa = scores + static_cast<size_t>(i) * cols;
    float* sb = scores + static_cast<size_t>(i2) * cols;
    const int32_t n = std::max(b.n_cells[i], b.n_cells[i2]);
    const int32_t n8 = (n + 7) / 8 * 8;
    int32_t j = 0;
    for (; j + 24 <= n8; j += 24) score_cols<3>(b.kt, b.kt_stride, hd, qa, qb, sa, sb, j);
    if (n8 - j == 16) score_cols<2>(b.kt, b.kt_stride, hd, qa, qb, sa, sb, j);
    if (n8 - j == 8) score_cols<1>(b.kt, b.kt_stride, hd, qa, qb, sa, sb, j);
  }
  // softmax of each row over its cells; p rounded to F16; the rest of the row (up to the
  // pair's longest row, which the V pass reads) set to 0
  const __m256 vscale = _mm256_set1_ps(scale);
  for (int32_t i = 0; i < b.n_q; ++i) {
    float* s = scores + static_cast<size_t>(i) * cols;
    const int32_t n = b.n_cells[i];
    int32_t j = 0;
    __m256 vmax = _mm256_set1_ps(-__builtin_inff());
    for (; j + 8 <= n; j += 8) {
      const __m256 x = _mm256_mul_ps(_mm256_loadu_ps(s + j), vscale);
      _mm256_storeu_ps(s + j, x);
      vmax = _mm256_max_ps(vmax, x);
    }
    alignas(32) float m8[8];
    _mm256_store_ps(m8, vmax);
    float max = m8[0];
    for (int u = 1; u < 8; ++u) max = m8[u] > max ? m8[u] : max;
    for (; j < n; ++j) {
      s[j] *= scale;
      max = s[j] > max ? s[j] : max;
    }
    const __m256 vm = _mm256_set1_ps(max);
    __m256 vsum = _mm256_setzero_ps();
    j = 0;
    for (; j + 8 <= n; j += 8) {
      const __m256 e = exp256(_mm256_sub_ps(_mm256_loadu_ps(s + j), vm));
      _mm256_storeu_ps(s + j, e);
      vsum = _mm256_add_ps(vsum, e);
    }
    float sum = hsum(vsum);
    for (; j < n; ++j) {
      alignas(32) float e[8];
      _mm256_store_ps(e, exp256(_mm256_set1_ps(s[j] - max)));
      s[j] = e[0];
      sum += e[0];
    }
    const __m256 inv = _mm256_set1_ps(1.0f / sum);
    j = 0;
    for (; j + 8 <= n; j += 8)
      _mm256_storeu_ps(s + j, round16v(_mm256_mul_ps(_mm256_loadu_ps(s + j), inv)));
    for (; j < n; ++j) s[j] = round16(s[j] * (1.0f / sum));
    for (; j < cols; ++j) s[j] = 0.0f;
  }
  for (int32_t i = 0; i < b.n_q; i += 2) {
    const int32_t i2 = i + 1 < b.n_q ? i + 1 : i;
    const int32_t n = std::max(b.n_cells[i], b.n_cells[i2]);
    const float* pa = scores + static_cast<size_t>(i) * cols;
    const float* pb = scores + static_cast<size_t>(i2) * cols;
    for (int32_t c = 0; c < hd / 8; c += 4) v_cols(b.v, hd, n, pa, pb, b.out[i], b.out[i2], c);
  }
  return true;
}

// 8 rows of 8 floats -> 8 columns (r[i][j] -> c[j][i]).
inline void transpose8(__m256 r[8]) {
  const __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
  const __m256 t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
  const __m256 t4 = _mm256_unpacklo_ps(r[4], r[5]), t5 = _mm256_unpackhi_ps(r[4], r[5]);
  const __m256 t6 = _mm256_unpacklo_ps(r[6], r[7]), t7 = _mm256_unpackhi_ps(r[6], r[7]);
  const __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE);
  const __m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xEE);
  const __m256 u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xEE);
  const __m256 u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xEE);
  r[0] = _mm256_permute2f128_ps(u0, u4, 0x20);
  r[1] = _mm256_permute2f128_ps(u1, u5, 0x20);
  r[2] = _mm256_permute2f128_ps(u2, u6, 0x20);
  r[3] = _mm256_permute2f128_ps(u3, u7, 0x20);
  r[4] = _mm256_permute2f128_ps(u0, u4, 0x31);
  r[5] = _mm256_permute2f128_ps(u1, u5, 0x31);
  r[6] = _mm256_permute2f128_ps(u2, u6, 0x31);
  r[7] = _mm256_permute2f128_ps(u3, u7, 0x31);
}

void widen_k_transposed_avx2(const uint16_t* k, size_t row_stride, const int32_t* cells, int32_t n,
                             int32_t hd, float* kt, size_t kt_stride) {
  for (int32_t j = 0; j < n; j += 8) {
    for (int32_t d = 0; d < hd; d += 8) {
      __m256 r[8];
      for (int u = 0; u < 8; ++u) {
        r[u] = j + u < n ? _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(
                               k + static_cast<size_t>(cells[j + u]) * row_stride + d)))
                         : _mm256_setzero_ps();
      }
      transpose8(r);
      for (int u = 0; u < 8; ++u)
        _mm256_storeu_ps(kt + static_cast<size_t>(d + u) * kt_stride + j, r[u]);
    }
  }
}

}  // namespace thinkmesh::kernels
