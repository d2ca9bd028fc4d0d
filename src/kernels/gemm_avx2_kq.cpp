// AVX2 kernels for the k-quants Q4_K, Q5_K and Q6_K against Q8_K activations (256-value
// super-blocks). Compiled with -mavx2 -mfma -mf16c.
//
// A super-block is decoded into eight ymm of 32 unsigned values (Q4_K 0..15, Q5_K 0..31, Q6_K
// 0..63) with, per ymm, an int16 vector of the sub-block scales; vpmaddubsw with the int8
// activations gives int16 pairs (no saturation at these ranges) and vpmaddwd with the scales
// int32 lanes:
//   Q4_K/Q5_K: y += d*d8 * sum_j sc_j * sum(q*a)  -  dmin*d8 * sum_j m_j * sum_j(a)
//   Q6_K:      y += d*d8 * (sum_s sc_s * sum(q*a) - 32 * sum_s sc_s * sum_s(a))
// with Q8_K's per-16 activation sums (bsums) giving sum(a). Integer parts exact.
#include <immintrin.h>

#include "kernels/gemm.h"
#include "kernels/kquant_scales.h"
#include "kernels/simd_avx2.h"
#include "kernels/tile_driver.h"
#include "tensor/blocks.h"

namespace thinkmesh::kernels {
namespace {

inline float f16(uint16_t h) {
  return _cvtsh_ss(h);
}

struct DecodedK {
  __m256i q[8];      // values 32k..32k+31
  __m256i scale[8];  // int16 scale per pair lane of q[k]
  __m256i corr16;    // Q4/5_K: mins duplicated (m0,m0,m1,m1..); Q6_K: the 16 scales
  float d, dmin;
};

inline void decode_k4_scales(const uint8_t* packed, DecodedK& out) {
  alignas(16) uint8_t sm[16];
  unpack_scales_mins(packed, sm);
  for (int k = 0; k < 8; ++k) out.scale[k] = _mm256_set1_epi16(sm[k]);
  const __m128i m16 = _mm_cvtepu8_epi16(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(sm + 8)));
  out.corr16 = _mm256_set_m128i(_mm_unpackhi_epi16(m16, m16), _mm_unpacklo_epi16(m16, m16));
}

struct Q4_K {
  using Block = block_q4_K;
  static void decode(const Block& x, DecodedK& out) {
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    for (int j = 0; j < 4; ++j) {
      const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x.qs + 32 * j));
      out.q[2 * j] = _mm256_and_si256(v, m4);
      out.q[2 * j + 1] = _mm256_and_si256(_mm256_srli_epi16(v, 4), m4);
    }
    decode_k4_scales(x.scales, out);
    out.d = f16(x.d);
    out.dmin = f16(x.dmin);
  }
};

struct Q5_K {
  using Block = block_q5_K;
  static void decode(const Block& x, DecodedK& out) {
    const __m256i m4 = _mm256_set1_epi8(0x0F), sixteen = _mm256_set1_epi8(0x10);
    const __m256i qh = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x.qh));
    for (int j = 0; j < 4; ++j) {
      const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x.qs + 32 * j));
      // value 64j+l takes bit 2j of qh[l], value 64j+32+l bit 2j+1
      const __m256i b0 = _mm256_set1_epi8(static_cast<char>(1 << (2 * j)));
      const __m256i b1 = _mm256_set1_epi8(static_cast<char>(2 << (2 * j)));
      const __m256i h0 = _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(qh, b0), b0), sixteen);
      const __m256i h1 = _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(qh, b1), b1), sixteen);
      out.q[2 * j] = _mm256_or_si256(_mm256_and_si256(v, m4), h0);
      out.q[2 * j + 1] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(v, 4), m4), h1);
    }
    decode_k4_scales(x.scales, out);
    out.d = f16(x.d);
    out.dmin = f16(x.dmin);
  }
};

