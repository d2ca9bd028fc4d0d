// WordPiece ("bert" vocabularies) as llama.cpp c392e50 computes it (llm_tokenizer_wpm_session).
//
// Normalisation: every code point is replaced by the first code point of its NFD
// decomposition (accents go; a Hangul syllable keeps only its leading jamo), then lower-cased.
// Whitespace ends a word; NUL, U+FFFD and control characters are dropped; punctuation, ASCII
// symbols and CJK ideographs are words of their own.
// Matching: each word, prefixed with the phantom space "▁", is cut greedily into the longest
// vocabulary tokens from the left; if some position matches nothing, the whole word is [UNK].
// The vocabulary is in convert_hf_to_gguf's "phantom space" form: word-initial pieces are
// "▁word", continuation pieces ("##x" in vocab.txt) are plain "x", "[…]" tokens are kept.
#include <algorithm>
#include <array>
#include <fstream>
#include <sstream>

#include <fmt/core.h>

#include "thinkmesh/error.h"
#include "tokenizer/families.h"
#include "tokenizer/token_index.h"
#include "tokenizer/unicode.h"

namespace thinkmesh::tokenizer {
namespace {

constexpr std::string_view kSpaceMark = "\xE2\x96\x81";  // "▁"

// CJK ideograph ranges BERT isolates (llama.cpp's list, including its 0x2B920 lower bound).
bool is_chinese_char(uint32_t cp) {
  return (cp >= 0x4E00 && cp <= 0x9FFF) || (cp >= 0x3400 && cp <= 0x4DBF) ||
         (cp >= 0x20000 && cp <= 0x2A6DF) || (cp >= 0x2A700 && cp <= 0x2B73F) ||
         (cp >= 0x2B740 && cp <= 0x2B81F) || (cp >= 0x2B920 && cp <= 0x2CEAF) ||
         (cp >= 0xF900 && cp <= 0xFAFF) || (cp >= 0x2F800 && cp <= 0x2FA1F);
}

class WpmTokenizer final : public VocabTokenizer {
 public:
  explicit WpmTokenizer(Vocab vocab) : VocabTokenizer(std::move(vocab)), index_(vocab_.tokens) {
    for (const auto& t : vocab_.tokens) {
      max_token_length_ = std::max(max_token_length_, t.size());
      if (ends_mid_character(t)) match_inside_characters_ = true;
    }
    // The normalisation rules below, applied once to each ASCII character.
    for (uint32_t cp = 0; cp < 0x80; ++cp) {
      const uint16_t flags = unicode::flags(cp);
      AsciiAction action = AsciiAction::append;
      if (flags & unicode::kWhitespace) {
        action = AsciiAction::end_word;
      } else if (cp == 0 || (flags & unicode::kControl)) {
        action = AsciiAction::drop;
      } else if ((flags & (unicode::kPunctuation | unicode::kSymbol)) != 0) {
        action = AsciiAction::own_word;
      }
      ascii_action_[cp] = action;
    }
  }

 protected:
  void encode_fragment(std::string_view text, bool /*at_text_start*/,
                       std::vector<TokenId>& out) const override {
    // `word` always starts with the phantom space; it holds a word once it is longer.
    std::string word(kSpaceMark);
    auto finish_word = [&] {
      if (word.size() > kSpaceMark.size()) encode_word(word, out);
      word.resize(kSpaceMark.size());
    };
    for (size_t pos = 0; pos < text.size();) {
      // ASCII, most of most texts: the same rules from a table, without decoding.
      if (const auto byte = static_cast<uint8_t>(text[pos]); byte < 0x80) {
        ++pos;
        const char lower = static_cast<char>(byte >= 'A' && byte <= 'Z' ? byte + 32 : byte);
        switch (ascii_action_[byte]) {
          case AsciiAction::append:
            word.push_back(lower);
            break;
          case AsciiAction::end_word:
            finish_word();
            break;
          case AsciiAction::drop:
            break;
          case AsciiAction::own_word:
            finish_word();
            word.push_back(lower);
            finish_word();
            break;
        }
        continue;
      }
      const uint32_t cp = unicode::nfd_first(unicode::decode_one(text, pos));
      const uint16_t flags = unicode::flags(cp);
      if (flags & unicode::kWhitespace) {
        finish_word();
        continue;
      }
      if (cp == 0 || cp == unicode::kReplacement || (flags & unicode::kControl)) continue;
      const uint32_t lower =
          cp < 0x80 ? (cp >= 'A' && cp <= 'Z' ? cp + 32 : cp) : unicode::to_lower(cp);
      if ((flags & unicode::kPunctuation) || (cp < 0x7F && (flags & unicode::kSymbol)) ||
          is_chinese_char(cp)) {
        finish_word();
        unicode::append_utf8(word, lower);
        finish_word();
      } else {
        unicode::append_utf8(word, lower);
      }
    }
    finish_word();
  }

  std::string decode_piece(TokenId id) const override {
    // "▁" → " " (continuation pieces have none and join the previous piece).
    const std::string& text = vocab_.text(id);
    std::string piece;
    piece.reserve(text.size());
    for (size_t i = 0; i < text.size();) {
      if (text.compare(i, kSpaceMark.size(), kSpaceMark) == 0) {
        piece.push_back(' ');
        i += kSpaceMark.size();
      } else {
        piece.push_back(text[i++]);
      }
    }
    return piece;
  }

