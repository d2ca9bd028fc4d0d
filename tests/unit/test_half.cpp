#include <cmath>
#include <cstdint>

#include <gtest/gtest.h>

#include "thinkmesh/half.h"

namespace thinkmesh {
namespace {

TEST(Half, EveryF16RoundTripsThroughF32) {
  for (uint32_t h = 0; h < 0x10000; ++h) {
    const float f = fp16_to_fp32(static_cast<uint16_t>(h));
    if (std::isnan(f)) continue;  // NaN payloads are canonicalised
    ASSERT_EQ(fp32_to_fp16(f), h) << "h=" << h;
  }
}

TEST(Half, RoundsToNearestEven) {
  EXPECT_EQ(fp32_to_fp16(1.0f), 0x3C00);
  // 1 + 2^-11 lies halfway between 1 and the next F16; ties go to the even mantissa (1.0).
  EXPECT_EQ(fp32_to_fp16(1.0f + std::ldexp(1.0f, -11)), 0x3C00);
  EXPECT_EQ(fp32_to_fp16(1.0f + 3 * std::ldexp(1.0f, -11)), 0x3C02);
  EXPECT_EQ(fp32_to_fp16(65520.0f), 0x7C00);  // overflows to +inf
  EXPECT_EQ(fp32_to_fp16(-0.0f), 0x8000);
}

TEST(Half, BFloat16) {
  EXPECT_EQ(fp32_to_bf16(1.0f), 0x3F80);
  EXPECT_FLOAT_EQ(bf16_to_fp32(0x3F80), 1.0f);
  EXPECT_EQ(fp32_to_bf16(std::bit_cast<float>(0x3F808000u)), 0x3F80);  // tie → even
  EXPECT_EQ(fp32_to_bf16(std::bit_cast<float>(0x3F818000u)), 0x3F82);  // tie → even (up)
}

}  // namespace
}  // namespace thinkmesh
