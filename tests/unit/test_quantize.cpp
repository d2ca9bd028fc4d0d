// quantize_row_reference → dequantize_row round trips on many kinds of data, checked against
// each format's error bound. (Byte identity with llama.cpp's files is checked by the model test
// test_quantized_fixtures.)
#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "thinkmesh/error.h"
#include "thinkmesh/half.h"
#include "thinkmesh/tensor_type.h"

namespace thinkmesh {
namespace {

// Largest error of rounding a value of magnitude |v| to F16: half an ulp, at least half the
// smallest subnormal.
double fp16_rounding(double v) {
  return std::max(std::fabs(v) * 0x1p-11, 0x1p-25);
}

struct BlockStats {
  double amax = 0, min = 0, max = 0;
};

BlockStats stats(const float* x, int64_t n) {
  BlockStats s{0, x[0], x[0]};
  for (int64_t i = 0; i < n; ++i) {
    s.amax = std::max(s.amax, std::fabs(double{x[i]}));
    s.min = std::min(s.min, double{x[i]});
    s.max = std::max(s.max, double{x[i]});
  }
  return s;
}

// The largest |dequantized - original| a block may show.
//  - Q8_0: d = amax/127, rounding to nearest: d/2, plus the F16 rounding of d times |q| <= 127.
//  - Q4_0/Q5_0: d = -max/8 (/16); the extreme value maps exactly, the opposite side can be
//    clamped one level short: error up to d, plus F16 rounding of d times 8 (16) levels.
//  - Q4_1/Q5_1: d = range/15 (/31), nearest level: d/2, plus F16 rounding of d and of min.
//  - Q8_K: F32 scale amax/127, nearest: d/2.
//  - k-quants: scales are fitted by a search and quantized to 4..8 bits against one F16
//    super-block scale, so no tight closed form; the bound is a fraction of the super-block's
//    largest magnitude: half a step of the format's level count with room for the fitted scale
//    and the clipped outliers (Q2_K: 4 levels, Q3_K: 8, Q4_K: 16, Q5_K: 32, Q6_K: 64).
double error_bound(TensorType type, const float* x, int64_t n) {
  const BlockStats s = stats(x, n);
  const double slack = s.amax * 1e-6;  // float arithmetic in the quantizer
  switch (type) {
    case TensorType::Q8_0: {
      const double d = s.amax / 127;
      return d / 2 + 127 * fp16_rounding(d) + slack;
    }
    case TensorType::Q4_0:
      return s.amax / 8 + 8 * fp16_rounding(s.amax / 8) + slack;
    case TensorType::Q5_0:
      return s.amax / 16 + 16 * fp16_rounding(s.amax / 16) + slack;
    case TensorType::Q4_1: {
      const double d = (s.max - s.min) / 15;
      return d / 2 + 15 * fp16_rounding(d) + fp16_rounding(s.min) + slack;
    }
    case TensorType::Q5_1: {
      const double d = (s.max - s.min) / 31;
      return d / 2 + 31 * fp16_rounding(d) + fp16_rounding(s.min) + slack;
    }
    case TensorType::Q8_K:
      return s.amax / 127 / 2 + slack;
    // Second term: the F16 super-block scales (d, dmin) are absolute-precision limited near
    // zero (subnormal spacing 2^-24); their rounding is multiplied by up to
    // group-scale levels × value levels (+ min levels).
    case TensorType::Q2_K:
      return s.amax * 0.6 + (15 * 3 + 15) * 0x1p-25;
    case TensorType::Q3_K:
      return s.amax * 0.3 + 32 * 4 * 0x1p-25;
    case TensorType::Q4_K:
      return s.amax * 0.12 + (63 * 15 + 63) * 0x1p-25;
    case TensorType::Q5_K:
      return s.amax * 0.06 + (63 * 31 + 63) * 0x1p-25;
    case TensorType::Q6_K:
      return s.amax * 0.03 + 128 * 32 * 0x1p-25;
    default:
      return 0;
  }
}

using Generator = std::function<float(std::mt19937&, int64_t index)>;

struct DataCase {
  const char* name;
  Generator gen;
};

float gaussian(std::mt19937& rng, float sigma) {
  return std::normal_distribution<float>(0.0f, sigma)(rng);
}

const std::vector<DataCase>& data_cases() {
  static const std::vector<DataCase> cases = {
      {"gaussian", [](std::mt19937& r, int64_t) { return gaussian(r, 0.02f); }},
      {"unit_gaussian", [](std::mt19937& r, int64_t) { return gaussian(r, 1.0f); }},
      {"zeros", [](std::mt19937&, int64_t) { return 0.0f; }},
      {"constant_positive", [](std::mt19937&, int64_t) { return 0.75f; }},
      {"constant_negative", [](std::mt19937&, int64_t) { return -3.0f; }},
      {"huge", [](std::mt19937& r,
                  int64_t) { return std::uniform_real_distribution<float>(-3e4f, 3e4f)(r); }},
      {"tiny", [](std::mt19937& r, int64_t) { return gaussian(r, 1e-4f); }},
      {"negative_only", [](std::mt19937& r, int64_t) { return -std::fabs(gaussian(r, 1.0f)); }},
      {"positive_only", [](std::mt19937& r, int64_t) { return std::fabs(gaussian(r, 1.0f)); }},
      {"outliers",
       [](std::mt19937& r, int64_t i) {
         return i % 37 == 5 ? 50.0f * gaussian(r, 1.0f) : gaussian(r, 1.0f);
       }},
      {"sparse", [](std::mt19937& r, int64_t i) { return i % 11 == 0 ? gaussian(r, 1.0f) : 0.0f; }},
      {"ramp", [](std::mt19937&, int64_t i) { return static_cast<float>(i % 97) - 48.0f; }},
  };
  return cases;
}

const TensorType kBlockTypes[] = {TensorType::Q4_0, TensorType::Q4_1, TensorType::Q5_0,
                                  TensorType::Q5_1, TensorType::Q8_0, TensorType::Q8_K,
                                  TensorType::Q2_K, TensorType::Q3_K, TensorType::Q4_K,
                                  TensorType::Q5_K, TensorType::Q6_K};

std::vector<float> round_trip(TensorType type, const std::vector<float>& x) {
  const auto n = static_cast<int64_t>(x.size());
  std::vector<uint8_t> q(row_bytes(type, n));
  quantize_row_reference(type, x.data(), q.data(), n);
  std::vector<float> y(x.size());
  dequantize_row(type, q.data(), y.data(), n);
  return y;
}

class RoundTrip : public ::testing::TestWithParam<TensorType> {};

TEST_P(RoundTrip, ErrorWithinFormatBound) {
  const TensorType type = GetParam();
  const int64_t block = traits(type).block_size;
  for (const int64_t blocks : {int64_t{1}, int64_t{9}}) {
    for (const auto& c : data_cases()) {
      std::mt19937 rng(1234);
      std::vector<float> x(static_cast<size_t>(blocks * block));
      for (size_t i = 0; i < x.size(); ++i) x[i] = c.gen(rng, static_cast<int64_t>(i));
      const auto y = round_trip(type, x);
      for (int64_t b = 0; b < blocks; ++b) {
        const float* xb = x.data() + b * block;
        const float* yb = y.data() + b * block;
        const double bound = error_bound(type, xb, block);
        double worst = 0;
        for (int64_t i = 0; i < block; ++i)
          worst = std::max(worst, std::fabs(double{yb[i]} - xb[i]));
        EXPECT_LE(worst, bound) << name(type) << " on " << c.name << ", block " << b;
      }
    }
  }
}

TEST_P(RoundTrip, ZerosStayZeroAndConstantsAreClose) {
  const TensorType type = GetParam();
  const int64_t n = traits(type).block_size * 3;
  const auto y = round_trip(type, std::vector<float>(static_cast<size_t>(n), 0.0f));
  for (float v : y) EXPECT_EQ(v, 0.0f) << name(type);

  // A constant block: every value quantizes to the same level, so the output is constant too.
  const auto c = round_trip(type, std::vector<float>(static_cast<size_t>(n), 0.3f));
  for (float v : c) {
    EXPECT_EQ(v, c[0]) << name(type);
    EXPECT_NEAR(v, 0.3f, 0.3f * 0.05f) << name(type);
  }
}

TEST_P(RoundTrip, QuantizationIsDeterministicAndRowsAreIndependent) {
  // Quantizing two rows at once equals quantizing each alone (no state between blocks).
  const TensorType type = GetParam();
  const int64_t n = traits(type).block_size * 2;
  std::mt19937 rng(7);
  std::vector<float> x(static_cast<size_t>(2 * n));
  for (auto& v : x) v = gaussian(rng, 1.0f);
  std::vector<uint8_t> both(row_bytes(type, 2 * n)), first(row_bytes(type, n)),
      second(row_bytes(type, n));
  quantize_row_reference(type, x.data(), both.data(), 2 * n);
  quantize_row_reference(type, x.data(), first.data(), n);
  quantize_row_reference(type, x.data() + n, second.data(), n);
  EXPECT_EQ(std::memcmp(both.data(), first.data(), first.size()), 0);
  EXPECT_EQ(std::memcmp(both.data() + first.size(), second.data(), second.size()), 0);
}

INSTANTIATE_TEST_SUITE_P(AllBlockTypes, RoundTrip, ::testing::ValuesIn(kBlockTypes),
                         [](const auto& param_info) {
                           return std::string(name(param_info.param));
                         });

TEST(Quantize, Q4_0LargestMagnitudeMapsExactly) {
  // d = max / -8: the value of largest magnitude becomes level 0 and dequantizes to itself
  // (when it is exact in F16); here max = -4 → d = 0.5, and 3.5 → level 15.
  std::vector<float> x(32, 0.0f);
  x[0] = -4.0f;
  x[1] = 3.5f;
  x[2] = 1.0f;
  const auto y = round_trip(TensorType::Q4_0, x);
  EXPECT_EQ(y[0], -4.0f);
  EXPECT_EQ(y[1], 3.5f);
  EXPECT_EQ(y[2], 1.0f);
  EXPECT_EQ(y[3], 0.0f);
}

TEST(Quantize, Q8_KScaleSignFollowsLargestValue) {
  // iscale = -127 / max: a positive maximum gives a negative d and negated levels, and
  // bsums hold the sums of the levels of each 16-value group.
  std::vector<float> x(256, 0.0f);
  x[0] = 127.0f;
  x[1] = 2.5f;   // nearest_int(-2.5) rounds half to even: -2
  x[17] = 3.5f;  // -4
  struct {
    float d;
    int8_t qs[256];
    int16_t bsums[16];
  } blk;
  static_assert(sizeof blk == 292);
  quantize_row_reference(TensorType::Q8_K, x.data(), &blk, 256);
  EXPECT_EQ(blk.d, -1.0f);
  EXPECT_EQ(blk.qs[0], -127);
  EXPECT_EQ(blk.qs[1], -2);
  EXPECT_EQ(blk.qs[17], -4);
  EXPECT_EQ(blk.bsums[0], -129);
  EXPECT_EQ(blk.bsums[1], -4);
  for (int g = 2; g < 16; ++g) EXPECT_EQ(blk.bsums[g], 0);
}

TEST(Quantize, PlainTypesRoundAsHalfAndBfloat) {
  const std::vector<float> x = {1.0f, 0.1f, -65504.0f, 1e-8f, 3.14159f, 1e6f};
  const auto n = static_cast<int64_t>(x.size());
  std::vector<uint16_t> h(x.size()), b(x.size());
  quantize_row_reference(TensorType::F16, x.data(), h.data(), n);
  quantize_row_reference(TensorType::BF16, x.data(), b.data(), n);
  for (size_t i = 0; i < x.size(); ++i) {
    EXPECT_EQ(h[i], fp32_to_fp16(x[i]));
    EXPECT_EQ(b[i], fp32_to_bf16(x[i]));
  }
  EXPECT_EQ(h[0], 0x3C00);
  EXPECT_EQ(h[5], 0x7C00);  // overflow to +inf
  std::vector<float> f(x.size());
  quantize_row_reference(TensorType::F32, x.data(), f.data(), n);
  EXPECT_EQ(f, x);
}

TEST(Quantize, RejectsUnsupportedTypesAndBadLengths) {
  std::vector<float> x(256, 1.0f);
  std::vector<uint8_t> out(1024);
  for (TensorType t : {TensorType::IQ4_NL, TensorType::Q8_1, TensorType::I8, TensorType::TQ2_0}) {
    try {
      quantize_row_reference(t, x.data(), out.data(), 256);
      FAIL() << name(t) << " should be unsupported";
    } catch (const Error& e) {
      EXPECT_EQ(e.kind(), ErrorKind::unsupported);
      EXPECT_NE(std::string(e.what()).find(name(t)), std::string::npos) << e.what();
    }
  }
  try {
    quantize_row_reference(TensorType::Q8_0, x.data(), out.data(), 33);
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::invalid_argument);
  }
}

TEST(Quantize, NonFiniteInputDoesNotCrash) {
  // Garbage in, garbage out, but defined: no crash, output sized as promised.
  std::vector<float> x(256, 1.0f);
  x[3] = std::nanf("");
  x[9] = INFINITY;
  for (TensorType t : kBlockTypes) {
    std::vector<uint8_t> q(row_bytes(t, 256) + 16, 0xAB);
    quantize_row_reference(t, x.data(), q.data(), 256);
    for (size_t i = row_bytes(t, 256); i < q.size(); ++i) EXPECT_EQ(q[i], 0xAB) << name(t);
  }
}

}  // namespace
}  // namespace thinkmesh