 private:
  // Greedy longest match over byte positions of "▁word"; all or nothing per word.
  void encode_word(std::string_view word, std::vector<TokenId>& out) const {
    const size_t n = word.size();
    const size_t first = out.size();
    for (size_t i = 0; i < n; ++i) {
      bool matched = false;
      for (size_t j = std::min(n, i + max_token_length_ + 1); j > i; --j) {
        if (j < n && !match_inside_characters_ && is_continuation(word[j])) continue;
        const TokenId id = index_.find(word.substr(i, j - i));
        if (id >= 0) {
          out.push_back(id);
          matched = true;
          i = j - 1;
          break;
        }
      }
      if (!matched) {
        out.resize(first);
        break;
      }
    }
    if (out.size() == first && vocab_.unk) out.push_back(*vocab_.unk);
  }

  static bool is_continuation(char c) { return (static_cast<uint8_t>(c) & 0xC0) == 0x80; }
  // True if `token` ends with an incomplete UTF-8 sequence (a lead byte followed by fewer
  // continuation bytes than it announces): only such a token can equal a piece of a word
  // that ends inside a character.
  static bool ends_mid_character(const std::string& token) {
    size_t p = token.size();
    while (p > 0 && is_continuation(token[p - 1])) --p;
    if (p == 0) return false;
    const auto lead = static_cast<uint8_t>(token[p - 1]);
    return lead >= 0xC0 && unicode::utf8_sequence_length(lead) > token.size() - (p - 1);
  }

  enum class AsciiAction : uint8_t { append, end_word, drop, own_word };

  TokenIndex index_;
  size_t max_token_length_ = 0;  // bytes
  std::array<AsciiAction, 128> ascii_action_{};
  // Words are valid UTF-8 and matches start at character boundaries; unless some token ends
  // inside a character, a piece ending inside one cannot match and is not looked up.
  bool match_inside_characters_ = false;
};

}  // namespace

std::unique_ptr<Tokenizer> make_wpm_tokenizer(Vocab vocab) {
  vocab.family = VocabFamily::wpm;
  return std::make_unique<WpmTokenizer>(std::move(vocab));
}

}  // namespace thinkmesh::tokenizer

namespace thinkmesh {

std::unique_ptr<Tokenizer> Tokenizer::from_bert_vocab(const std::string& vocab_txt) {
  std::ifstream in(vocab_txt, std::ios::binary);
  if (!in)
    throw Error(ErrorKind::not_found, fmt::format("{}: cannot open the vocabulary", vocab_txt));
  std::ostringstream contents;
  contents << in.rdbuf();
  if (in.bad()) throw Error(ErrorKind::io, fmt::format("{}: read failed", vocab_txt));
  const std::string data = contents.str();

  tokenizer::Vocab vocab;
  vocab.family = VocabFamily::wpm;
  vocab.pre = "default";
  vocab.add_bos = true;
  vocab.add_eos = false;
  vocab.add_space_prefix = false;
  vocab.clean_spaces = true;
  // One token per line (a trailing "\r" is dropped for CRLF files), converted to the
  // phantom-space form exactly as convert_hf_to_gguf.py does.
  for (size_t start = 0; start < data.size();) {
    size_t end = data.find('\n', start);
    if (end == std::string::npos) end = data.size();
    std::string_view line(data.data() + start, end - start);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    start = end + 1;
    vocab.tokens.push_back(tokenizer::wordpiece_gguf_form(line, "##"));
  }
  vocab.kinds.assign(vocab.tokens.size(), TokenKind::normal);
  tokenizer::set_bert_special_tokens(vocab, vocab_txt);
  return tokenizer::make_wpm_tokenizer(std::move(vocab));
}

namespace tokenizer {

std::string wordpiece_gguf_form(std::string_view text, std::string_view continuation_prefix) {
  if (text.size() >= 2 && text.front() == '[' && text.back() == ']') return std::string(text);
  if (text.substr(0, continuation_prefix.size()) == continuation_prefix) {
    return std::string(text.substr(continuation_prefix.size()));
  }
  return std::string(kSpaceMark).append(text);
}

void set_bert_special_tokens(Vocab& vocab, const std::string& source) {
  // BERT's five special tokens are CONTROL, as convert marks them. (Vocab::finalize has not
  // built its map yet, so a handful of linear searches.)
  auto special = [&](std::string_view text) -> std::optional<TokenId> {
    const auto it = std::find(vocab.tokens.begin(), vocab.tokens.end(), text);
    if (it == vocab.tokens.end()) return std::nullopt;
    const auto id = static_cast<TokenId>(it - vocab.tokens.begin());
    vocab.kinds[static_cast<size_t>(id)] = TokenKind::control;
    return id;
  };
  vocab.pad = special("[PAD]");
  vocab.unk = special("[UNK]");
  vocab.bos = vocab.cls = special("[CLS]");
  vocab.sep = special("[SEP]");
  vocab.mask = special("[MASK]");
  vocab.linefeed = vocab.pad;
  if (!vocab.bos || !vocab.sep || !vocab.unk) {
    throw Error(ErrorKind::invalid_file,
                fmt::format("{}: a BERT vocabulary needs [CLS], [SEP] and [UNK]", source));
  }
}

}  // namespace tokenizer

}  // namespace thinkmesh
