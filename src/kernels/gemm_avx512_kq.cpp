// AVX-512 VNNI kernels for the k-quants Q4_K, Q5_K and Q6_K against Q8_K activations (256-value
// super-blocks). Compiled with -mavx512f/bw/vl/dq -mavx512vnni -mfma -mf16c.
//
// A super-block is decoded into four zmm of 64 unsigned values (Q4_K 0..15, Q5_K 0..31,
// Q6_K 0..63, as stored), each multiplied with 64 int8 activations by vpmaddubsw (int16 pairs,
// no saturation at these ranges) and accumulated with the sub-block scales by vpdpwssd:
//   Q4_K/Q5_K: y += d*d8 * sum_j sc_j * sum(q*a)  -  dmin*d8 * sum_j m_j * sum_j(a)
//   Q6_K:      y += d*d8 * (sum_s sc_s * sum(q*a) - 32 * sum_s sc_s * sum_s(a))
// with the per-16 activation sums (bsums) of Q8_K providing sum(a). Integer parts are exact;
// only the float accumulation order differs from the reference.
#include <immintrin.h>

#include <cstring>

#include "kernels/gemm.h"
#include "kernels/kquant_scales.h"
#include "kernels/tile_driver.h"
#include "tensor/blocks.h"

namespace thinkmesh::kernels {
namespace {

inline float f16(uint16_t h) {
  return _cvtsh_ss(h);
}

// Index vectors for vpermw: chunk j of 64 values = sub-blocks (2j, 2j+1) of 32 (Q4_K/Q5_K:
// 16 int16 lanes each), or sub-blocks 4j..4j+3 of 16 (Q6_K: 8 lanes each).
inline __m512i k4_scale_index(int j) {
  return _mm512_inserti64x4(_mm512_set1_epi16(static_cast<short>(2 * j)),
                            _mm256_set1_epi16(static_cast<short>(2 * j + 1)), 1);
}
inline __m512i k6_scale_index(int j) {
  const __m128i a = _mm_set1_epi16(static_cast<short>(4 * j));
  const __m128i b = _mm_set1_epi16(static_cast<short>(4 * j + 1));
  const __m128i c = _mm_set1_epi16(static_cast<short>(4 * j + 2));
  const __m128i d = _mm_set1_epi16(static_cast<short>(4 * j + 3));
  return _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_set_m128i(b, a)), _mm256_set_m128i(d, c),
                            1);
}

// One decoded weight super-block: 4 x 64 unsigned values, their int16 scale vectors, and
// what the correction term needs.
struct DecodedK {
  __m512i q[4];
  __m512i scale[4];
  __m256i corr16;  // Q4/5_K: mins duplicated per 16 (m0,m0,m1,m1..); Q6_K: the 16 scales
  float d;         // d (F16 -> F32)
  float dmin;      // Q4/5_K: dmin; Q6_K: unused
};

inline __m512i nibbles_lo_hi(const uint8_t* qs32) {
  const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(qs32));
  const __m256i m = _mm256_set1_epi8(0x0F);
  return _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_and_si256(v, m)),
                            _mm256_and_si256(_mm256_srli_epi16(v, 4), m), 1);
}

inline void decode_k4_scales(const uint8_t* packed, DecodedK& out) {
  uint8_t sm[16];
  unpack_scales_mins(packed, sm);
  const __m128i s8 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(sm));
  const __m512i sc16 = _mm512_castsi128_si512(_mm_cvtepu8_epi16(s8));  // lanes 0..7
  for (int j = 0; j < 4; ++j) out.scale[j] = _mm512_permutexvar_epi16(k4_scale_index(j), sc16);
  const __m128i m16 = _mm_cvtepu8_epi16(_mm_srli_si128(s8, 8));
  out.corr16 = _mm256_set_m128i(_mm_unpackhi_epi16(m16, m16), _mm_unpacklo_epi16(m16, m16));
}

struct Q4_K {
  using Block = block_q4_K;
  static void decode(const Block& x, DecodedK& out) {
    for (int j = 0; j < 4; ++j) out.q[j] = nibbles_lo_hi(x.qs + 32 * j);
    decode_k4_scales(x.scales, out);
    out.d = f16(x.d);
    out.dmin = f16(x.dmin);
  }
};

struct Q5_K {
  using Block = block_q5_K;
  static void decode(const Block& x, DecodedK& out) {
    const __m512i qh =
        _mm512_broadcast_i64x4(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(x.qh)));
    const __m512i sixteen = _mm512_set1_epi8(0x10);
    for (int j = 0; j < 4; ++j) {
      // value 64j+l takes bit 2j of qh[l], value 64j+32+l bit 2j+1
      const __m512i bit = _mm512_inserti64x4(_mm512_set1_epi8(static_cast<char>(1 << (2 * j))),
                                             _mm256_set1_epi8(static_cast<char>(2 << (2 * j))), 1);
      const __mmask64 h = _mm512_test_epi8_mask(qh, bit);
      out.q[j] = _mm512_or_si512(nibbles_lo_hi(x.qs + 32 * j), _mm512_maskz_mov_epi8(h, sixteen));
    }
    decode_k4_scales(x.scales, out);
    out.d = f16(x.d);
    out.dmin = f16(x.dmin);
  }
};

