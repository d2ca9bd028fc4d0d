// Constructors of the three tokenizer families from a prepared Vocab. vocab.cpp (GGUF) and
// hf_json.cpp (Hugging Face files) build the Vocab, then call one of these.
#pragma once

#include <memory>

#include "tokenizer/vocab.h"

namespace thinkmesh::tokenizer {

std::unique_ptr<Tokenizer> make_spm_tokenizer(Vocab vocab);  // spm.cpp
std::unique_ptr<Tokenizer> make_bpe_tokenizer(Vocab vocab);  // bpe.cpp (pre-tokenizer from vocab.pre)
std::unique_ptr<Tokenizer> make_wpm_tokenizer(Vocab vocab);  // wordpiece.cpp

}  // namespace thinkmesh::tokenizer
