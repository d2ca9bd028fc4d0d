// AVX2 kernels for Q4_0x8 and Q8_0x8 repacked weights (repack.h) against Q8_0 activations. Per
// block column of 8 rows: 4 loads give the nibbles of all 8 rows, 8 vpmaddubsw against broadcast
// activation quads accumulate in int16 (16 products of 15 x 127 at most: no overflow), one
// vpmaddwd gives the 8 rows' int32 sums in the 8 lanes, minus 8 * sum(a); one conversion and
// one multiply-add with the 8 row scales times d_a. Compiled with -mavx2 -mfma -mf16c.
#include <immintrin.h>

#include <cstring>

#include "kernels/repack.h"
#include "kernels/simd_avx2.h"
#include "tensor/blocks.h"

namespace thinkmesh::kernels {
namespace {

constexpr int kTokens = 4;
constexpr int64_t kMaxBlocks = 2048;  // rows of up to 65,536 values (can_repack checks)

// The F32 scale of every block of one activation row (converted once per row instead of
// once per row group).
void block_scales(const block_q8_0* y, int64_t nb, float* out) {
  int64_t b = 0;
  for (; b + 8 <= nb; b += 8) {
    alignas(16) uint16_t h[8];
    for (int i = 0; i < 8; ++i) h[i] = y[b + i].d;
    _mm256_storeu_ps(out + b, _mm256_cvtph_ps(_mm_load_si128(reinterpret_cast<const __m128i*>(h))));
  }
  for (; b < nb; ++b) out[b] = _cvtsh_ss(y[b].d);
}

// 8 * sum(a) of every block of one activation row.
void block_sums8(const block_q8_0* y, int64_t nb, int32_t* out) {
  const __m256i eights = _mm256_set1_epi8(8), ones16 = _mm256_set1_epi16(1);
  for (int64_t b = 0; b < nb; ++b) {
    const __m256i av = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(y[b].qs));
    const __m256i s8 = _mm256_madd_epi16(_mm256_maddubs_epi16(eights, av), ones16);
    __m128i c = _mm_add_epi32(_mm256_castsi256_si128(s8), _mm256_extracti128_si256(s8, 1));
    c = _mm_add_epi32(c, _mm_shuffle_epi32(c, 0x4E));
    c = _mm_add_epi32(c, _mm_shuffle_epi32(c, 0xB1));
    out[b] = _mm_cvtsi128_si32(c);
  }
}

// Decode (one token) streams each matrix once from memory: the core computes a block column
// in a few nanoseconds, too little time for the hardware prefetcher to stay ahead, so the
// single-token tiles ask for the lines ~4 KiB ahead themselves (measured on a 500 MB Q8_0
// model: +7-14% decode tokens/s at 1 thread, +4-20% at 2; no effect on cache-resident ones).
constexpr int64_t kPrefetchBytes = 4352;

// The loops run over the 4 nibble vectors outermost and the tokens innermost, so only one
// weight vector (low and high nibbles) and one int16 sum per token are live: T = 4 fits the
// 16 ymm registers without spilling.
template <int T>
void tile(const GemmProblem& p, int64_t g, int64_t t, const int32_t (*sums)[kMaxBlocks],
          const float (*scales)[kMaxBlocks]) {
  const int64_t nb = p.n / QK4_0;
  const uint8_t* wg = p.w + static_cast<size_t>(g * nb) * 144;
  const block_q8_0* y[T];
  for (int i = 0; i < T; ++i)
    y[i] = reinterpret_cast<const block_q8_0*>(p.act + static_cast<size_t>(t + i) * p.act_stride);
  __m256 acc[T];
  for (int i = 0; i < T; ++i) acc[i] = _mm256_setzero_ps();
  const __m256i m4 = _mm256_set1_epi8(0x0F), ones16 = _mm256_set1_epi16(1);
  for (int64_t b = 0; b < nb; ++b, wg += 144) {
    if constexpr (T == 1) {
      const char* ahead = reinterpret_cast<const char*>(wg) + kPrefetchBytes;
      for (int c = 0; c < 3; ++c) _mm_prefetch(ahead + 64 * c, _MM_HINT_T0);  // 144 bytes
    }
    __m256i s16[T];
    for (int k = 0; k < 4; ++k) {
      const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(wg + 16 + 32 * k));
      const __m256i lo = _mm256_and_si256(v, m4);
      const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), m4);
      for (int i = 0; i < T; ++i) {
        const int8_t* a = y[i][b].qs + 4 * k;
        const __m256i pr = _mm256_add_epi16(_mm256_maddubs_epi16(lo, bcast4(a)),
                                            _mm256_maddubs_epi16(hi, bcast4(a + 16)));
        s16[i] = k == 0 ? pr : _mm256_add_epi16(s16[i], pr);
        pin(s16[i]);
      }
    }
    const __m256 dw = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(wg)));
    for (int i = 0; i < T; ++i) {
      // minus 8 * sum(a), the same for every row
      const __m256i isum =
          _mm256_sub_epi32(_mm256_madd_epi16(s16[i], ones16), _mm256_set1_epi32(sums[i][b]));
      const __m256 da = _mm256_broadcast_ss(&scales[i][b]);
      acc[i] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum), _mm256_mul_ps(dw, da), acc[i]);
    }
  }
  for (int i = 0; i < T; ++i) _mm256_storeu_ps(p.y + (t + i) * p.y_stride + g * 8, acc[i]);
}

