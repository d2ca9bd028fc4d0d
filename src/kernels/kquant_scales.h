// Q4_K/Q5_K 12-byte packed 6-bit scales and mins -> sc[0..7] in out[0..7], m[0..7] in
// out[8..15] (ggml's get_scale_min_k4 for all eight sub-blocks). Plain scalar code shared by
// the SIMD k-quant kernels; in an anonymous namespace because those files are compiled with
// different instruction-set flags.
#pragma once

#include <cstdint>

namespace thinkmesh::kernels {
namespace {

inline void unpack_scales_mins(const uint8_t* s, uint8_t out[16]) {
  for (int j = 0; j < 4; ++j) {
    out[j] = s[j] & 63;
    out[8 + j] = s[j + 4] & 63;
    out[4 + j] = static_cast<uint8_t>((s[j + 8] & 0x0F) | ((s[j] >> 6) << 4));
    out[12 + j] = static_cast<uint8_t>((s[j + 8] >> 4) | ((s[j + 4] >> 6) << 4));
  }
}

}  // namespace
}  // namespace thinkmesh::kernels
