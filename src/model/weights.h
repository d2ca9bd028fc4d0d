// The tensors of a decoder, viewed in place in the memory-mapped GGUF file.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "thinkmesh/gguf.h"
#include "thinkmesh/tensor_type.h"

namespace thinkmesh::model {

// A 1-D or 2-D tensor: `rows` rows of `cols` values (cols = ne[0]) of `type`, `row_bytes` apart.
struct TensorView {
  const uint8_t* data = nullptr;  // nullptr: an optional tensor the file does not have
  TensorType type = TensorType::F32;
  int64_t cols = 0;
  int64_t rows = 0;
  size_t row_bytes = 0;
  std::string name;
  // An interleaved copy for the active kernel level (kernels/repack.h), nullptr when none;
  // owned by Weights::packed_storage.
  const uint8_t* packed = nullptr;

  explicit operator bool() const { return data != nullptr; }
  const uint8_t* row(int64_t r) const { return data + static_cast<size_t>(r) * row_bytes; }
};

struct LayerWeights {
  TensorView attn_norm;             // [n_embd] F32
  TensorView wq, wk, wv, wo;        // [n_embd] -> [n_head*hd], [n_kv*hd], [n_kv*hd], -> [n_embd]
  TensorView bq, bk, bv;            // optional biases (qwen2)
  TensorView ffn_norm;              // [n_embd] F32
  TensorView w_gate, w_up, w_down;  // [n_embd] -> [n_ff], [n_ff] -> [n_embd]
};

// How an architecture wires a llama-like layer; one small entry per architecture
// (src/model/arch/*.cpp), looked up by general.architecture.
struct Architecture {
  const char* name;
  bool qkv_bias;   // attn_q/k/v have .bias tensors (qwen2)
  bool rope_neox;  // RoPE rotates (x[i], x[i + d/2]) instead of (x[2i], x[2i+1])
};

struct Weights {
  std::optional<gguf::File> file;  // the mapping every TensorView points into
  Architecture arch;
  TensorView token_embd;   // [n_vocab] rows of [n_embd]
  TensorView output_norm;  // [n_embd]
  TensorView output;       // [n_vocab] rows of [n_embd]; token_embd when tied
  std::vector<LayerWeights> layers;
  std::vector<std::unique_ptr<uint8_t[]>> packed_storage;  // the repacked matrices
};

// "[a, b]" for error messages.
std::string shape_text(const std::vector<int64_t>& ne);
// The tensor `name` of `file` with shape `ne` (GGML order; trailing 1s in the file ignored),
// viewed in place. Throws Error(invalid_file) naming the file, the tensor, its shape and the
// expected one; a missing `optional` tensor gives an empty view.
TensorView tensor(const gguf::File& file, const std::string& name, std::vector<int64_t> ne,
                  bool optional = false);

// Registered architectures (arch/llama.cpp, arch/qwen2.cpp).
const Architecture* find_architecture(const std::string& name);
std::string architecture_names();

}  // namespace thinkmesh::model
