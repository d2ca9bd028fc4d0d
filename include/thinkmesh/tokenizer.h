// Tokenizers: text ⇄ token ids, exactly as llama.cpp (c392e50) computes them.
//
// Three families, chosen by `tokenizer.ggml.model`:
//   "llama" → SentencePiece BPE with byte fallback (spm)
//   "gpt2"  → byte-level BPE with a pre-tokenizer picked by `tokenizer.ggml.pre` (bpe)
//   "bert"  → WordPiece with BERT normalisation (wpm)
// A Tokenizer is immutable after construction and safe to use from several threads.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace thinkmesh {

namespace gguf {
class File;
}

using TokenId = int32_t;

enum class VocabFamily { spm, bpe, wpm };

// Token attributes as stored in `tokenizer.ggml.token_type`.
enum class TokenKind : int32_t {
  undefined = 0,
  normal = 1,
  unknown = 2,
  control = 3,
  user_defined = 4,
  unused = 5,
  byte = 6,
};

struct TokenizeOptions {
  bool add_special = true;     // add BOS/EOS (or [CLS]/[SEP]) as the vocabulary's metadata asks
  bool parse_special = false;  // turn control/user-defined token text (e.g. "<|im_start|>") into its id
};

struct DetokenizeOptions {
  bool remove_special = false;  // drop a leading BOS / trailing EOS that tokenize would add
  bool render_special = false;  // print control tokens' text (otherwise they render as "")
};

class Tokenizer {
 public:
  virtual ~Tokenizer();

  // Builds the tokenizer described by a GGUF file's `tokenizer.ggml.*` metadata. Throws
  // Error(unsupported) for an unknown model or pre-tokenizer, Error(invalid_file) for
  // inconsistent metadata (array lengths, special ids out of range, malformed merges).
  static std::unique_ptr<Tokenizer> from_gguf(const gguf::File& file);
  // Builds a tokenizer from a Hugging Face `tokenizer.json` (BPE, byte-level BPE or
  // WordPiece). `config_json` may name the matching tokenizer_config.json / config.json for
  // special-token flags; absent, the defaults llama.cpp's converter would pick are used.
  static std::unique_ptr<Tokenizer> from_hf_json(const std::string& tokenizer_json,
                                                 const std::string& config_json = "");
  // Builds a BERT WordPiece tokenizer from a `vocab.txt` (one token per line).
  static std::unique_ptr<Tokenizer> from_bert_vocab(const std::string& vocab_txt);

  // Text → ids. Invalid UTF-8 never crashes: bytes that do not decode become U+FFFD.
  virtual std::vector<TokenId> tokenize(std::string_view text,
                                        const TokenizeOptions& options = {}) const = 0;
  // One token's text as it appears in output (byte tokens become raw bytes, "▁" a space).
  virtual std::string token_to_piece(TokenId id, bool render_special = false) const = 0;
  // Ids → text; the inverse of tokenize for text without special tokens.
  virtual std::string detokenize(std::span<const TokenId> ids,
                                 const DetokenizeOptions& options = {}) const = 0;

  virtual VocabFamily family() const = 0;
  virtual size_t vocab_size() const = 0;
  // The raw vocabulary entry (as stored in the file, e.g. "▁Hello" or "Ġworld").
  virtual const std::string& token_text(TokenId id) const = 0;
  virtual TokenKind token_kind(TokenId id) const = 0;
  virtual std::optional<TokenId> find_token(std::string_view text) const = 0;

  // Special ids; nullopt where the vocabulary has none.
  virtual std::optional<TokenId> bos() const = 0;  // [CLS] for BERT
  virtual std::optional<TokenId> eos() const = 0;  // [SEP] for BERT
  virtual std::optional<TokenId> eot() const = 0;  // <|eot_id|>, <|im_end|>, ...
  virtual std::optional<TokenId> unk() const = 0;
  virtual std::optional<TokenId> pad() const = 0;
  virtual bool adds_bos() const = 0;
  virtual bool adds_eos() const = 0;
  // End-of-generation: EOS, EOT and the other tokens llama.cpp treats as ending a turn.
  virtual bool is_eog(TokenId id) const = 0;
};

}  // namespace thinkmesh
