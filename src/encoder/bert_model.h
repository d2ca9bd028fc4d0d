// A BERT encoder's hyperparameters and tensors, viewed in place in the memory-mapped GGUF file,
// with llama.cpp's (c392e50) tensor names and `bert.*` keys.
//
// Tensors (ne in GGML order: ne[0] is the row length; D = embedding_length, F =
// feed_forward_length, V = vocabulary, P = positions, Y = token types):
//   token_embd.weight                 [D, V]  any dequantizable type
//   token_types.weight                [D, Y]  (row 0 is added to every token: "sentence A")
//   position_embd.weight              [D, P]  learned absolute positions
//   token_embd_norm.{weight,bias}     [D]     F32, LayerNorm after the embedding sum
//   blk.N.attn_{q,k,v,output}.weight  [D, D]  matrices (a type with a dot-product kernel)
//   blk.N.attn_{q,k,v,output}.bias    [D]     F32
//   blk.N.attn_output_norm.{weight,bias}   [D]  F32
//   blk.N.ffn_up.weight [D, F], .bias [F]; blk.N.ffn_down.weight [F, D], .bias [D]
//   blk.N.layer_output_norm.{weight,bias}  [D]  F32
// Keys: bert.embedding_length, block_count, attention.head_count, feed_forward_length,
// attention.layer_norm_epsilon (default 1e-12), context_length (default: P),
// attention.causal (must be false), pooling_type (0 none, 1 mean, 2 cls; default 0).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "model/weights.h"
#include "thinkmesh/gguf.h"

namespace thinkmesh::encoder {

inline constexpr const char* kBertArchitecture = "bert";

// llama.cpp's LLAMA_POOLING_TYPE values as stored in `bert.pooling_type`.
enum class PoolingType : int32_t { none = 0, mean = 1, cls = 2 };

struct BertHparams {
  int32_t n_vocab = 0;        // rows of token_embd.weight
  int32_t n_embd = 0;         // bert.embedding_length (D)
  int32_t n_layer = 0;        // bert.block_count
  int32_t n_head = 0;         // bert.attention.head_count
  int32_t head_dim = 0;       // n_embd / n_head
  int32_t n_ff = 0;           // bert.feed_forward_length (F)
  int32_t n_positions = 0;    // bert.context_length: the longest sequence (<= position rows)
  int32_t n_token_types = 0;  // rows of token_types.weight
  float norm_eps = 1e-12f;    // bert.attention.layer_norm_epsilon
  PoolingType pooling = PoolingType::none;  // bert.pooling_type
};

struct BertLayer {
  model::TensorView wq, wk, wv, wo;            // [D] -> [D]
  model::TensorView bq, bk, bv, bo;            // [D] F32
  model::TensorView attn_norm_w, attn_norm_b;  // attn_output_norm, [D] F32
  model::TensorView ffn_up, ffn_up_b;          // [D] -> [F], [F] F32
  model::TensorView ffn_down, ffn_down_b;      // [F] -> [D], [D] F32
  model::TensorView out_norm_w, out_norm_b;    // layer_output_norm, [D] F32
};

struct BertModel {
  gguf::File file;  // the mapping every TensorView points into
  BertHparams hp;
  model::TensorView token_embd;                // [V] rows of [D]
  model::TensorView token_types;               // [Y] rows of [D]
  model::TensorView position_embd;             // [P] rows of [D]
  model::TensorView embd_norm_w, embd_norm_b;  // [D] F32
  std::vector<BertLayer> layers;

  // Reads the hyperparameters and checks every tensor's presence, shape and type. Throws
  // Error(invalid_file) naming the file and the key or tensor at fault (with the expected
  // shape), Error(unsupported) for a causal BERT, an unknown pooling type or a matrix type
  // without a dot-product kernel.
  static BertModel load(gguf::File file);
};

}  // namespace thinkmesh::encoder
