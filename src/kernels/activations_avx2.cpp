// AVX2 conversion of activation rows, bit-identical to quantize_activations (the reference,
// vec_dot_scalar.cpp / quantize_kquants.cpp), which itself mirrors ggml's x86 code:
//   Q8_0: d = amax/127 (F16), q = round_half_even(x * 127/amax), saturated to int8
//   Q8_1: as Q8_0, plus s = F16(d * sum(q)) from the int32 sum of the rounded values
//   Q8_K: d = max/-127 (F32, max = signed value of largest magnitude, first one), q =
//         nearest_int(x * -127/max) via the 1.5*2^23 trick, min(q, 127); bsums per 16
//   F16:  round to nearest even (vcvtps2ph); BF16: round to nearest even by integer add
// Compiled with -mavx2 -mfma -mf16c. tests/unit/test_gemm.cpp checks the bytes.
#include <immintrin.h>

#include <cstring>

#include "kernels/gemm.h"
#include "tensor/blocks.h"

namespace thinkmesh::kernels {
namespace {

inline float hmax(__m256 v) {
  __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  m = _mm_max_ps(m, _mm_movehl_ps(m, m));
  m = _mm_max_ss(m, _mm_movehdup_ps(m));
  return _mm_cvtss_f32(m);
}

// Four vectors of 8 int32 -> 32 int8 in order, with signed saturation.
inline __m256i pack_i32_to_i8(__m256i a, __m256i b, __m256i c, __m256i d) {
  const __m256i ab = _mm256_packs_epi32(a, b);  // lanes interleaved per 128 bits
  const __m256i cd = _mm256_packs_epi32(c, d);
  const __m256i abcd = _mm256_packs_epi16(ab, cd);
  return _mm256_permutevar8x32_epi32(abcd, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
}

// Q8_0, and Q8_1 (kWithSum) with s = F16(d * sum(q)) as the reference computes it (the int32
// sum of the rounded values, before saturation).
template <class Block, bool kWithSum>
void q8(const float* x, Block* y, int64_t nb) {
  const __m256 sign = _mm256_set1_ps(-0.0f);
  for (int64_t i = 0; i < nb; ++i, x += 32) {
    __m256 v[4];
    __m256 amax = _mm256_setzero_ps();
    for (int k = 0; k < 4; ++k) {
      v[k] = _mm256_loadu_ps(x + 8 * k);
      amax = _mm256_max_ps(amax, _mm256_andnot_ps(sign, v[k]));
    }
    const float m = hmax(amax);
    const float d = m / 127.f;
    y[i].d = _cvtss_sh(d, _MM_FROUND_TO_NEAREST_INT);
    const __m256 id = _mm256_set1_ps(m != 0.0f ? 127.f / m : 0.0f);
    __m256i q[4];
    for (int k = 0; k < 4; ++k) {
      const __m256 r =
          _mm256_round_ps(_mm256_mul_ps(v[k], id), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
      q[k] = _mm256_cvtps_epi32(r);
    }
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(y[i].qs),
                        pack_i32_to_i8(q[0], q[1], q[2], q[3]));
    if constexpr (kWithSum) {
      const __m256i s4 =
          _mm256_add_epi32(_mm256_add_epi32(q[0], q[1]), _mm256_add_epi32(q[2], q[3]));
      __m128i c = _mm_add_epi32(_mm256_castsi256_si128(s4), _mm256_extracti128_si256(s4, 1));
      c = _mm_add_epi32(c, _mm_shuffle_epi32(c, 0x4E));
      c = _mm_add_epi32(c, _mm_shuffle_epi32(c, 0xB1));
      y[i].s = _cvtss_sh(d * static_cast<float>(_mm_cvtsi128_si32(c)), _MM_FROUND_TO_NEAREST_INT);
    }
  }
}

void q8_k(const float* x, block_q8_K* y, int64_t nb) {
  const __m256 sign = _mm256_set1_ps(-0.0f);
  for (int64_t i = 0; i < nb; ++i, x += QK_K) {
    __m256 amax8 = _mm256_setzero_ps();
    for (int k = 0; k < QK_K; k += 8)
      amax8 = _mm256_max_ps(amax8, _mm256_andnot_ps(sign, _mm256_loadu_ps(x + k)));
    const float amax = hmax(amax8);
    if (amax == 0) {
      std::memset(&y[i], 0, sizeof y[i]);
      continue;
    }
    // the first value of largest magnitude, with its sign: 8 lanes compared at a time
    float max = 0;
    const __m256 vamax = _mm256_set1_ps(amax);
    for (int k = 0; k < QK_K; k += 8) {
      const __m256 v = _mm256_loadu_ps(x + k);
      const int hit =
          _mm256_movemask_ps(_mm256_cmp_ps(_mm256_andnot_ps(sign, v), vamax, _CMP_EQ_OQ));
      if (hit != 0) {
        max = x[k + __builtin_ctz(static_cast<unsigned>(hit))];
        break;
      }
    }
    const float iscale = -127.f / max;
    const __m256 vs = _mm256_set1_ps(iscale);
    const __m256 magic = _mm256_set1_ps(12582912.f);
    const __m256i mant = _mm256_set1_epi32(0x007fffff), bias = _mm256_set1_epi32(0x00400000);
    const __m256i top = _mm256_set1_epi32(127);
    const __m256i ones8 = _mm256_set1_epi8(1), ones16 = _mm256_set1_epi16(1);
    for (int k = 0; k < QK_K; k += 32) {
      __m256i q[4];
      for (int c = 0; c < 4; ++c) {
        const __m256 biased =
            _mm256_add_ps(_mm256_mul_ps(vs, _mm256_loadu_ps(x + k + 8 * c)), magic);
        const __m256i n =
            _mm256_sub_epi32(_mm256_and_si256(_mm256_castps_si256(biased), mant), bias);
        q[c] = _mm256_min_epi32(n, top);
      }
      const __m256i packed = pack_i32_to_i8(q[0], q[1], q[2], q[3]);
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(y[i].qs + k), packed);
      // bsums of the two 16-value groups: byte pairs -> int16, -> int32 quads (lanes 0-3:
      // first group, 4-7: second), then two horizontal adds within each 128-bit half
      const __m256i quads = _mm256_madd_epi16(_mm256_maddubs_epi16(ones8, packed), ones16);
      __m256i h = _mm256_hadd_epi32(quads, quads);
      h = _mm256_hadd_epi32(h, h);
      y[i].bsums[k / 16] = static_cast<int16_t>(_mm256_cvtsi256_si32(h));
      y[i].bsums[k / 16 + 1] =
          static_cast<int16_t>(_mm_cvtsi128_si32(_mm256_extracti128_si256(h, 1)));
    }
    y[i].d = 1 / iscale;
  }
}

void f16(const float* x, uint16_t* y, int64_t n) {
  int64_t k = 0;
  for (; k + 8 <= n; k += 8) {
    _mm_storeu_si128(reinterpret_cast<__m128i*>(y + k),
                     _mm256_cvtps_ph(_mm256_loadu_ps(x + k), _MM_FROUND_TO_NEAREST_INT));
  }
  for (; k < n; ++k) y[k] = _cvtss_sh(x[k], _MM_FROUND_TO_NEAREST_INT);
}

}  // namespace

// Returns false when the type has no AVX2 path (the caller uses the reference).
bool prepare_activations_avx2(TensorType act_type, const float* x, void* dst, int64_t n) {
  switch (act_type) {
    case TensorType::Q8_0:
      q8<block_q8_0, false>(x, static_cast<block_q8_0*>(dst), n / 32);
      return true;
    case TensorType::Q8_1:
      q8<block_q8_1, true>(x, static_cast<block_q8_1*>(dst), n / 32);
      return true;
    case TensorType::Q8_K:
      q8_k(x, static_cast<block_q8_K*>(dst), n / QK_K);
      return true;
    case TensorType::F16:
      f16(x, static_cast<uint16_t*>(dst), n);
      return true;
    case TensorType::F32:
      std::memcpy(dst, x, static_cast<size_t>(n) * sizeof(float));
      return true;
    default:
      return false;
  }
}

}  // namespace thinkmesh::kernels