struct Q6_K {
  using Block = block_q6_K;
  static void decode(const Block& x, DecodedK& out) {
    const __m512i m4 = _mm512_set1_epi8(0x0F), m30 = _mm512_set1_epi8(0x30);
    // per-half shift counts (16-bit lanes): values l use qh bits 0-1/4-5, values l+32 bits 2-3/6-7
    const __m512i shl_a = _mm512_inserti64x4(_mm512_set1_epi16(4), _mm256_set1_epi16(2), 1);
    const __m512i shr_b = _mm512_inserti64x4(_mm512_set1_epi16(0), _mm256_set1_epi16(2), 1);
    for (int h = 0; h < 2; ++h) {
      const __m512i ql = _mm512_loadu_si512(x.ql + 64 * h);
      const __m512i qh = _mm512_broadcast_i64x4(
          _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x.qh + 32 * h)));
      const __m512i ha = _mm512_and_si512(_mm512_sllv_epi16(qh, shl_a), m30);
      const __m512i hb = _mm512_and_si512(_mm512_srlv_epi16(qh, shr_b), m30);
      out.q[2 * h] = _mm512_or_si512(_mm512_and_si512(ql, m4), ha);
      out.q[2 * h + 1] = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(ql, 4), m4), hb);
    }
    const __m256i sc16 =
        _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(x.scales)));
    const __m512i sc = _mm512_castsi256_si512(sc16);
    for (int j = 0; j < 4; ++j) out.scale[j] = _mm512_permutexvar_epi16(k6_scale_index(j), sc);
    out.corr16 = sc16;
    out.d = f16(x.d);
    out.dmin = 0;
  }
};

template <class D, bool kSix>
struct KKernel {
  static constexpr int kRows = 4;
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
    __m512 acc[R][T];
    for (int j = 0; j < R; ++j)
      for (int i = 0; i < T; ++i) acc[j][i] = _mm512_setzero_ps();

    for (int64_t b = 0; b < nb; ++b) {
      for (int j = 0; j < R; ++j) {
        DecodedK w;
        D::decode(x[j][b], w);
        for (int i = 0; i < T; ++i) {
          const block_q8_K& a = y[i][b];
          __m512i sumi = _mm512_setzero_si512();
          for (int c = 0; c < 4; ++c) {
            const __m512i av = _mm512_loadu_si512(a.qs + 64 * c);
            sumi = _mm512_dpwssd_epi32(sumi, _mm512_maddubs_epi16(w.q[c], av), w.scale[c]);
          }
          const __m256i bsums = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a.bsums));
          const __m256i corr = _mm256_madd_epi16(w.corr16, bsums);  // 8 int32
          if constexpr (kSix) {
            sumi = _mm512_sub_epi32(sumi, _mm512_zextsi256_si512(_mm256_slli_epi32(corr, 5)));
            acc[j][i] =
                _mm512_fmadd_ps(_mm512_cvtepi32_ps(sumi), _mm512_set1_ps(w.d * a.d), acc[j][i]);
          } else {
            acc[j][i] =
                _mm512_fmadd_ps(_mm512_cvtepi32_ps(sumi), _mm512_set1_ps(w.d * a.d), acc[j][i]);
            const __m512 mins = _mm512_cvtepi32_ps(_mm512_zextsi256_si512(corr));
            acc[j][i] = _mm512_fmadd_ps(mins, _mm512_set1_ps(-w.dmin * a.d), acc[j][i]);
          }
        }
      }
    }
    for (int i = 0; i < T; ++i) {
      float* out = p.y + (t + i) * p.y_stride + r;
      for (int j = 0; j < R; ++j) out[j] = _mm512_reduce_add_ps(acc[j][i]);
    }
  }
};

void gemm_q4_k(const GemmProblem& p, int64_t r0, int64_t r1) {
  run_tiles<KKernel<Q4_K, false>>(p, r0, r1);
}
void gemm_q5_k(const GemmProblem& p, int64_t r0, int64_t r1) {
  run_tiles<KKernel<Q5_K, false>>(p, r0, r1);
}
void gemm_q6_k(const GemmProblem& p, int64_t r0, int64_t r1) {
  run_tiles<KKernel<Q6_K, true>>(p, r0, r1);
}

}  // namespace

GemmKernel find_gemm_avx512_kq(TensorType w) {
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
