// Small AVX2 helpers shared by the gemm/attention/element-wise AVX2 files. Included only by
// translation units compiled with -mavx2 -mfma -mf16c; everything sits in an anonymous
// namespace so no AVX2 copy of an inline function can be merged into another ISA's code.
#pragma once

#include <immintrin.h>

#include <cstdint>
#include <cstring>

namespace thinkmesh::kernels {
namespace {

// Sum of the 8 lanes.
inline float hsum(__m256 v) {
  const __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  const __m128 s2 = _mm_add_ps(s, _mm_movehl_ps(s, s));
  return _mm_cvtss_f32(_mm_add_ss(s2, _mm_movehdup_ps(s2)));
}

// exp(x): Cody-Waite range reduction and Cephes' degree-6 polynomial, relative error ~2e-7;
// 0 below -87.3 (so exp(-inf) = 0), arguments above 88.3 clamped (no overflow to inf).
inline __m256 exp256(__m256 x) {
  const __m256 lo = _mm256_set1_ps(-87.3f);
  const __m256 underflow = _mm256_cmp_ps(x, lo, _CMP_LT_OQ);
  x = _mm256_min_ps(_mm256_max_ps(x, lo), _mm256_set1_ps(88.3f));
  const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                                   _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
  __m256 p = _mm256_set1_ps(1.9875691500e-4f);
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
  p = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
  const __m256i e =
      _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
  return _mm256_andnot_ps(underflow, _mm256_mul_ps(p, _mm256_castsi256_ps(e)));
}

// One F16 scale broadcast to 8 lanes.
inline __m256 f16x8(uint16_t d) {
  return _mm256_set1_ps(_cvtsh_ss(d));
}

// 4 bytes at p broadcast to the 8 32-bit lanes (an activation quad against 8 interleaved rows).
inline __m256i bcast4(const void* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return _mm256_set1_epi32(v);
}

// 16 bytes of nibbles -> 32 bytes [low nibbles (values 0..15) | high nibbles (16..31)].
inline __m256i unpack_nibbles(const uint8_t* qs) {
  const __m128i q = _mm_loadu_si128(reinterpret_cast<const __m128i*>(qs));
  return _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(q, 4), q), _mm256_set1_epi8(0x0F));
}

// 32 bits -> 32 bytes, 0x10 where the bit is set (byte j <- bit j).
inline __m256i bits_to_0x10(uint32_t bits) {
  const __m256i rep =
      _mm256_shuffle_epi8(_mm256_set1_epi32(static_cast<int>(bits)),
                          _mm256_set_epi64x(0x0303030303030303, 0x0202020202020202,
                                            0x0101010101010101, 0x0000000000000000));
  const __m256i bit = _mm256_set1_epi64x(static_cast<long long>(0x8040201008040201ull));
  const __m256i set = _mm256_cmpeq_epi8(_mm256_and_si256(rep, bit), bit);
  return _mm256_and_si256(set, _mm256_set1_epi8(0x10));
}

// An empty asm that makes the compiler treat v as used and redefined here: GCC 12 otherwise
// re-associates a chain of integer adds (the per-token sums of the repacked tiles) into a tree
// over all its terms, keeping every product live at once, and spills them to the stack.
inline void pin(__m256i& v) {
  asm("" : "+x"(v));
}

}  // namespace
}  // namespace thinkmesh::kernels
