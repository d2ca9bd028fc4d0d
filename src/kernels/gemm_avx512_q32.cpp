// AVX-512 VNNI kernels for the 32-value block types Q4_0, Q5_0 and Q8_0 against Q8_0
// activations. Compiled with -mavx512f/bw/vl/dq -mavx512vnni -mfma -mf16c (see CMakeLists.txt);
// only called after isa_supported(Isa::avx512).
//
// One zmm holds two blocks (64 values). vpdpbusd multiplies unsigned by signed bytes, so every
// weight is made unsigned by an offset (Q4_0: q in 0..15 for the value q-8; Q5_0: 0..31 for
// q-16; Q8_0: q+128 by flipping the sign bit) and the offset times the activation sum is
// subtracted inside the same instruction: the int32 accumulator starts at -offset*sum(a).
//   int sum per block = sum((q+off)*a) - off*sum(a) = sum(q*a)          (exact, as ggml)
//   y += float(int sum) * d_w * d_a                                     (per block, in lanes)
#include <immintrin.h>

#include <cstring>

#include "kernels/gemm.h"
#include "kernels/tile_driver.h"
#include "tensor/blocks.h"

namespace thinkmesh::kernels {
namespace {

// [d0 x8 | d1 x8] as floats from two F16 scales.
inline __m512 scale_pair(uint16_t d0, uint16_t d1) {
  return _mm512_cvtph_ps(_mm256_set_m128i(_mm_set1_epi16(static_cast<short>(d1)),
                                          _mm_set1_epi16(static_cast<short>(d0))));
}

// The int8 values of activation blocks b (and b+1 when `two`; zeros otherwise).
inline __m512i load_act_pair(const block_q8_0* y, bool two) {
  const __m256i lo = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(y[0].qs));
  const __m256i hi =
      two ? _mm256_loadu_si256(reinterpret_cast<const __m256i*>(y[1].qs)) : _mm256_setzero_si256();
  return _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
}

// Nibbles of 16 bytes -> 32 bytes [low nibbles | high nibbles] (values 0..15 then 16..31).
inline __m256i unpack_nibbles(const uint8_t* qs) {
  const __m128i q = _mm_loadu_si128(reinterpret_cast<const __m128i*>(qs));
  const __m256i both = _mm256_set_m128i(_mm_srli_epi16(q, 4), q);
  return _mm256_and_si256(both, _mm256_set1_epi8(0x0F));
}

struct Q4_0 {
  using Block = block_q4_0;
  static constexpr int kShift = 3;  // offset 8
  static __m512i weights(const Block* x, bool two) {
    const __m256i lo = unpack_nibbles(x[0].qs);
    const __m256i hi = two ? unpack_nibbles(x[1].qs) : _mm256_setzero_si256();
    return _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
  }
};

struct Q5_0 {
  using Block = block_q5_0;
  static constexpr int kShift = 4;  // offset 16
  static __m512i weights(const Block* x, bool two) {
    uint32_t h0, h1 = 0;
    std::memcpy(&h0, x[0].qh, 4);
    if (two) std::memcpy(&h1, x[1].qh, 4);
    const __m256i lo = unpack_nibbles(x[0].qs);
    const __m256i hi = two ? unpack_nibbles(x[1].qs) : _mm256_setzero_si256();
    const __m512i q4 = _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
    const __mmask64 high_bits = (static_cast<uint64_t>(h1) << 32) | h0;  // bit j: value j
    return _mm512_or_si512(q4, _mm512_maskz_mov_epi8(high_bits, _mm512_set1_epi8(0x10)));
  }
};

struct Q8_0 {
  using Block = block_q8_0;
  static constexpr int kShift = 7;  // offset 128
  static __m512i weights(const Block* x, bool two) {
    return _mm512_xor_si512(load_act_pair(x, two), _mm512_set1_epi8(static_cast<char>(0x80)));
  }
};

template <class D>
struct Q32Kernel {
  static constexpr int kRows = 4;
  static constexpr int kTokens = 4;

  template <int R, int T>
  static void tile(const GemmProblem& p, int64_t r, int64_t t) {
    using Block = typename D::Block;
    const int64_t nb = p.n / 32;
    const Block* x[R];
    const block_q8_0* y[T];
    for (int j = 0; j < R; ++j)
      x[j] = reinterpret_cast<const Block*>(p.w + static_cast<size_t>(r + j) * p.w_stride);
    for (int i = 0; i < T; ++i)
      y[i] = reinterpret_cast<const block_q8_0*>(p.act + static_cast<size_t>(t + i) * p.act_stride);
    __m512 acc[R][T];
    for (int j = 0; j < R; ++j)
      for (int i = 0; i < T; ++i) acc[j][i] = _mm512_setzero_ps();
    const __m512i ones = _mm512_set1_epi8(1);
    const __m512i zero = _mm512_setzero_si512();

    for (int64_t b = 0; b < nb; b += 2) {
      const bool two = b + 1 < nb;
      __m512i a[T], init[T];
      __m512 da[T];
      for (int i = 0; i < T; ++i) {
        a[i] = load_act_pair(y[i] + b, two);
        const __m512i sum4 = _mm512_dpbusd_epi32(zero, ones, a[i]);  // sums of 4 values
        init[i] = _mm512_sub_epi32(zero, _mm512_slli_epi32(sum4, D::kShift));
        da[i] = scale_pair(y[i][b].d, two ? y[i][b + 1].d : 0);
      }
      for (int j = 0; j < R; ++j) {
        const __m512i w = D::weights(x[j] + b, two);
        const __m512 dw = scale_pair(x[j][b].d, two ? x[j][b + 1].d : 0);
        for (int i = 0; i < T; ++i) {
          const __m512i isum = _mm512_dpbusd_epi32(init[i], w, a[i]);
          acc[j][i] =
              _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum), _mm512_mul_ps(dw, da[i]), acc[j][i]);
        }
      }
    }
    for (int i = 0; i < T; ++i) {
      float* out = p.y + (t + i) * p.y_stride + r;
      for (int j = 0; j < R; ++j) out[j] = _mm512_reduce_add_ps(acc[j][i]);
    }
  }
};

void gemm_q4_0(const GemmProblem& p, int64_t r0, int64_t r1) {
  run_tiles<Q32Kernel<Q4_0>>(p, r0, r1);
}
void gemm_q5_0(const GemmProblem& p, int64_t r0, int64_t r1) {
  run_tiles<Q32Kernel<Q5_0>>(p, r0, r1);
}
void gemm_q8_0(const GemmProblem& p, int64_t r0, int64_t r1) {
  run_tiles<Q32Kernel<Q8_0>>(p, r0, r1);
}

}  // namespace

GemmKernel find_gemm_avx512_q32(TensorType w) {
  switch (w) {
    case TensorType::Q4_0:
      return &gemm_q4_0;
    case TensorType::Q5_0:
      return &gemm_q5_0;
    case TensorType::Q8_0:
      return &gemm_q8_0;
    default:
      return nullptr;
  }
}

}  // namespace thinkmesh::kernels
