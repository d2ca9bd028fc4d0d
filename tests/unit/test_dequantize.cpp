// dequantize_row on hand-built blocks. Each block is assembled here from the format's layout
// (ggml-common.h / ggml-quants.c at llama.cpp c392e50) with small integer levels and power-of-two
// scales, so every expected value is exact and computed independently of the dequantizer.
#include <cstring>
#include <vector>

#include <gtest/gtest.h>

#include "tensor/blocks.h"
#include "thinkmesh/error.h"
#include "thinkmesh/half.h"
#include "thinkmesh/tensor_type.h"

namespace thinkmesh {
namespace {

template <class Block>
std::vector<float> dequantize_block(TensorType type, const Block& block) {
  std::vector<float> out(static_cast<size_t>(traits(type).block_size));
  dequantize_row(type, &block, out.data(), static_cast<int64_t>(out.size()));
  return out;
}

constexpr uint16_t kHalfOne = 0x3C00;      // 1.0 in F16
constexpr uint16_t kHalfHalf = 0x3800;     // 0.5
constexpr uint16_t kHalfQuarter = 0x3400;  // 0.25
constexpr uint16_t kHalfTwo = 0x4000;      // 2.0
constexpr uint16_t kHalfMinusOne = 0xBC00;

TEST(Dequantize, PlainTypes) {
  const float f32[3] = {1.5f, -0.0f, 3e38f};
  float out[3];
  dequantize_row(TensorType::F32, f32, out, 3);
  EXPECT_EQ(std::memcmp(f32, out, sizeof f32), 0);

  const uint16_t f16[4] = {kHalfOne, 0xC000 /* -2 */, 0x7BFF /* 65504 */, 0x0001 /* 2^-24 */};
  float h[4];
  dequantize_row(TensorType::F16, f16, h, 4);
  EXPECT_EQ(h[0], 1.0f);
  EXPECT_EQ(h[1], -2.0f);
  EXPECT_EQ(h[2], 65504.0f);
  EXPECT_EQ(h[3], 0x1p-24f);

  const uint16_t bf16[2] = {0x3F80 /* 1 */, 0xC2F7 /* -123.5 */};
  float b[2];
  dequantize_row(TensorType::BF16, bf16, b, 2);
  EXPECT_EQ(b[0], 1.0f);
  EXPECT_EQ(b[1], -123.5f);
}

TEST(Dequantize, Q4_0NibblesMapToMinus8To7TimesD) {
  block_q4_0 blk{};
  blk.d = kHalfHalf;
  for (int j = 0; j < 16; ++j) blk.qs[j] = static_cast<uint8_t>(j | ((15 - j) << 4));
  const auto y = dequantize_block(TensorType::Q4_0, blk);
  for (int j = 0; j < 16; ++j) {
    EXPECT_EQ(y[j], -4.0f + 0.5f * j) << j;      // low nibbles: values 0..15
    EXPECT_EQ(y[j + 16], 3.5f - 0.5f * j) << j;  // high nibbles: values 16..31
  }
}

TEST(Dequantize, Q4_1AddsMin) {
  block_q4_1 blk{};
  blk.d = kHalfQuarter;
  blk.m = kHalfMinusOne;
  for (int j = 0; j < 16; ++j) blk.qs[j] = static_cast<uint8_t>(j | ((15 - j) << 4));
  const auto y = dequantize_block(TensorType::Q4_1, blk);
  for (int j = 0; j < 16; ++j) {
    EXPECT_EQ(y[j], 0.25f * j - 1.0f);
    EXPECT_EQ(y[j + 16], 0.25f * (15 - j) - 1.0f);
  }
}

// Levels q_k = k for k = 0..31: value k < 16 has nibble k and no high bit, value k + 16 has
// nibble k (high half of qs[k]) and bit k+16 of qh set.
template <class Block>
void fill_q5_identity(Block& blk) {
  for (int j = 0; j < 16; ++j) blk.qs[j] = static_cast<uint8_t>(j | (j << 4));
  const uint32_t qh = 0xFFFF0000u;
  std::memcpy(blk.qh, &qh, 4);
}

TEST(Dequantize, Q5_0FifthBitFromQh) {
  block_q5_0 blk{};
  blk.d = kHalfOne;
  fill_q5_identity(blk);
  const auto y = dequantize_block(TensorType::Q5_0, blk);
  for (int k = 0; k < 32; ++k) EXPECT_EQ(y[k], static_cast<float>(k - 16)) << k;

  // Only bit 3 of qh set: value 3 becomes 16 + 3 - 16 = 3, the others stay at nibble - 16.
  block_q5_0 one{};
  one.d = kHalfOne;
  const uint32_t qh = 1u << 3;
  std::memcpy(one.qh, &qh, 4);
  const auto z = dequantize_block(TensorType::Q5_0, one);
  for (int k = 0; k < 32; ++k) EXPECT_EQ(z[k], k == 3 ? 0.0f : -16.0f) << k;
}

TEST(Dequantize, Q5_1) {
  block_q5_1 blk{};
  blk.d = kHalfHalf;
  blk.m = kHalfTwo;
  fill_q5_identity(blk);
  const auto y = dequantize_block(TensorType::Q5_1, blk);
  for (int k = 0; k < 32; ++k) EXPECT_EQ(y[k], 0.5f * k + 2.0f) << k;
}

TEST(Dequantize, Q8_0) {
  block_q8_0 blk{};
  blk.d = kHalfQuarter;
  for (int j = 0; j < 32; ++j) blk.qs[j] = static_cast<int8_t>(j - 16);
  blk.qs[0] = -128;
  blk.qs[31] = 127;
  const auto y = dequantize_block(TensorType::Q8_0, blk);
  EXPECT_EQ(y[0], -32.0f);
  EXPECT_EQ(y[31], 31.75f);
  for (int j = 1; j < 31; ++j) EXPECT_EQ(y[j], 0.25f * (j - 16)) << j;
}

// --- k-quants: levels are written value by value through these layout helpers. ---

// Q2_K / Q3_K low bits: value v lives in byte 32*(v/128) + v%32, bit pair (v%128)/32.
void put_2bit(uint8_t* qs, int v, int level) {
  const int byte = 32 * (v / 128) + v % 32;
  const int shift = 2 * ((v % 128) / 32);
  qs[byte] = static_cast<uint8_t>((qs[byte] & ~(3 << shift)) | (level << shift));
}

int level_pattern(int v, int levels) {
  return (v * 7 + v / 16) % levels;
}

TEST(Dequantize, Q2_K) {
  block_q2_K blk{};
  blk.d = kHalfOne;
  blk.dmin = kHalfHalf;
  for (int g = 0; g < 16; ++g) blk.scales[g] = static_cast<uint8_t>((g % 5 + 1) | ((g % 3) << 4));
  for (int v = 0; v < 256; ++v) put_2bit(blk.qs, v, level_pattern(v, 4));
  const auto y = dequantize_block(TensorType::Q2_K, blk);
  for (int v = 0; v < 256; ++v) {
    const int g = v / 16;
    const float expected = 1.0f * (g % 5 + 1) * level_pattern(v, 4) - 0.5f * (g % 3);
    EXPECT_EQ(y[v], expected) << v;
  }
}

TEST(Dequantize, Q3_K) {
  block_q3_K blk{};
  blk.d = kHalfHalf;
  // Six-bit biased scales s_g = 32 + (g - 7): low nibble in byte g%8 (high nibble for g >= 8),
  // top two bits in byte 8 + g%4 at bit 2*(g/4).
  auto scale_of = [](int g) { return 32 + g - 7; };
  for (int g = 0; g < 16; ++g) {
    const int s = scale_of(g);
    blk.scales[g % 8] |= static_cast<uint8_t>((s & 0xF) << (g < 8 ? 0 : 4));
    blk.scales[8 + g % 4] |= static_cast<uint8_t>((s >> 4) << (2 * (g / 4)));
  }
  // Level L in 0..7 (value L - 4): low two bits as Q2_K, bit 2 in hmask[v%32] bit v/32.
  for (int v = 0; v < 256; ++v) {
    const int L = level_pattern(v, 8);
    put_2bit(blk.qs, v, L & 3);
    if (L & 4) blk.hmask[v % 32] |= static_cast<uint8_t>(1u << (v / 32));
  }
  const auto y = dequantize_block(TensorType::Q3_K, blk);
  for (int v = 0; v < 256; ++v) {
    const int g = v / 16;
    const float expected = 0.5f * (scale_of(g) - 32) * (level_pattern(v, 8) - 4);
    EXPECT_EQ(y[v], expected) << v;
  }
}

// Q4_K/Q5_K six-bit (scale, min) pairs packed in 12 bytes.
void put_scale_min_k4(uint8_t* q, int j, int sc, int m) {
  if (j < 4) {
    q[j] = static_cast<uint8_t>((q[j] & 0xC0) | sc);
    q[j + 4] = static_cast<uint8_t>((q[j + 4] & 0xC0) | m);
  } else {
    q[j + 4] = static_cast<uint8_t>((sc & 0xF) | ((m & 0xF) << 4));
    q[j - 4] = static_cast<uint8_t>((q[j - 4] & 0x3F) | ((sc >> 4) << 6));
    q[j] = static_cast<uint8_t>((q[j] & 0x3F) | ((m >> 4) << 6));
  }
}
// Scales and mins that use all six bits, so the packing of the top bits is exercised.
int k4_scale(int j) {
  return 63 - 5 * j;
}
int k4_min(int j) {
  return 17 + 6 * j;
}

TEST(Dequantize, Q4_K) {
  block_q4_K blk{};
  blk.d = kHalfQuarter;
  blk.dmin = kHalfHalf;
  for (int j = 0; j < 8; ++j) put_scale_min_k4(blk.scales, j, k4_scale(j), k4_min(j));
  // Value v: chunk c = v/64 uses qs[32c .. 32c+31]; low nibble for v%64 < 32, else high.
  for (int v = 0; v < 256; ++v) {
    const int byte = 32 * (v / 64) + v % 32;
    const int L = level_pattern(v, 16);
    blk.qs[byte] |= static_cast<uint8_t>(v % 64 < 32 ? L : L << 4);
  }
  const auto y = dequantize_block(TensorType::Q4_K, blk);
  for (int v = 0; v < 256; ++v) {
    const int j = v / 32;
    const float expected = 0.25f * k4_scale(j) * level_pattern(v, 16) - 0.5f * k4_min(j);
    EXPECT_EQ(y[v], expected) << v;
  }
}

TEST(Dequantize, Q5_K) {
  block_q5_K blk{};
  blk.d = kHalfQuarter;
  blk.dmin = kHalfHalf;
  for (int j = 0; j < 8; ++j) put_scale_min_k4(blk.scales, j, k4_scale(j), k4_min(j));
  // As Q4_K, plus bit 4 of the level in qh[v%32] at bit v/32.
  for (int v = 0; v < 256; ++v) {
    const int byte = 32 * (v / 64) + v % 32;
    const int L = level_pattern(v, 32);
    blk.qs[byte] |= static_cast<uint8_t>(v % 64 < 32 ? (L & 0xF) : (L & 0xF) << 4);
    if (L & 16) blk.qh[v % 32] |= static_cast<uint8_t>(1u << (v / 32));
  }
  const auto y = dequantize_block(TensorType::Q5_K, blk);
  for (int v = 0; v < 256; ++v) {
    const int j = v / 32;
    const float expected = 0.25f * k4_scale(j) * level_pattern(v, 32) - 0.5f * k4_min(j);
    EXPECT_EQ(y[v], expected) << v;
  }
}

TEST(Dequantize, Q6_K) {
  block_q6_K blk{};
  blk.d = kHalfQuarter;
  for (int g = 0; g < 16; ++g) blk.scales[g] = static_cast<int8_t>(g % 2 ? -(g + 1) : g + 1);
  // Level L in 0..63 (value L - 32). In half h = v/128, w = v%128, quarter p = w/32, l = w%32:
  // low nibble in ql[64h + l + 32*(p%2)] (high nibble of that byte when p >= 2), top two bits
  // in qh[32h + l] at bit 2p.
  for (int v = 0; v < 256; ++v) {
    const int h = v / 128, w = v % 128, p = w / 32, l = w % 32;
    const int L = level_pattern(v, 64);
    blk.ql[64 * h + l + 32 * (p % 2)] |= static_cast<uint8_t>((L & 0xF) << (p >= 2 ? 4 : 0));
    blk.qh[32 * h + l] |= static_cast<uint8_t>((L >> 4) << (2 * p));
  }
  const auto y = dequantize_block(TensorType::Q6_K, blk);
  for (int v = 0; v < 256; ++v) {
    const float expected = 0.25f * blk.scales[v / 16] * (level_pattern(v, 64) - 32);
    EXPECT_EQ(y[v], expected) << v;
  }
}

TEST(Dequantize, Q8_K) {
  block_q8_K blk{};
  blk.d = -0.125f;
  for (int v = 0; v < 256; ++v) blk.qs[v] = static_cast<int8_t>(v - 128);
  const auto y = dequantize_block(TensorType::Q8_K, blk);
  for (int v = 0; v < 256; ++v) EXPECT_EQ(y[v], -0.125f * (v - 128)) << v;
}

TEST(Dequantize, ManyBlocksAreIndependent) {
  // Three Q4_0 blocks with scales 1, 2, 4 and all nibbles 9 (value +1): y = 1, 2, 4.
  block_q4_0 blk[3]{};
  const uint16_t scales[3] = {kHalfOne, kHalfTwo, 0x4400 /* 4 */};
  for (int b = 0; b < 3; ++b) {
    blk[b].d = scales[b];
    std::memset(blk[b].qs, 0x99, sizeof blk[b].qs);
  }
  std::vector<float> y(96);
  dequantize_row(TensorType::Q4_0, blk, y.data(), 96);
  for (int v = 0; v < 96; ++v) EXPECT_EQ(y[v], static_cast<float>(1 << (v / 32))) << v;
}

TEST(Dequantize, RejectsUnsupportedTypesAndBadLengths) {
  std::vector<uint8_t> buf(1024);
  std::vector<float> out(256);
  try {
    dequantize_row(TensorType::IQ2_XXS, buf.data(), out.data(), 256);
    FAIL() << "IQ2_XXS should be unsupported";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::unsupported);
    EXPECT_NE(std::string(e.what()).find("IQ2_XXS"), std::string::npos) << e.what();
  }
  try {
    dequantize_row(TensorType::Q4_K, buf.data(), out.data(), 100);
    FAIL() << "100 is not a multiple of 256";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::invalid_argument);
  }
  EXPECT_THROW(dequantize_row(TensorType::I32, buf.data(), out.data(), 4), Error);
  // n = 0 is an empty row, not an error.
  EXPECT_NO_THROW(dequantize_row(TensorType::Q6_K, buf.data(), out.data(), 0));
}

}  // namespace
}  // namespace thinkmesh
