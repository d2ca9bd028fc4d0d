// Vocabularies for synthetic models: `tokenizer.*` metadata made up in the real size, or copied
// from another GGUF file.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "thinkmesh/gguf.h"

namespace thinkmesh::synth {

// A SentencePiece vocabulary (tokenizer.ggml.model "llama") of n_vocab >= 512 tokens: <unk>,
// <s>, </s>, the 256 byte tokens <0x00>..<0xFF>, then unique placeholder pieces ("▁", ASCII
// characters, "▁a".., "ab".., "▁ab".., ...) with falling scores, every longer piece the merge
// of two shorter ones, so SentencePiece merging reaches it.
std::vector<gguf::KeyValue> synthetic_spm_vocab(int32_t n_vocab);
// A WordPiece vocabulary (tokenizer.ggml.model "bert") in convert_hf_to_gguf's phantom-space
// form: [PAD], [unused0..98], [UNK] 100, [CLS] 101, [SEP] 102, [MASK] 103, then placeholder
// word starts "▁x" and continuations "x".
std::vector<gguf::KeyValue> synthetic_wordpiece_vocab(int32_t n_vocab);
// Every `tokenizer.*` key of `file`, in its order. Error(invalid_file) naming the path when it
// has no tokenizer.ggml.tokens array.
std::vector<gguf::KeyValue> vocab_keys_from(const gguf::File& file);
// The number of tokens in keys made by the functions above.
int32_t vocab_size(const std::vector<gguf::KeyValue>& keys);

}  // namespace thinkmesh::synth