struct Q6_K {
  using Block = block_q6_K;
  static void decode(const Block& x, DecodedK& out) {
    const __m256i m4 = _mm256_set1_epi8(0x0F), m30 = _mm256_set1_epi8(0x30);
    for (int h = 0; h < 2; ++h) {
      const __m256i ql0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x.ql + 64 * h));
      const __m256i ql1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x.ql + 64 * h + 32));
      const __m256i qh = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x.qh + 32 * h));
      // values l, l+32, l+64, l+96 of the half take qh[l] bits 0-1, 2-3, 4-5, 6-7 as bits 4-5
      out.q[4 * h + 0] = _mm256_or_si256(_mm256_and_si256(ql0, m4),
                                         _mm256_and_si256(_mm256_slli_epi16(qh, 4), m30));
      out.q[4 * h + 1] = _mm256_or_si256(_mm256_and_si256(ql1, m4),
                                         _mm256_and_si256(_mm256_slli_epi16(qh, 2), m30));
      out.q[4 * h + 2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql0, 4), m4),
                                         _mm256_and_si256(qh, m30));
      out.q[4 * h + 3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql1, 4), m4),
                                         _mm256_and_si256(_mm256_srli_epi16(qh, 2), m30));
    }
    const __m128i sc8 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(x.scales));
    for (int k = 0; k < 8; ++k) {
      // ymm k = values 32k..32k+31 = sub-blocks 2k (int16 lanes 0..7) and 2k+1 (lanes 8..15)
      const __m128i idx =
          _mm_set_epi64x(0x0101010101010101ll * (2 * k + 1), 0x0101010101010101ll * (2 * k));
      out.scale[k] = _mm256_cvtepi8_epi16(_mm_shuffle_epi8(sc8, idx));
    }
    out.corr16 = _mm256_cvtepi8_epi16(sc8);
    out.d = f16(x.d);
    out.dmin = 0;
  }
};

template <class D, bool kSix>
struct KKernel {
  static constexpr int kRows = 2;
  static constexpr int kTokens = 4;

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
    __m256 acc[R][T];
    for (int j = 0; j < R; ++j)
      for (int i = 0; i < T; ++i) acc[j][i] = _mm256_setzero_ps();

    for (int64_t b = 0; b < nb; ++b) {
      for (int j = 0; j < R; ++j) {
        DecodedK w;
        D::decode(x[j][b], w);
        for (int i = 0; i < T; ++i) {
          const block_q8_K& a = y[i][b];
          __m256i sumi = _mm256_setzero_si256();
          for (int k = 0; k < 8; ++k) {
            const __m256i av = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a.qs + 32 * k));
            const __m256i pairs = _mm256_maddubs_epi16(w.q[k], av);
            sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(pairs, w.scale[k]));
          }
          const __m256i bsums = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a.bsums));
          const __m256i corr = _mm256_madd_epi16(w.corr16, bsums);  // 8 int32
          if constexpr (kSix) {
            sumi = _mm256_sub_epi32(sumi, _mm256_slli_epi32(corr, 5));
            acc[j][i] =
                _mm256_fmadd_ps(_mm256_cvtepi32_ps(sumi), _mm256_set1_ps(w.d * a.d), acc[j][i]);
          } else {
            acc[j][i] =
                _mm256_fmadd_ps(_mm256_cvtepi32_ps(sumi), _mm256_set1_ps(w.d * a.d), acc[j][i]);
            acc[j][i] =
                _mm256_fmadd_ps(_mm256_cvtepi32_ps(corr), _mm256_set1_ps(-w.dmin * a.d), acc[j][i]);
          }
        }
      }
    }
    for (int i = 0; i < T; ++i) {
      float* out = p.y + (t + i) * p.y_stride + r;
      for (int j = 0; j < R; ++j) out[j] = hsum(acc[j][i]);
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

GemmKernel find_gemm_avx2_kq(TensorType w) {
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
