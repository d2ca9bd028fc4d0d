// The forward pass of a BERT encoder over several sequences at once.
//
// Sequences are laid end to end in one batch of T tokens (no padding); every matrix product
// runs once over all T tokens, and attention is computed per sequence, so a token sees exactly
// the tokens of its own sequence: the equivalent of llama.cpp's non-causal KQ mask (0 inside
// the sequence, -inf elsewhere) without computing the masked scores. Shapes (floats; D =
// embedding length, F = feed-forward length, hd = head size):
//
//   x   = token_embd[id] + token_types[0] + position_embd[pos]     [T][D]   pos from 0 per seq
//   x   = LayerNorm(x) · token_embd_norm
//   per layer:
//     q, k, v = x·Wq + bq, x·Wk + bk, x·Wv + bv                     [T][D] each
//     a   = softmax(q_h·k_hᵀ / √hd) · v_h  per sequence and head    [T][D]
//     x   = LayerNorm(a·Wo + bo + x) · attn_output_norm             post-norm
//     x   = LayerNorm(gelu(x·Wup + bup)·Wdown + bdown + x) · layer_output_norm   ([T][F] inside)
//   result: x                                                       [T][D]
//
// Arithmetic as llama.cpp c392e50's build_bert on the CPU backend: matrix products through
// model::matmul (F16 weights: activations rounded to F16; Q8_0: Q8_0 activation blocks);
// attention entirely in F32 (Q, K, V are F32 results, not F16-rounded: BERT uses no KV
// cache), scores scaled then softmaxed in F32 with the sum in double; GELU from the F16 table;
// LayerNorm eps from the file (1e-12).
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "encoder/bert_model.h"
#include "thinkmesh/tokenizer.h"

namespace thinkmesh::model {
class ThreadPool;
}

namespace thinkmesh::encoder {

// Token sequences laid end to end: sequence s holds tokens [seq_start[s], seq_start[s+1]).
struct EncoderBatch {
  std::vector<TokenId> tokens;
  std::vector<int32_t> seq_start = {0};

  void add(std::span<const TokenId> sequence);
  int32_t n_seq() const { return static_cast<int32_t>(seq_start.size()) - 1; }
  int32_t seq_len(int32_t s) const { return seq_start[s + 1] - seq_start[s]; }
  void clear() {
    tokens.clear();
    seq_start.assign(1, 0);
  }
};

class BertEncoder {
 public:
  explicit BertEncoder(const BertModel& model) : m_(model) {}

  // The last layer's hidden states, [T][D] row-major (valid until the next call). Throws
  // Error(invalid_argument) for a token id outside the vocabulary or an empty sequence and
  // Error(out_of_range) for a sequence longer than the model's positions.
  std::span<const float> forward(const EncoderBatch& batch, model::ThreadPool& pool);

 private:
  void embed_tokens(const EncoderBatch& batch, model::ThreadPool& pool);
  void attention(const EncoderBatch& batch, model::ThreadPool& pool);

  const BertModel& m_;
  // Scratch, grown to the largest batch seen: x, h, q, k, v, attn [T][D]; ff [T][F].
  std::vector<float> x_, h_, q_, k_, v_, attn_, ff_;
};

}  // namespace thinkmesh::encoder
