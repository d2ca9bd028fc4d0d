// AVX2 kernels for Q4_Kx8 and Q6_Kx8 repacked weights (repack.h) against Q8_K activations.
// Compiled with -mavx2 -mfma -mf16c. The structure of gemm_avx2_repacked.cpp: a tile is one
// group of 8 rows x T tokens; a weight vector holds 4 values of each of the 8 rows (lane r =
// row r), vpmaddubsw against a broadcast of the 4 matching activation bytes, so the 8 rows'
// sums build up in the 8 lanes and no horizontal sum is ever needed. Per super-block and
// token (d8 = the Q8_K scale, S_r the int32 sum of row r):
//   Q4_K: y_r += d_r*d8 * sum_s sc_rs * sum_{i in s}(q*a) - dmin_r*d8 * sum_s m_rs * sum_{i in s} a
//         (s = 32-value sub-block; the activation sums from Q8_K's bsums, one vpmaddwd per two
//         sub-blocks against the mins)
//   Q6_K: y_r += d_r*d8 * (sum_s sc_rs * sum_{i in s}(q*a) - 32 * sum_s sc_rs * bsum_s)
//         (s = 16-value sub-block, q = 0..63 unsigned, so the -32 goes through the bsums)
// Integer parts are exact (bounds at each step below), so results differ from the reference
// only in the order the per-super-block float terms are added.
//
// The float accumulators live in the output rows (one load, multiply-add and store per
// super-block and token): that leaves the 16 ymm registers to the per-token int16 / int32
// sums, the weight vectors and the broadcasts, so T = 4 runs without spills.
#include <immintrin.h>

#include <cstring>

#include "kernels/repack.h"
#include "kernels/simd_avx2.h"
#include "tensor/blocks.h"

namespace thinkmesh::kernels {
namespace {

constexpr int kTokens = 4;
constexpr int64_t kMaxSuper = 256;  // super-blocks per row: rows of up to 65,536 (can_repack)

inline __m128i load128(const uint8_t* p) {
  return _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
}

inline __m256i load256(const uint8_t* p) {
  return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
}

// Sums of each 32 activations of every super-block of one token, as int16 (|sum| <= 32 x 128):
// out[8b + s] for sub-block s of super-block b.
void sub_block_sums(const block_q8_K* y, int64_t nb, int16_t* out) {
  for (int64_t b = 0; b < nb; ++b) {
    const __m256i bs = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(y[b].bsums));
    const __m128i s = _mm_hadd_epi16(_mm256_castsi256_si128(bs), _mm256_extracti128_si256(bs, 1));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out + 8 * b), s);
  }
}

