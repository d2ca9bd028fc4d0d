// A decoder-only language model loaded from a GGUF file (Llama and Qwen2 families).
//
//   auto model = thinkmesh::Model::load("model.gguf");
//   thinkmesh::Context ctx(model, {});          // context.h: KV cache + decode
//
// Weights stay in the memory map and are used in place, in their stored type; nothing is
// copied at load except the small per-layer tables that describe them.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "thinkmesh/tokenizer.h"

namespace thinkmesh {

struct ModelOptions {
  bool load_tokenizer = true;  // default true; false skips the vocabulary (logits-only use)
  // default true: copy the matrices the active kernel level has a row-interleaved kernel for
  // (today Q4_0, Q4_1, Q5_1, Q8_0, Q4_K and Q6_K on avx2) into that layout at load
  // (ModelInfo::repacked_bytes more memory; the file's layout stays mapped). THINKMESH_REPACK=0
  // also turns it off.
  bool repack = true;
};

// Hyperparameters read from `<arch>.*` metadata.
struct ModelInfo {
  std::string architecture;      // general.architecture ("llama", "qwen2")
  std::string name;              // general.name, or the file name
  int32_t n_vocab = 0;           // rows of token_embd.weight
  int32_t n_embd = 0;            // <arch>.embedding_length
  int32_t n_layer = 0;           // <arch>.block_count
  int32_t n_head = 0;            // <arch>.attention.head_count (scalar or uniform array)
  int32_t n_head_kv = 0;         // <arch>.attention.head_count_kv (default n_head; ditto)
  int32_t head_dim = 0;          // <arch>.attention.key_length, default n_embd / n_head
  std::vector<int32_t> n_ff;     // per layer, <arch>.feed_forward_length (scalar or array)
  int32_t n_ctx_train = 0;       // <arch>.context_length
  float rms_eps = 1e-5f;         // <arch>.attention.layer_norm_rms_epsilon
  float rope_freq_base = 10000;  // <arch>.rope.freq_base
  float rope_freq_scale = 1;     // 1 / <arch>.rope.scaling.factor (linear scaling)
  int32_t rope_dims = 0;         // <arch>.rope.dimension_count (default head_dim)
  bool rope_neox = false;        // rotate halves (NEOX, qwen2) instead of adjacent pairs
  uint64_t file_bytes = 0;       // size of the GGUF file
  uint64_t weight_bytes = 0;     // bytes of all tensors (what a forward pass streams)
  std::string weight_type;       // the most common 2-D weight type ("Q8_0", "F16", ...)
  uint64_t repacked_bytes = 0;   // heap copies made by ModelOptions::repack
};

namespace model {
struct Weights;  // src/model/weights.h
}

class Model {
 public:
  // Maps and validates `path`. Throws Error(unsupported) for an architecture other than the
  // supported ones (the message lists them), Error(invalid_file) for a missing tensor or a
  // tensor of the wrong shape (naming it and the expected shape).
  static std::shared_ptr<const Model> load(const std::string& path,
                                           const ModelOptions& options = {});

  ~Model();
  Model(const Model&) = delete;
  Model& operator=(const Model&) = delete;

  const ModelInfo& info() const;
  // Throws Error(not_found) when loaded with load_tokenizer = false, and Error(unsupported)
  // (the loader's message) when the file's tokenizer family is not supported: such a model
  // still loads and decodes token ids.
  const Tokenizer& tokenizer() const;
  bool has_tokenizer() const;
  // tokenizer.chat_template, empty when the file has none.
  const std::string& chat_template() const;
  // Architectures load() accepts, comma-separated.
  static std::string supported_architectures();

  const model::Weights& weights() const;  // internal: the runtime reads the tensors here

 private:
  Model();
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace thinkmesh
