// VocabTokenizer: what the three families share, following llama.cpp c392e50
// (llama_vocab::impl::tokenize, tokenizer_st_partition, token_to_piece, detokenize):
//   tokenize   = split out special-token text → BOS/[CLS] → family encoding of each text
//                fragment → EOS/[SEP]
//   detokenize = pieces joined, the space-prefix removed from the first one, then the
//                clean_up_tokenization_spaces passes.
#include <algorithm>
#include <array>
#include <bitset>

#include <fmt/core.h>

#include "thinkmesh/error.h"
#include "tokenizer/vocab.h"

namespace thinkmesh::tokenizer {
namespace {

// A piece of the input: either raw text [offset, offset + length) or one special token.
struct Fragment {
  TokenId token;  // -1 for raw text
  size_t offset;
  size_t length;
};

// C-locale isspace, which llama.cpp uses for LSTRIP/RSTRIP.
bool is_c_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

// Splits `text` at every occurrence of the special tokens it may contain. Tokens are tried
// longest first; each one splits every remaining raw fragment at all its non-overlapping
// occurrences, left to right.
std::vector<Fragment> split_special(const Vocab& vocab, std::string_view text, bool parse_special) {
  std::vector<Fragment> fragments;
  if (text.empty()) return fragments;
  fragments.push_back({-1, 0, text.size()});

  // Bytes present in the text: most special tokens start with a byte that does not occur,
  // which saves a search through the whole text for each of them.
  std::bitset<256> present;
  for (char c : text) present.set(static_cast<uint8_t>(c));

  std::vector<Fragment> next;
  for (TokenId id : vocab.special_tokens_by_length) {
    const auto index = static_cast<size_t>(id);
    const TokenKind kind = vocab.kinds[index];
    // Control and unknown tokens only with parse_special; user-defined ones always.
    if (!parse_special && (kind == TokenKind::control || kind == TokenKind::unknown)) continue;
    const std::string& special = vocab.tokens[index];
    if (!present.test(static_cast<uint8_t>(special[0]))) continue;
    if (text.find(special) == std::string_view::npos) continue;
    const uint8_t strip = vocab.strip.empty() ? 0 : vocab.strip[index];

    next.clear();
    for (const Fragment& f : fragments) {
      if (f.token >= 0) {
        next.push_back(f);
        continue;
      }
      size_t offset = f.offset, length = f.length;
      while (length > 0) {
        // Searched within the fragment only: searching on to the end of the text would make
        // a text with many special tokens quadratic in its length.
        const size_t match = text.substr(0, offset + length).find(special, offset);
        if (match == std::string_view::npos) break;
        size_t left_length = match - offset;
        if (strip & Vocab::kStripLeft) {
          while (left_length > 0 && is_c_space(text[offset + left_length - 1])) --left_length;
        }
        if (left_length > 0) next.push_back({-1, offset, left_length});
        next.push_back({id, match, special.size()});
        size_t right_offset = match + special.size();
        size_t right_length = offset + length - right_offset;
        if (strip & Vocab::kStripRight) {
          while (right_length > 0 && is_c_space(text[right_offset])) ++right_offset, --right_length;
        }
        offset = right_offset;
        length = right_length;
      }
      if (length > 0) next.push_back({-1, offset, length});
    }
    fragments.swap(next);
  }
  return fragments;
}

// llama.cpp's clean_up_tokenization_spaces: three in-place passes over the bytes. The second
// pass overwrites the byte after " ' " with NUL, which the next comparison then sees; that is
// kept so the output matches byte for byte.
void clean_spaces(std::string& text) {
  auto pass = [&text](auto&& body) {
    const size_t n = text.size();
    size_t total = n ? 1 : 0;
    for (size_t i = 1; i < n; ++i) body(i, total, n);
    text.resize(total);
  };
  // " ?", " !", " .", " ," lose the space.
  pass([&](size_t& i, size_t& total, size_t) {
    const char x = text[i];
    if (text[i - 1] == ' ' && (x == '?' || x == '!' || x == '.' || x == ',')) --total;
    text[total++] = x;
  });
  // " ' " becomes "'".
  pass([&](size_t& i, size_t& total, size_t n) {
    const char x = text[i];
    if (x == '\'' && i + 1 < n && text[i - 1] == ' ' && text[i + 1] == ' ') {
      --total;
      text[++i] = '\0';
    }
    text[total++] = x;
  });
  // " 's", " 'm", " 're", " 've" lose the space.
  pass([&](size_t& i, size_t& total, size_t n) {
    const char x = text[i];
    if (text[i - 1] == ' ' && x == '\'' && i + 1 < n) {
      const char x1 = text[i + 1];
      if (x1 == 's' || x1 == 'm') {
        --total;
      } else if (i + 2 < n) {
        const char x2 = text[i + 2];
        if ((x1 == 'r' && x2 == 'e') || (x1 == 'v' && x2 == 'e')) --total;
      }
    }
    text[total++] = x;
  });
}

}  // namespace

VocabTokenizer::VocabTokenizer(Vocab vocab) : vocab_(std::move(vocab)) { vocab_.finalize(); }

std::vector<TokenId> VocabTokenizer::tokenize(std::string_view text,
                                              const TokenizeOptions& options) const {
  const std::vector<Fragment> fragments = split_special(vocab_, text, options.parse_special);
  std::vector<TokenId> out;
  out.reserve(text.size() / 3 + 4);

  // WordPiece always frames with [CLS] … [SEP]; the others follow add_bos/add_eos.
  const bool wpm = vocab_.family == VocabFamily::wpm;
  if (options.add_special && (wpm || vocab_.add_bos)) out.push_back(*vocab_.bos);

  bool after_special = true;
  for (const Fragment& f : fragments) {
    if (f.token >= 0) {
      out.push_back(f.token);
      after_special = true;
    } else {
      encode_fragment(text.substr(f.offset, f.length), after_special, out);
      after_special = false;
    }
  }

  if (options.add_special) {
    if (wpm) {
      out.push_back(*vocab_.sep);
    } else if (vocab_.add_eos) {
      out.push_back(*vocab_.eos);
    }
  }
  return out;
}

std::string VocabTokenizer::token_to_piece(TokenId id, bool render_special) const {
  const TokenKind kind = token_kind(id);
  switch (kind) {
    case TokenKind::control:
    case TokenKind::unknown:
      return render_special ? vocab_.text(id) : std::string();
    case TokenKind::user_defined: return vocab_.text(id);
    case TokenKind::normal: return decode_piece(id);
    case TokenKind::byte:
      // llama.cpp renders byte tokens only in SentencePiece vocabularies.
      return vocab_.family == VocabFamily::spm ? decode_piece(id) : std::string();
    case TokenKind::undefined:
    case TokenKind::unused: return {};
  }
  return {};
}

std::string VocabTokenizer::detokenize(std::span<const TokenId> ids,
                                       const DetokenizeOptions& options) const {
  // The space that tokenize's "▁" prefix put in front of the first word is dropped, unless a
  // BOS is removed first (llama.cpp's remove_space logic).
  bool remove_space = vocab_.add_space_prefix;
  if (options.remove_special && vocab_.add_bos && !ids.empty() && ids.front() == vocab_.bos) {
    remove_space = false;
    ids = ids.subspan(1);
  }
  if (options.remove_special && vocab_.add_eos && !ids.empty() && ids.back() == vocab_.eos) {
    ids = ids.subspan(0, ids.size() - 1);
  }

  std::string text;
  for (TokenId id : ids) {
    std::string piece = token_to_piece(id, options.render_special);
    const size_t skip = remove_space && !piece.empty() && piece[0] == ' ' ? 1 : 0;
    text.append(piece, skip);
    remove_space = false;
  }
  if (vocab_.clean_spaces) clean_spaces(text);
  return text;
}

const std::string& VocabTokenizer::token_text(TokenId id) const {
  if (id < 0 || static_cast<size_t>(id) >= vocab_.tokens.size()) {
    throw Error(ErrorKind::invalid_argument,
                fmt::format("token id {} is out of range (vocabulary has {} tokens)", id,
                            vocab_.tokens.size()));
  }
  return vocab_.tokens[static_cast<size_t>(id)];
}

TokenKind VocabTokenizer::token_kind(TokenId id) const {
  token_text(id);  // range check
  return vocab_.kinds[static_cast<size_t>(id)];
}

std::optional<TokenId> VocabTokenizer::bos() const { return vocab_.bos; }

std::optional<TokenId> VocabTokenizer::eos() const {
  return vocab_.family == VocabFamily::wpm ? vocab_.sep : vocab_.eos;
}

bool VocabTokenizer::is_eog(TokenId id) const {
  return std::binary_search(vocab_.eog_ids.begin(), vocab_.eog_ids.end(), id);
}

}  // namespace thinkmesh::tokenizer

namespace thinkmesh {

// Here rather than beside from_gguf so that using one family does not pull in the others.
Tokenizer::~Tokenizer() = default;

}  // namespace thinkmesh