// y for rows [8g, 8g + 8) and tokens [t, t + T) from Q4_Kx8 weights.
template <int T>
void tile_q4_k(const GemmProblem& p, int64_t g, int64_t t, const int16_t (*sums)[kMaxSuper * 8]) {
  const int64_t nb = p.n / QK_K;
  const uint8_t* wg = p.w + static_cast<size_t>(g * nb) * kQ4_Kx8Bytes;
  const block_q8_K* y[T];
  float* out[T];
  for (int i = 0; i < T; ++i) {
    y[i] = reinterpret_cast<const block_q8_K*>(p.act + static_cast<size_t>(t + i) * p.act_stride);
    out[i] = p.y + (t + i) * p.y_stride + g * 8;
    _mm256_storeu_ps(out[i], _mm256_setzero_ps());
  }
  const __m256i m4 = _mm256_set1_epi8(0x0F);
  for (int64_t b = 0; b < nb; ++b, wg += kQ4_Kx8Bytes) {
    __m256i s32[T];
    for (int i = 0; i < T; ++i) s32[i] = _mm256_setzero_si256();
      // Not unrolled: GCC would otherwise hoist the decoding of later sub-blocks and spill.
#pragma GCC unroll 1
    for (int s = 0; s < 8; ++s) {
      const uint8_t* q = wg + 160 + 128 * s;
      // Nibble vector outermost, tokens innermost: one weight vector (low and high nibbles)
      // and one int16 sum per token are live.
      __m256i s16[T];
      for (int k = 0; k < 4; ++k) {
        const __m256i v = load256(q + 32 * k);
        const __m256i lo = _mm256_and_si256(v, m4);
        const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), m4);
        for (int i = 0; i < T; ++i) {
          const int8_t* a = y[i][b].qs + 32 * s + 4 * k;
          const __m256i pr = _mm256_add_epi16(_mm256_maddubs_epi16(lo, bcast4(a)),
                                              _mm256_maddubs_epi16(hi, bcast4(a + 16)));
          s16[i] = k == 0 ? pr : _mm256_add_epi16(s16[i], pr);
          pin(s16[i]);
        }
      }
      // Each int16 of s16 now sums 16 products of 15 x 128 at most (30,720 < 32,767).
      // Scale: int16 (sc_r, sc_r) in lane r; the int32 sum of a super-block stays below
      // 8 x 63 x 2 x 30,720 (31 M).
      const __m128i sc8 = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(wg + 32 + 8 * s));
      const __m256i sc = _mm256_cvtepu8_epi16(_mm_unpacklo_epi8(sc8, sc8));
      for (int i = 0; i < T; ++i) {
        s32[i] = _mm256_add_epi32(s32[i], _mm256_madd_epi16(s16[i], sc));
        pin(s32[i]);
      }
    }
    // sum_s m_rs * sum_{i in s} a: lane r of a mins vector holds (m_r,2j, m_r,2j+1), the
    // broadcast the two matching activation sums (at most 8 x 63 x 4,096 = 2 M).
    __m256i mins[T];
    for (int j = 0; j < 4; ++j) {
      const __m256i m = _mm256_cvtepu8_epi16(load128(wg + 96 + 16 * j));
      for (int i = 0; i < T; ++i) {
        const __m256i pr = _mm256_madd_epi16(m, bcast4(sums[i] + 8 * b + 2 * j));
        mins[i] = j == 0 ? pr : _mm256_add_epi32(mins[i], pr);
        pin(mins[i]);
      }
    }
    const __m256 d = _mm256_cvtph_ps(load128(wg));
    const __m256 dmin = _mm256_cvtph_ps(load128(wg + 16));
    for (int i = 0; i < T; ++i) {
      const __m256 d8 = _mm256_set1_ps(y[i][b].d);
      __m256 acc = _mm256_loadu_ps(out[i]);
      acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s32[i]), _mm256_mul_ps(d, d8), acc);
      acc = _mm256_fnmadd_ps(_mm256_cvtepi32_ps(mins[i]), _mm256_mul_ps(dmin, d8), acc);
      _mm256_storeu_ps(out[i], acc);
    }
  }
}

