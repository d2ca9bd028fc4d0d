// Per-tensor type choice (recipe.cpp): which tensors are quantized at all, llama.cpp's mix of
// types for a file type, and the fallback for rows that do not fit a type's block size.
#pragma once

#include <cstdint>
#include <string>

#include "thinkmesh/gguf.h"
#include "thinkmesh/quantize.h"

namespace thinkmesh::quant {

// What the recipe needs to know about the model.
struct RecipeModel {
  std::string arch;         // general.architecture
  int n_layer = 0;          // <arch>.block_count
  int n_expert = 0;         // <arch>.expert_count (0: dense)
  int n_attention_wv = 0;   // tensors named *attn_v.weight / attn_qkv / attn_kv_b
  bool has_output = false;  // a separate output.weight (else token_embd is the output)
  bool is_70b = false;      // llama.cpp's LLM_TYPE_70B (80 layers with grouped KV heads)
  bool has_imatrix = false;

  static RecipeModel from(const gguf::File& file, bool has_imatrix);
};

// llama-quantize's rule: 2-D (or 3-D) tensors whose name ends in "weight", except norms,
// MoE gate inputs, position / token-type embeddings and a few small special tensors.
bool should_quantize(const gguf::TensorInfo& tensor);

// llama_tensor_get_type without its fallback: the type `tensor` gets in file type `ftype`.
TensorType recipe_type(const RecipeModel& model, const gguf::TensorInfo& tensor, FileType ftype);

// The row-length fallback: `type` when ne[0] is a multiple of its block size, otherwise the
// nearest type that fits (Q4_K→Q5_0, Q5_K→Q5_1, Q6_K→Q8_0, Q2_K/Q3_K→Q4_0, 32-blocks→F16,
// and F16 whenever the first choice does not fit either). `why` receives a sentence when a
// fallback happened.
TensorType fit_row_length(TensorType type, int64_t row_length, std::string& why);

}  // namespace thinkmesh::quant
