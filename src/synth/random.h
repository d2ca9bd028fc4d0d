// Seeded random weights, reproducible bit for bit on every machine: integer generators only,
// one float conversion per value.
#pragma once

#include <cstdint>
#include <string_view>

namespace thinkmesh::synth {

// SplitMix64 (Steele, Lea, Flood 2014): a 64-bit state advanced by a constant and mixed.
inline uint64_t splitmix64(uint64_t& state) {
  uint64_t z = (state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// A seed for tensor `name` of a model seeded `seed` (FNV-1a of the name, mixed with the seed).
inline uint64_t tensor_seed(uint64_t seed, std::string_view name) {
  uint64_t h = 0xCBF29CE484222325ull;
  for (const char c : name) h = (h ^ static_cast<uint8_t>(c)) * 0x100000001B3ull;
  uint64_t state = seed ^ h;
  return splitmix64(state);
}

// The generator of one row: every row has its own, so rows can be made in any order.
inline uint64_t row_seed(uint64_t tensor, int64_t row) {
  uint64_t state = tensor + static_cast<uint64_t>(row) * 0xD1B54A32D192ED03ull;
  return splitmix64(state);
}

// Approximately standard normal values: the sum of 12 uniform 16-bit integers (Irwin–Hall),
// centred and scaled by 1/65536, so mean 0, variance 1 (to 1e-9), tails cut at ±6.
class NormalStream {
 public:
  explicit NormalStream(uint64_t seed) : state_(seed) {}
  float next() {
    int64_t sum = 0;
    for (int i = 0; i < 3; ++i) {
      const uint64_t r = splitmix64(state_);
      sum += static_cast<int64_t>((r & 0xFFFF) + ((r >> 16) & 0xFFFF) + ((r >> 32) & 0xFFFF) +
                                  (r >> 48));
    }
    // Mean of the sum: 12 × 32767.5 = 393210.
    return static_cast<float>(sum - 393210) * (1.0f / 65536.0f);
  }

 private:
  uint64_t state_;
};

}  // namespace thinkmesh::synth