// y for rows [8g, 8g + 8) and tokens [t, t + T) from Q6_Kx8 weights.
template <int T>
void tile_q6_k(const GemmProblem& p, int64_t g, int64_t t) {
  const int64_t nb = p.n / QK_K;
  const uint8_t* wg = p.w + static_cast<size_t>(g * nb) * kQ6_Kx8Bytes;
  const block_q8_K* y[T];
  float* out[T];
  for (int i = 0; i < T; ++i) {
    y[i] = reinterpret_cast<const block_q8_K*>(p.act + static_cast<size_t>(t + i) * p.act_stride);
    out[i] = p.y + (t + i) * p.y_stride + g * 8;
    _mm256_storeu_ps(out[i], _mm256_setzero_ps());
  }
  const __m256i m3f = _mm256_set1_epi8(0x3F), mc0 = _mm256_set1_epi8(static_cast<char>(0xC0));
  // int16 (sc_r,2j, sc_r,2j+1) -> (sc_r,2j, sc_r,2j) / (sc_r,2j+1, sc_r,2j+1) in lane r
  const __m256i dup_even = _mm256_setr_epi8(0, 1, 0, 1, 4, 5, 4, 5, 8, 9, 8, 9, 12, 13, 12, 13, 0,
                                            1, 0, 1, 4, 5, 4, 5, 8, 9, 8, 9, 12, 13, 12, 13);
  const __m256i dup_odd = _mm256_add_epi8(dup_even, _mm256_set1_epi8(2));
  for (int64_t b = 0; b < nb; ++b, wg += kQ6_Kx8Bytes) {
    __m256i s32[T];
#pragma GCC unroll 1
    for (int j = 0; j < 8; ++j) {  // not unrolled (see tile_q4_k)
      const __m256i sc_pair = _mm256_cvtepi8_epi16(load128(wg + 16 + 16 * j));
      // -32 * (sc_2j * bsum_2j + sc_2j+1 * bsum_2j+1): 32 x 128 fits int16, and the 8 terms
      // stay below 8 x 2 x 4,096 x 2,048 (134 M)
      const __m256i sc32 = _mm256_slli_epi16(sc_pair, 5);
      for (int i = 0; i < T; ++i) {
        const __m256i pr = _mm256_madd_epi16(sc32, bcast4(y[i][b].bsums + 2 * j));
        s32[i] =
            j == 0 ? _mm256_sub_epi32(_mm256_setzero_si256(), pr) : _mm256_sub_epi32(s32[i], pr);
      }
      for (int h = 0; h < 2; ++h) {
        const int s = 2 * j + h;
        const __m256i sc = _mm256_shuffle_epi8(sc_pair, h == 0 ? dup_even : dup_odd);
        const uint8_t* q = wg + 144 + 96 * s;
        // Quads 0..2 are the low 6 bits of v0..v2; quad 3 is assembled from their top bit
        // pairs (v0: its bits 4-5, v1: 2-3, v2: 0-1), already in place after masking and
        // 16-bit shifts (the bits a shift moves across a byte boundary were masked off).
        const __m256i v0 = load256(q), v1 = load256(q + 32), v2 = load256(q + 64);
        const __m256i top =
            _mm256_or_si256(_mm256_or_si256(_mm256_and_si256(v0, mc0),
                                            _mm256_srli_epi16(_mm256_and_si256(v1, mc0), 2)),
                            _mm256_srli_epi16(_mm256_and_si256(v2, mc0), 4));
        for (int half = 0; half < 2; ++half) {
          // values 16s + 8 half + (0..3) and 16s + 8 half + 4 + (0..3)
          const __m256i w0 = _mm256_and_si256(half == 0 ? v0 : v2, m3f);
          const __m256i w1 = half == 0 ? _mm256_and_si256(v1, m3f) : _mm256_srli_epi16(top, 2);
          for (int i = 0; i < T; ++i) {
            const int8_t* a = y[i][b].qs + 16 * s + 8 * half;
            // 4 products of 63 x 128 at most per int16 (32,256 < 32,767): two vpmaddubsw,
            // then straight to int32 (per super-block < 32 x 2 x 32,256 x 128 = 264 M)
            const __m256i pr = _mm256_add_epi16(_mm256_maddubs_epi16(w0, bcast4(a)),
                                                _mm256_maddubs_epi16(w1, bcast4(a + 4)));
            s32[i] = _mm256_add_epi32(s32[i], _mm256_madd_epi16(pr, sc));
            pin(s32[i]);
          }
        }
      }
    }
    const __m256 d = _mm256_cvtph_ps(load128(wg));
    for (int i = 0; i < T; ++i) {
      const __m256 d8 = _mm256_set1_ps(y[i][b].d);
      const __m256 acc = _mm256_loadu_ps(out[i]);
      _mm256_storeu_ps(out[i],
                       _mm256_fmadd_ps(_mm256_cvtepi32_ps(s32[i]), _mm256_mul_ps(d, d8), acc));
    }
  }
}

void gemm_q4_kx8(const GemmProblem& p, int64_t r0, int64_t r1) {
  const int64_t nb = p.n / QK_K;
  int16_t sums[kTokens][kMaxSuper * 8];
  for (int64_t t = 0; t < p.n_tokens; t += kTokens) {
    const int64_t left = p.n_tokens - t < kTokens ? p.n_tokens - t : kTokens;
    for (int64_t i = 0; i < left; ++i) {
      sub_block_sums(
          reinterpret_cast<const block_q8_K*>(p.act + static_cast<size_t>(t + i) * p.act_stride),
          nb, sums[i]);
    }
    for (int64_t g = r0 / 8; g < r1 / 8; ++g) {
      if (left == 4) {
        tile_q4_k<4>(p, g, t, sums);
      } else if (left == 3) {
        tile_q4_k<3>(p, g, t, sums);
      } else if (left == 2) {
        tile_q4_k<2>(p, g, t, sums);
      } else {
        tile_q4_k<1>(p, g, t, sums);
      }
    }
  }
}

void gemm_q6_kx8(const GemmProblem& p, int64_t r0, int64_t r1) {
  for (int64_t t = 0; t < p.n_tokens; t += kTokens) {
    const int64_t left = p.n_tokens - t < kTokens ? p.n_tokens - t : kTokens;
    for (int64_t g = r0 / 8; g < r1 / 8; ++g) {
      if (left == 4) {
        tile_q6_k<4>(p, g, t);
      } else if (left == 3) {
        tile_q6_k<3>(p, g, t);
      } else if (left == 2) {
        tile_q6_k<2>(p, g, t);
      } else {
        tile_q6_k<1>(p, g, t);
      }
    }
  }
}

}  // namespace

GemmKernel find_repacked_gemm_avx2_kq(TensorType w) {
  if (w == TensorType::Q4_K) return &gemm_q4_kx8;
  if (w == TensorType::Q6_K) return &gemm_q6_kx8;
  return nullptr;
}

}  // namespace thinkmesh::kernels
