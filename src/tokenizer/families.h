// Constructors of the three tokenizer families from a prepared Vocab. vocab.cpp (GGUF) and
// hf_json.cpp (Hugging Face files) build the Vocab, then call one of these.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include <nlohmann/json_fwd.hpp>

#include "tokenizer/vocab.h"

namespace thinkmesh::tokenizer {

std::unique_ptr<Tokenizer> make_spm_tokenizer(Vocab vocab);  // spm.cpp
std::unique_ptr<Tokenizer> make_bpe_tokenizer(
    Vocab vocab);  // bpe.cpp (pre-tokenizer from vocab.pre)
std::unique_ptr<Tokenizer> make_wpm_tokenizer(Vocab vocab);  // wordpiece.cpp

// BERT vocabularies (vocab.txt, tokenizer.json) in the phantom-space form convert_hf_to_gguf
// writes: "[X]" kept, a continuation "##x" becomes "x", a word "w" becomes "▁w" (wordpiece.cpp).
std::string wordpiece_gguf_form(std::string_view text, std::string_view continuation_prefix);
// Marks [PAD] [UNK] [CLS] [SEP] [MASK] as control tokens and sets the special ids; throws
// Error(invalid_file) naming `source` when [CLS], [SEP] or [UNK] is missing.
void set_bert_special_tokens(Vocab& vocab, const std::string& source);

// The tokenizer.ggml.pre name of a byte-level BPE tokenizer.json (`root`), recognised from its
// pre_tokenizer's Split regex / Digits / ByteLevel steps (hf_json.cpp); Error(unsupported)
// naming `path` for other pipelines. The converter (src/convert) writes the same name.
std::string hf_bpe_pre_name(const nlohmann::json& root, const std::string& path);

}  // namespace thinkmesh::tokenizer
