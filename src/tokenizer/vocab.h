// The vocabulary shared by every tokenizer family, and the base class that implements what
// the families have in common: special-token splitting (parse_special), BOS/EOS insertion,
// piece rendering and detokenisation. A family implements only `encode_fragment`: the
// tokenisation of a run of ordinary text that contains no special token.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "thinkmesh/tokenizer.h"

namespace thinkmesh::tokenizer {

struct Vocab {
  VocabFamily family = VocabFamily::spm;
  std::string pre;         // tokenizer.ggml.pre ("default", "llama-bpe", "qwen2", ...)
  std::string model_name;  // general.name; llama.cpp keys some token attributes on it (phi-3)

  std::vector<std::string> tokens;  // id → text as stored
  std::vector<float> scores;        // id → score (spm merge priority); may be empty
  std::vector<TokenKind> kinds;     // id → kind; `normal` when the file has none
  std::unordered_map<std::string, TokenId> token_to_id;
  // BPE merges "left right" → rank (lower merges first).
  std::unordered_map<std::string, int32_t> merge_rank;

  std::optional<TokenId> bos, eos, eot, eom, unk, pad, sep, cls, mask, linefeed;
  // Fill-in-the-middle tokens; fim_pad/fim_rep/fim_sep are end-of-generation in llama.cpp.
  std::optional<TokenId> fim_pre, fim_suf, fim_mid, fim_pad, fim_rep, fim_sep;
  bool add_bos = false;
  bool add_eos = false;
  bool add_space_prefix = false;  // spm: prepend "▁" to the text (tokenizer.ggml.add_space_prefix)
  bool ignore_merges = false;     // bpe llama-bpe: a pre-token found whole in the vocab is kept whole
  bool clean_spaces = true;       // detokenize: clean_up_tokenization_spaces
  std::vector<TokenId> eog_ids;   // end-of-generation set (EOS, EOT, ...)

  // Control/user-defined/unknown tokens that the special-token split recognises, longest text
  // first (control and unknown ones only with parse_special).
  std::vector<TokenId> special_tokens_by_length;
  // id → kStripLeft|kStripRight: whitespace eaten around a matched special token (llama.cpp's
  // LSTRIP/RSTRIP attributes); filled by finalize, empty when no token has them.
  static constexpr uint8_t kStripLeft = 1, kStripRight = 2;
  std::vector<uint8_t> strip;

  // Fills token_to_id, the EOT/EOM/FIM ids found by name, eog_ids, special_tokens_by_length
  // and strip from the other fields and validates sizes and ids; throws Error(invalid_file).
  // Idempotent: callers may change fields (e.g. `pre`) and finalize again.
  void finalize();
  const std::string& text(TokenId id) const { return tokens.at(static_cast<size_t>(id)); }
  std::optional<TokenId> find(std::string_view text) const;
};

// Reads `tokenizer.ggml.*` metadata into a Vocab (no family-specific processing).
Vocab vocab_from_gguf(const gguf::File& file);
// Sets the flags llama.cpp derives from a byte-level BPE vocabulary's pre-tokenizer name
// (v.pre): ignore_merges, add_bos, clean_spaces. Throws Error(unsupported) for an unknown
// name; `source` names the file in the message.
void apply_bpe_pre_defaults(Vocab& v, const std::string& source);

class VocabTokenizer : public Tokenizer {
 public:
  explicit VocabTokenizer(Vocab vocab);

  std::vector<TokenId> tokenize(std::string_view text,
                                const TokenizeOptions& options) const override;
  std::string token_to_piece(TokenId id, bool render_special) const override;
  std::string detokenize(std::span<const TokenId> ids,
                         const DetokenizeOptions& options) const override;

  VocabFamily family() const override { return vocab_.family; }
  size_t vocab_size() const override { return vocab_.tokens.size(); }
  const std::string& token_text(TokenId id) const override;
  TokenKind token_kind(TokenId id) const override;
  std::optional<TokenId> find_token(std::string_view text) const override { return vocab_.find(text); }
  std::optional<TokenId> bos() const override;
  std::optional<TokenId> eos() const override;
  std::optional<TokenId> eot() const override { return vocab_.eot; }
  std::optional<TokenId> unk() const override { return vocab_.unk; }
  std::optional<TokenId> pad() const override { return vocab_.pad; }
  bool adds_bos() const override { return vocab_.add_bos; }
  bool adds_eos() const override { return vocab_.add_eos; }
  bool is_eog(TokenId id) const override;

  const Vocab& vocab() const { return vocab_; }

 protected:
  // Tokenises ordinary text (no special tokens inside) and appends the ids to `out`.
  // `at_text_start` is true for the first fragment of the input and for every fragment that
  // follows a special token (spm adds the "▁" prefix there, as llama.cpp does).
  virtual void encode_fragment(std::string_view text, bool at_text_start,
                               std::vector<TokenId>& out) const = 0;
  // The text a normal token (and, for spm, a byte token) contributes to detokenised output;
  // the base class renders control/unknown/user-defined tokens itself.
  virtual std::string decode_piece(TokenId id) const = 0;

  Vocab vocab_;
};

}  // namespace thinkmesh::tokenizer
