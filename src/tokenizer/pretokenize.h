// Pre-tokenizers of byte-level BPE vocabularies: text → the "words" BPE merges within.
//
// llama.cpp (c392e50, llm_tokenizer_bpe) describes each pre-tokenizer as a list of regular
// expressions applied in turn: each one cuts every piece left by the previous ones into its
// matches and the stretches between them, and never looks across a piece's ends. We implement
// the same expressions as hand-written scanners over code points (std::regex is slow and has
// no Unicode classes), with the categories of unicode.h:
//
//   gpt2     's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)
//   llama3   (?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|
//            \p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
//   qwen2    as llama3 with \p{N} (one digit per piece)
//
// and the pipelines of the named pre-tokenizers (tokenizer.ggml.pre) built from them.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace thinkmesh::tokenizer {

enum class PreTokenizerKind {
  gpt2,            // gpt-2, phi-2, mpt, olmo, jais, roberta-bpe, jina-*, gigachat
  llama3,          // llama3, llama-bpe, llama-v3, falcon3, dbrx, smaug-bpe, chatglm-bpe
  qwen2,           // qwen2, deepseek-r1-qwen, stablelm2, megrez
  smollm,          // smollm, starcoder, refact, command-r, codeshell, exaone, minerva-7b:
                   //   \p{N} then gpt2
  deepseek_coder,  // [\r\n], \s?\p{L}+, \s?\p{P}+, CJK/Hangul runs, \p{N}
  falcon,          // [\p{P}$+<=>^~|`]+, then gpt2, then [0-9][0-9][0-9]
  default_bpe,     // "default": [\p{P}$+<=>^~|]+, then gpt2, then \p{N}+
};

// The kind for a tokenizer.ggml.pre value; throws Error(unsupported) naming the value and the
// supported ones.
PreTokenizerKind pre_tokenizer_kind(std::string_view pre);
// The names pre_tokenizer_kind accepts, comma-separated (for messages and docs).
std::string supported_pre_tokenizers();

// Splits `text` (valid UTF-8: callers replace malformed bytes first) into words, appended to
// `words` as byte ranges {offset, length} of `text`. Every byte belongs to exactly one word.
struct WordSpan {
  uint32_t offset;
  uint32_t length;
};
void pretokenize(PreTokenizerKind kind, std::string_view text, std::vector<WordSpan>& words);

// Copies `text`, replacing every malformed UTF-8 sequence by U+FFFD byte by byte, as llama.cpp's
// unicode_cpts_from_utf8 does. Returns false (and leaves `out` untouched) when `text` is valid.
bool replace_malformed_utf8(std::string_view text, std::string& out);

}  // namespace thinkmesh::tokenizer
