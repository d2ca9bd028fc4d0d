// The scalar reference kernels: activation quantization on hand-computed blocks, and every
// weight type's vec_dot against a double-precision dot of the dequantized weights and the
// dequantized activations.
#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "kernels/vec_dot.h"
#include "tensor/blocks.h"
#include "thinkmesh/error.h"
#include "thinkmesh/half.h"
#include "thinkmesh/tensor_type.h"

namespace thinkmesh::kernels {
namespace {

const TensorType kWeightTypes[] = {
    TensorType::F32,  TensorType::F16,  TensorType::BF16, TensorType::Q4_0, TensorType::Q4_1,
    TensorType::Q5_0, TensorType::Q5_1, TensorType::Q8_0, TensorType::Q2_K, TensorType::Q3_K,
    TensorType::Q4_K, TensorType::Q5_K, TensorType::Q6_K};

TEST(ActivationType, MirrorsGgmlCpu) {
  EXPECT_EQ(activation_type(TensorType::F32), TensorType::F32);
  EXPECT_EQ(activation_type(TensorType::F16), TensorType::F16);
  EXPECT_EQ(activation_type(TensorType::BF16), TensorType::BF16);
  EXPECT_EQ(activation_type(TensorType::Q4_0), TensorType::Q8_0);
  EXPECT_EQ(activation_type(TensorType::Q5_0), TensorType::Q8_0);
  EXPECT_EQ(activation_type(TensorType::Q8_0), TensorType::Q8_0);
  EXPECT_EQ(activation_type(TensorType::Q4_1), TensorType::Q8_1);
  EXPECT_EQ(activation_type(TensorType::Q5_1), TensorType::Q8_1);
  for (TensorType t :
       {TensorType::Q2_K, TensorType::Q3_K, TensorType::Q4_K, TensorType::Q5_K, TensorType::Q6_K})
    EXPECT_EQ(activation_type(t), TensorType::Q8_K);
  EXPECT_THROW(activation_type(TensorType::IQ2_XS), Error);
}

TEST(QuantizeActivations, Q8_0RoundsHalfToEvenWithScale127OverMax) {
  // amax = 127 → d = 1, multiplier 1: the values themselves, rounded half to even.
  std::vector<float> x(32, 0.0f);
  x[0] = -127.0f;
  x[1] = 2.5f;
  x[2] = 3.5f;
  x[3] = -2.5f;
  x[4] = 0.5f;
  x[5] = 1.49f;
  block_q8_0 blk;
  quantize_activations(TensorType::Q8_0, x.data(), &blk, 32);
  EXPECT_EQ(blk.d, 0x3C00);  // 1.0
  const int expected[6] = {-127, 2, 4, -2, 0, 1};
  for (int j = 0; j < 6; ++j) EXPECT_EQ(blk.qs[j], expected[j]) << j;
  for (int j = 6; j < 32; ++j) EXPECT_EQ(blk.qs[j], 0);
}

TEST(QuantizeActivations, Q8_1StoresScaledSum) {
  // amax = 63.5 → d = 0.5, multiplier 2: q = 2x. s = d * sum(q) = sum(x) here.
  std::vector<float> x(32);
  for (int j = 0; j < 32; ++j) x[j] = 0.5f * static_cast<float>(j * 4 - 64);  // -32 .. 30
  x[0] = 63.5f;
  block_q8_1 blk;
  quantize_activations(TensorType::Q8_1, x.data(), &blk, 32);
  EXPECT_EQ(fp16_to_fp32(blk.d), 0.5f);
  int sum = 0;
  for (int j = 0; j < 32; ++j) {
    EXPECT_EQ(blk.qs[j], static_cast<int>(2 * x[j])) << j;
    sum += blk.qs[j];
  }
  EXPECT_EQ(fp16_to_fp32(blk.s), 0.5f * static_cast<float>(sum));
}

TEST(QuantizeActivations, AllZeroBlocks) {
  std::vector<float> x(256, 0.0f);
  block_q8_K k;
  std::memset(&k, 0x5A, sizeof k);
  quantize_activations(TensorType::Q8_K, x.data(), &k, 256);
  EXPECT_EQ(k.d, 0.0f);
  for (int g = 0; g < 16; ++g) EXPECT_EQ(k.bsums[g], 0);
  for (int j = 0; j < 256; ++j) EXPECT_EQ(k.qs[j], 0);
  block_q8_0 b;
  quantize_activations(TensorType::Q8_0, x.data(), &b, 32);
  EXPECT_EQ(b.d, 0);
  for (int j = 0; j < 32; ++j) EXPECT_EQ(b.qs[j], 0);
}

// Dequantized activations (Q8_1 has no dequantize_row: d * q by hand).
std::vector<double> dequantize_activations(TensorType act, const void* data, int64_t n) {
  std::vector<double> out(static_cast<size_t>(n));
  if (act == TensorType::Q8_1) {
    const auto* b = static_cast<const block_q8_1*>(data);
    for (int64_t i = 0; i < n; ++i)
      out[i] = double{fp16_to_fp32(b[i / 32].d)} * b[i / 32].qs[i % 32];
    return out;
  }
  std::vector<float> f(static_cast<size_t>(n));
  dequantize_row(act, data, f.data(), n);
  for (int64_t i = 0; i < n; ++i) out[i] = f[i];
  return out;
}

struct Prepared {
  std::vector<uint8_t> weights, acts;
  std::vector<double> w, a;  // dequantized
};

Prepared prepare(TensorType w, int64_t n, std::mt19937& rng, float w_sigma, float a_sigma) {
  Prepared p;
  std::normal_distribution<float> wd(0.0f, w_sigma), ad(0.0f, a_sigma);
  std::vector<float> wf(static_cast<size_t>(n)), af(static_cast<size_t>(n));
  for (auto& v : wf) v = wd(rng);
  for (auto& v : af) v = ad(rng);
  p.weights.resize(row_bytes(w, n));
  quantize_row_reference(w, wf.data(), p.weights.data(), n);
  const TensorType act = activation_type(w);
  p.acts.resize(row_bytes(act, n));
  quantize_activations(act, af.data(), p.acts.data(), n);
  std::vector<float> wq(static_cast<size_t>(n));
  dequantize_row(w, p.weights.data(), wq.data(), n);
  p.w.assign(wq.begin(), wq.end());
  p.a = dequantize_activations(act, p.acts.data(), n);
  return p;
}

// Allowed |vec_dot - exact|: the kernels' float rounding (a few ulps per block, accumulated over
// the blocks) relative to sum |w_i a_i|. For Q4_1/Q5_1 the min term uses Q8_1's s, an F16
// rounding of d * sum(q): up to |m| * |s| * 2^-11 per block beyond that.
double allowed_error(TensorType w, const Prepared& p, int64_t n, double abs_sum) {
  const int64_t blocks = n / traits(w).block_size;
  double bound = abs_sum * static_cast<double>(blocks + 16) * 0x1p-23 + 1e-30;
  if (w == TensorType::Q4_1 || w == TensorType::Q5_1) {
    const auto* s_blocks = reinterpret_cast<const block_q8_1*>(p.acts.data());
    const size_t stride = traits(w).type_size;
    for (int64_t b = 0; b < blocks; ++b) {
      uint16_t m_bits;  // m follows d in both block_q4_1 and block_q5_1
      std::memcpy(&m_bits, p.weights.data() + static_cast<size_t>(b) * stride + 2, 2);
      const double m = std::fabs(double{fp16_to_fp32(m_bits)});
      const double s = std::fabs(double{fp16_to_fp32(s_blocks[b].s)});
      bound += m * (s * 0x1p-11 + 0x1p-25);
    }
  }
  return bound;
}

class VecDot : public ::testing::TestWithParam<TensorType> {};

TEST_P(VecDot, MatchesDoubleDotOfDequantizedOperands) {
  const TensorType w = GetParam();
  const int64_t block = traits(w).block_size == 1 ? 32 : traits(w).block_size;
  std::mt19937 rng(99);
  // 1 block, a few blocks, many blocks; plain types also at odd lengths.
  std::vector<int64_t> sizes = {block, 3 * block, 37 * block};
  if (traits(w).block_size == 1) sizes.insert(sizes.end(), {1, 7, 333});
  for (const int64_t n : sizes) {
    for (const auto& [ws, as] : {std::pair{0.02f, 1.0f}, std::pair{1.0f, 30.0f}}) {
      const Prepared p = prepare(w, n, rng, ws, as);
      double exact = 0, abs_sum = 0;
      for (int64_t i = 0; i < n; ++i) {
        exact += p.w[i] * p.a[i];
        abs_sum += std::fabs(p.w[i] * p.a[i]);
      }
      const float got = vec_dot(w, n, p.weights.data(), p.acts.data());
      EXPECT_NEAR(got, exact, allowed_error(w, p, n, abs_sum))
          << name(w) << " n=" << n << " sigma " << ws << "/" << as;
    }
  }
}

TEST_P(VecDot, ZeroActivationsGiveZero) {
  const TensorType w = GetParam();
  const int64_t n = traits(w).block_size == 1 ? 64 : 2 * traits(w).block_size;
  std::mt19937 rng(5);
  Prepared p = prepare(w, n, rng, 1.0f, 1.0f);
  std::vector<float> zeros(static_cast<size_t>(n), 0.0f);
  quantize_activations(activation_type(w), zeros.data(), p.acts.data(), n);
  EXPECT_EQ(vec_dot(w, n, p.weights.data(), p.acts.data()), 0.0f) << name(w);
}

TEST_P(VecDot, MatvecIsOneVecDotPerRow) {
  const TensorType w = GetParam();
  const int64_t n = traits(w).block_size == 1 ? 96 : 2 * traits(w).block_size;
  const int64_t rows = 5;
  std::mt19937 rng(11);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  std::vector<float> wf(static_cast<size_t>(rows * n)), x(static_cast<size_t>(n));
  for (auto& v : wf) v = nd(rng);
  for (auto& v : x) v = nd(rng);
  const size_t rb = row_bytes(w, n);
  std::vector<uint8_t> weights(rb * rows);
  for (int64_t r = 0; r < rows; ++r)
    quantize_row_reference(w, wf.data() + r * n, weights.data() + r * rb, n);
  std::vector<float> y(static_cast<size_t>(rows));
  matvec_reference(w, weights.data(), rows, n, x.data(), y.data());
  std::vector<uint8_t> act(row_bytes(activation_type(w), n));
  quantize_activations(activation_type(w), x.data(), act.data(), n);
  for (int64_t r = 0; r < rows; ++r)
    EXPECT_EQ(y[r], vec_dot(w, n, weights.data() + r * rb, act.data())) << name(w) << " row " << r;
}

INSTANTIATE_TEST_SUITE_P(AllWeightTypes, VecDot, ::testing::ValuesIn(kWeightTypes),
                         [](const auto& param_info) {
                           return std::string(name(param_info.param));
                         });

TEST(VecDot, Q8_0IsIntegerSumTimesScales) {
  // One block: weights q = 1..32 with d = 0.5, activations all 2 with d = 0.25 (values 0.5).
  block_q8_0 wblk, ablk;
  wblk.d = 0x3800;
  ablk.d = 0x3400;
  int sum = 0;
  for (int j = 0; j < 32; ++j) {
    wblk.qs[j] = static_cast<int8_t>(j + 1);
    ablk.qs[j] = 2;
    sum += (j + 1) * 2;
  }
  EXPECT_EQ(vec_dot(TensorType::Q8_0, 32, &wblk, &ablk), static_cast<float>(sum) * 0.125f);
}

TEST(VecDot, F16ActivationsAreRoundedToHalf) {
  // x = 1 + 2^-12 is not an F16 value; it rounds to 1, so w·x with w = 1 gives exactly 1.
  const std::vector<float> x = {1.0f + 0x1p-12f};
  const uint16_t w = 0x3C00;
  float y = 0;
  matvec_reference(TensorType::F16, &w, 1, 1, x.data(), &y);
  EXPECT_EQ(y, 1.0f);
  float y32 = 0;
  const float w32 = 1.0f;
  matvec_reference(TensorType::F32, &w32, 1, 1, x.data(), &y32);
  EXPECT_EQ(y32, 1.0f + 0x1p-12f);
}

TEST(VecDot, RejectsUnsupportedTypesAndBadLengths) {
  std::vector<uint8_t> buf(4096);
  for (TensorType t : {TensorType::Q8_K, TensorType::IQ4_NL, TensorType::I32}) {
    try {
      vec_dot(t, 256, buf.data(), buf.data());
      FAIL() << name(t);
    } catch (const Error& e) {
      EXPECT_EQ(e.kind(), ErrorKind::unsupported);
      EXPECT_NE(std::string(e.what()).find(name(t)), std::string::npos) << e.what();
    }
    EXPECT_FALSE(has_vec_dot(t));
  }
  try {
    vec_dot(TensorType::Q4_K, 128, buf.data(), buf.data());
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::invalid_argument);
  }
  std::vector<float> x(64, 1.0f);
  EXPECT_THROW(quantize_activations(TensorType::Q4_0, x.data(), buf.data(), 64), Error);
}

}  // namespace
}  // namespace thinkmesh::kernels
