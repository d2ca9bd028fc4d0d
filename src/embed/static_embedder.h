// The static (word-vector) embedder: the vector of a text is the SIF-weighted mean of the
// vectors of its known words, L2-normalised.
//
//   words      split_words (word_split.h): lower-cased letter/digit runs, inner ' and - kept
//   lookup     the word as is; else without a clitic the vectors' tokenizer split off
//              ('s n't 'm 're 'll 've 'd: "john's" → "john", "don't" → "do", "can't" → "ca");
//              else, for a non-ASCII word, the same with accents removed ("café" → "cafe");
//              else, for a hyphenated word, each part on its own; else unknown (ignored)
//   weight     w = a / (a + p(word)), p from the file's token_prob (see wordvec_format.h)
//   vector     sum(w · v) / sum(w) over known words, then L2-normalised (EmbedOptions)
//   no words   a text with no word, or with only unknown words, gets the zero vector and
//              EmbeddingRowInfo::empty / all_unknown set
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "embed/word_index.h"
#include "embed/wordvec_format.h"
#include "thinkmesh/embed.h"
#include "thinkmesh/gguf.h"
#include "thinkmesh/tensor_type.h"

namespace thinkmesh::embed {

class StaticEmbedder final : public Embedder {
 public:
  // Validates the wordvec layout and builds the word index (≈50 ms for 341K words). Throws
  // Error(invalid_file) naming the file and the key/tensor at fault, Error(invalid_argument)
  // for cls pooling.
  StaticEmbedder(gguf::File file, const EmbedOptions& options);

  int64_t dim() const override { return dim_; }
  std::string_view architecture() const override { return kWordvecArchitecture; }
  EmbeddingMatrix embed(std::span<const std::string> texts) override;

  // Embeds one text into `out` (dim() floats). Thread-safe (const) given a scratch string per
  // thread; allocates nothing once `scratch` has grown to the longest word.
  EmbeddingRowInfo embed_into(std::string_view text, std::span<float> out,
                              std::string& scratch) const;

  int64_t n_words() const { return static_cast<int64_t>(words_.size()); }
  // Id of a word after the lookup rules above (clitics, accents; not hyphen splitting), or -1.
  int32_t find_word(std::string_view word) const;
  std::string_view word(int32_t id) const { return words_[id]; }
  float weight(int32_t id) const { return weights_[id]; }
  float sif_a() const { return sif_a_; }
  TensorType table_type() const { return table_type_; }
  // Word `id`'s vector (dim() floats), dequantized.
  std::vector<float> word_vector(int32_t id) const;

 private:
  int32_t find_exact_or_stem(std::string_view word) const;
  // out[0..dim) += w · vector(id)
  void accumulate(int32_t id, float w, float* out) const;

  gguf::File file_;
  EmbedOptions options_;
  int64_t dim_ = 0;
  float sif_a_ = kDefaultSifA;
  std::vector<std::string_view> words_;  // views into file_'s metadata
  std::vector<float> weights_;
  WordIndex index_;
  TensorType table_type_ = TensorType::F32;
  const uint8_t* table_ = nullptr;
  size_t row_stride_ = 0;  // bytes per table row
  std::string scratch_;
};

}  // namespace thinkmesh::embed
