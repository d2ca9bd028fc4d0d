// Tensor element types of GGUF files (the ggml type ids), their block geometry, and the
// scalar reference conversions to and from F32.
//
// A quantized type stores a row as consecutive blocks; each block holds `block_size` values in
// `type_size` bytes. Ids and sizes are those of ggml (llama.cpp c392e50); ids that ggml removed
// (4, 5, 31-33, 36-38) are not valid in a file.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

namespace thinkmesh {

enum class TensorType : uint32_t {
  F32 = 0,
  F16 = 1,
  Q4_0 = 2,
  Q4_1 = 3,
  Q5_0 = 6,
  Q5_1 = 7,
  Q8_0 = 8,
  Q8_1 = 9,
  Q2_K = 10,
  Q3_K = 11,
  Q4_K = 12,
  Q5_K = 13,
  Q6_K = 14,
  Q8_K = 15,
  IQ2_XXS = 16,
  IQ2_XS = 17,
  IQ3_XXS = 18,
  IQ1_S = 19,
  IQ4_NL = 20,
  IQ3_S = 21,
  IQ2_S = 22,
  IQ4_XS = 23,
  I8 = 24,
  I16 = 25,
  I32 = 26,
  I64 = 27,
  F64 = 28,
  IQ1_M = 29,
  BF16 = 30,
  TQ1_0 = 34,
  TQ2_0 = 35,
};

inline constexpr uint32_t kTensorTypeIdLimit = 39;  // ids are < this (GGML_TYPE_COUNT)

struct TensorTypeTraits {
  std::string_view name;  // "Q4_K", as llama.cpp prints it
  int64_t block_size;     // values per block (1 for plain types)
  size_t type_size;       // bytes per block
  bool quantized;         // block-quantized (not F32/F16/BF16/I*/F64)
  bool can_dequantize;    // thinkmesh has a reference dequantizer for it
};

// Traits of a valid type id; nullopt for ids that are unknown or removed.
std::optional<TensorTypeTraits> tensor_type_traits(uint32_t id);
// Traits of a type known to be valid.
const TensorTypeTraits& traits(TensorType type);
inline std::string_view name(TensorType type) { return traits(type).name; }
// Parses a type name ("q4_k", "Q8_0", "f16"), case-insensitive.
std::optional<TensorType> parse_tensor_type(std::string_view name);

// Bytes of one row of `n` values. Throws Error(invalid_argument) when n is not a multiple of
// the block size.
size_t row_bytes(TensorType type, int64_t n);

// Reference (scalar, bit-exact with ggml) conversion of one row of `n` values to F32.
// Throws Error(unsupported) for types without a dequantizer, Error(invalid_argument) when n is
// not a multiple of the block size.
void dequantize_row(TensorType type, const void* src, float* dst, int64_t n);

// Reference quantization of one row of `n` F32 values (round-to-nearest, as ggml's
// quantize_row_*_ref). Defined for F32, F16, BF16, Q8_0, Q8_K (activations), Q4_0, Q4_1,
// Q5_0, Q5_1, Q2_K..Q6_K. Throws Error(unsupported) for the others.
void quantize_row_reference(TensorType type, const float* src, void* dst, int64_t n);

}  // namespace thinkmesh