// Q8_0x8: signed weights, so |w| x (a with w's sign) per quad vector; pairs of 128 x 127
// products are summed to int32 right away (two would overflow int16).
template <int T>
void tile_q8(const GemmProblem& p, int64_t g, int64_t t, const float (*scales)[kMaxBlocks]) {
  const int64_t nb = p.n / 32;
  const uint8_t* wg = p.w + static_cast<size_t>(g * nb) * 272;
  const block_q8_0* y[T];
  for (int i = 0; i < T; ++i)
    y[i] = reinterpret_cast<const block_q8_0*>(p.act + static_cast<size_t>(t + i) * p.act_stride);
  __m256 acc[T];
  for (int i = 0; i < T; ++i) acc[i] = _mm256_setzero_ps();
  const __m256i ones16 = _mm256_set1_epi16(1);
  for (int64_t b = 0; b < nb; ++b, wg += 272) {
    if constexpr (T == 1) {
      const char* ahead = reinterpret_cast<const char*>(wg) + kPrefetchBytes;
      for (int c = 0; c < 5; ++c) _mm_prefetch(ahead + 64 * c, _MM_HINT_T0);  // 272 bytes
    }
    // quad vector outermost, tokens innermost (as in tile above): no spills at T = 4
    __m256i s32[T];
    for (int k = 0; k < 8; ++k) {
      const __m256i w = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(wg + 16 + 32 * k));
      const __m256i aw = _mm256_sign_epi8(w, w);
      for (int i = 0; i < T; ++i) {
        const __m256i pr = _mm256_madd_epi16(
            _mm256_maddubs_epi16(aw, _mm256_sign_epi8(bcast4(y[i][b].qs + 4 * k), w)), ones16);
        s32[i] = k == 0 ? pr : _mm256_add_epi32(s32[i], pr);
        pin(s32[i]);
      }
    }
    const __m256 dw = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(wg)));
    for (int i = 0; i < T; ++i) {
      const __m256 da = _mm256_broadcast_ss(&scales[i][b]);
      acc[i] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s32[i]), _mm256_mul_ps(dw, da), acc[i]);
    }
  }
  for (int i = 0; i < T; ++i) _mm256_storeu_ps(p.y + (t + i) * p.y_stride + g * 8, acc[i]);
}

void gemm_q8_0x8(const GemmProblem& p, int64_t r0, int64_t r1) {
  const int64_t nb = p.n / 32;
  float scales[kTokens][kMaxBlocks];
  for (int64_t t = 0; t < p.n_tokens; t += kTokens) {
    const int64_t left = p.n_tokens - t < kTokens ? p.n_tokens - t : kTokens;
    for (int64_t i = 0; i < left; ++i) {
      block_scales(
          reinterpret_cast<const block_q8_0*>(p.act + static_cast<size_t>(t + i) * p.act_stride),
          nb, scales[i]);
    }
    for (int64_t g = r0 / 8; g < r1 / 8; ++g) {
      if (left == 4) {
        tile_q8<4>(p, g, t, scales);
      } else if (left == 3) {
        tile_q8<3>(p, g, t, scales);
      } else if (left == 2) {
        tile_q8<2>(p, g, t, scales);
      } else {
        tile_q8<1>(p, g, t, scales);
      }
    }
  }
}

void gemm_q4_0x8(const GemmProblem& p, int64_t r0, int64_t r1) {
  const int64_t nb = p.n / QK4_0;
  int32_t sums[kTokens][kMaxBlocks];
  float scales[kTokens][kMaxBlocks];
  for (int64_t t = 0; t < p.n_tokens; t += kTokens) {
    const int64_t left = p.n_tokens - t < kTokens ? p.n_tokens - t : kTokens;
    for (int64_t i = 0; i < left; ++i) {
      block_sums8(
          reinterpret_cast<const block_q8_0*>(p.act + static_cast<size_t>(t + i) * p.act_stride),
          nb, sums[i]);
      block_scales(
          reinterpret_cast<const block_q8_0*>(p.act + static_cast<size_t>(t + i) * p.act_stride),
          nb, scales[i]);
    }
    for (int64_t g = r0 / 8; g < r1 / 8; ++g) {
      if (left == 4) {
        tile<4>(p, g, t, sums, scales);
      } else if (left == 3) {
        tile<3>(p, g, t, sums, scales);
      } else if (left == 2) {
        tile<2>(p, g, t, sums, scales);
      } else {
        tile<1>(p, g, t, sums, scales);
      }
    }
  }
}

}  // namespace

GemmKernel find_repacked_gemm_avx2(TensorType w) {
  if (w == TensorType::Q4_0) return &gemm_q4_0x8;
  if (w == TensorType::Q8_0) return &gemm_q8_0x8;
  return nullptr;
}

}  // namespace thinkmesh::kernels
