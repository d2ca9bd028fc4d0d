// AVX2 kernels for Q4_1x8 and Q5_1x8 repacked weights (repack.h) against Q8_1 activations.
// Per block column of 8 rows: 4 loads give the nibbles of all 8 rows (Q5_1x8: plus one load of
// their 5th bits), 8 vpmaddubsw against broadcast activation quads, one vpmaddwd per 32 values
// (Q4_1: int16 sums of 16 products of 15 x 127 fit) or per 16 (Q5_1: 31 x 127 allows only 8
// products per int16), the 8 rows' int32 sums in the 8 lanes. Then per token
//   acc += float(isum) * (d_w * d_a) + m_w * s_a
// with the 8 rows' d_w and m_w as vectors and d_a, s_a broadcast: two multiply-adds per block
// column and token, no horizontal sums. Compiled with -mavx2 -mfma -mf16c.
#include <immintrin.h>

#include <cstring>

#include "kernels/repack.h"
#include "kernels/simd_avx2.h"
#include "tensor/blocks.h"

namespace thinkmesh::kernels {
namespace {

constexpr int kTokens = 4;
constexpr int64_t kMaxBlocks = 2048;  // rows of up to 65,536 values (can_repack checks)

// d and s of every block of one Q8_1 activation row as F32 (once per token group instead of
// once per row group).
void block_d_s(const block_q8_1* y, int64_t nb, float* d, float* s) {
  int64_t b = 0;
  for (; b + 8 <= nb; b += 8) {
    alignas(16) uint16_t hd[8], hs[8];
    for (int i = 0; i < 8; ++i) {
      hd[i] = y[b + i].d;
      hs[i] = y[b + i].s;
    }
    _mm256_storeu_ps(d + b, _mm256_cvtph_ps(_mm_load_si128(reinterpret_cast<const __m128i*>(hd))));
    _mm256_storeu_ps(s + b, _mm256_cvtph_ps(_mm_load_si128(reinterpret_cast<const __m128i*>(hs))));
  }
  for (; b < nb; ++b) {
    d[b] = _cvtsh_ss(y[b].d);
    s[b] = _cvtsh_ss(y[b].s);
  }
}

// Q4_1x8 (kHighBits false, 160-byte columns) or Q5_1x8 (true, 192 bytes).
template <bool kHighBits, int T>
void tile(const GemmProblem& p, int64_t g, int64_t t, const float (*da)[kMaxBlocks],
          const float (*sa)[kMaxBlocks]) {
  constexpr size_t kColumn = kHighBits ? 192 : 160;
  constexpr size_t kNibbles = kHighBits ? 64 : 32;  // offset of the 4 nibble vectors
  const int64_t nb = p.n / 32;
  const uint8_t* wg = p.w + static_cast<size_t>(g * nb) * kColumn;
  const block_q8_1* y[T];
  for (int i = 0; i < T; ++i)
    y[i] = reinterpret_cast<const block_q8_1*>(p.act + static_cast<size_t>(t + i) * p.act_stride);
  __m256 acc[T];
  for (int i = 0; i < T; ++i) acc[i] = _mm256_setzero_ps();
  const __m256i m4 = _mm256_set1_epi8(0x0F), ones16 = _mm256_set1_epi16(1);
  for (int64_t b = 0; b < nb; ++b, wg += kColumn) {
    __m256i s16[T];
    [[maybe_unused]] __m256i s32[T];
    [[maybe_unused]] __m256i hv;
    if constexpr (kHighBits) hv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(wg + 32));
    for (int k = 0; k < 4; ++k) {
      const __m256i v =
          _mm256_loadu_si256(reinterpret_cast<const __m256i*>(wg + kNibbles + 32 * k));
      __m256i lo = _mm256_and_si256(v, m4);
      __m256i hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), m4);
      if constexpr (kHighBits) {
        // bit k of each byte of hv -> 0x10 of lo, bit 4+k -> 0x10 of hi (repack.h); 16-bit
        // shifts carry bits across bytes, but none onto bit 4
        const __m256i bit4 = _mm256_set1_epi8(0x10);
        lo = _mm256_or_si256(lo, _mm256_and_si256(_mm256_slli_epi16(hv, 4 - k), bit4));
        hi = _mm256_or_si256(hi, _mm256_and_si256(_mm256_srli_epi16(hv, k), bit4));
      }
      for (int i = 0; i < T; ++i) {
        const int8_t* a = y[i][b].qs + 4 * k;
        const __m256i pr = _mm256_add_epi16(_mm256_maddubs_epi16(lo, bcast4(a)),
                                            _mm256_maddubs_epi16(hi, bcast4(a + 16)));
        if constexpr (kHighBits) {
          if (k % 2 == 0) {
            s16[i] = pr;
          } else {
            const __m256i w32 = _mm256_madd_epi16(_mm256_add_epi16(s16[i], pr), ones16);
            s32[i] = k == 1 ? w32 : _mm256_add_epi32(s32[i], w32);
            pin(s32[i]);
          }
        } else {
          s16[i] = k == 0 ? pr : _mm256_add_epi16(s16[i], pr);
        }
        pin(s16[i]);
      }
    }
    const __m256 dw = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(wg)));
    const __m256 mw = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(wg + 16)));
    for (int i = 0; i < T; ++i) {
      __m256i isum;
      if constexpr (kHighBits) {
        isum = s32[i];
      } else {
        isum = _mm256_madd_epi16(s16[i], ones16);
      }
      const __m256 dd = _mm256_mul_ps(dw, _mm256_broadcast_ss(&da[i][b]));
      acc[i] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum), dd, acc[i]);
      acc[i] = _mm256_fmadd_ps(mw, _mm256_broadcast_ss(&sa[i][b]), acc[i]);
    }
  }
  for (int i = 0; i < T; ++i) _mm256_storeu_ps(p.y + (t + i) * p.y_stride + g * 8, acc[i]);
}

template <bool kHighBits>
void gemm_x8(const GemmProblem& p, int64_t r0, int64_t r1) {
  const int64_t nb = p.n / 32;
  float da[kTokens][kMaxBlocks], sa[kTokens][kMaxBlocks];
  for (int64_t t = 0; t < p.n_tokens; t += kTokens) {
    const int64_t left = p.n_tokens - t < kTokens ? p.n_tokens - t : kTokens;
    for (int64_t i = 0; i < left; ++i) {
      block_d_s(
          reinterpret_cast<const block_q8_1*>(p.act + static_cast<size_t>(t + i) * p.act_stride),
          nb, da[i], sa[i]);
    }
    for (int64_t g = r0 / 8; g < r1 / 8; ++g) {
      if (left == 4) {
        tile<kHighBits, 4>(p, g, t, da, sa);
      } else if (left == 3) {
        tile<kHighBits, 3>(p, g, t, da, sa);
      } else if (left == 2) {
        tile<kHighBits, 2>(p, g, t, da, sa);
      } else {
        tile<kHighBits, 1>(p, g, t, da, sa);
      }
    }
  }
}

}  // namespace

GemmKernel find_repacked_gemm_avx2_q41(TensorType w) {
  if (w == TensorType::Q4_1) return &gemm_x8<false>;
  if (w == TensorType::Q5_1) return &gemm_x8<true>;
  return nullptr;
}

}  // namespace thinkmesh::kernels
