// Pieces shared by the llama2.c and Hugging Face converters (common.cpp).
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "convert/safetensors.h"
#include "thinkmesh/convert.h"
#include "thinkmesh/gguf.h"
#include "thinkmesh/tensor_type.h"

namespace thinkmesh::convert {

// GGML_QUANT_VERSION, written as general.quantization_version.
inline constexpr uint32_t kQuantizationVersion = 2;

// The requested weight type, validated: F32, F16 or BF16 (Error(invalid_argument) otherwise).
TensorType weight_type(const ConvertOptions& options, TensorType fallback);
// general.file_type (llama_ftype) for an all-`type` file: F32 0, F16 1, BF16 32.
uint32_t file_type_id(TensorType type);
// The type convert_hf_to_gguf.py stores a tensor in: F32 for 1-D tensors, "*_norm.weight",
// anything not ending in ".weight" (biases), position_embd and token_types; else `requested`.
TensorType storage_type(const std::string& gguf_name, size_t n_dims, TensorType requested);
// gguf-py's size_label: 19,532,032 → "20M", 292,000 → "292K".
std::string size_label(uint64_t n_params);

// A tensor's values as F32. F32, F16 and BF16 sources are accepted; others throw
// Error(unsupported) naming the tensor and file.
std::vector<float> to_f32(const StTensor& tensor, const std::string& file);
// F32 values encoded as `type` (F32, F16 or BF16; round to nearest even as ggml/gguf-py).
std::vector<uint8_t> encode(std::span<const float> values, TensorType type);

// Collects tensors for a gguf::Writer and counts what was written.
class TensorSink {
 public:
  explicit TensorSink(gguf::Writer& writer) : writer_(writer) {}
  // Adds `values` (ne in GGML order) stored as storage_type(name, ne.size(), requested).
  void add(const std::string& name, std::vector<int64_t> ne, std::span<const float> values,
           TensorType requested);
  // Adds raw bytes already in `type` (a view kept alive until the write).
  void add_view(const std::string& name, std::vector<int64_t> ne, TensorType type,
                std::span<const uint8_t> bytes);
  uint64_t n_params() const { return n_params_; }
  size_t n_tensors() const { return n_tensors_; }

 private:
  gguf::Writer& writer_;
  uint64_t n_params_ = 0;
  size_t n_tensors_ = 0;
};

// Writes the file, creating the output's folder; Error(io) on failure.
void write_output(const gguf::Writer& writer, const std::string& output);

}  // namespace thinkmesh::convert
