// SentencePiece-style BPE ("llama" vocabularies), as llama.cpp c392e50 computes it
// (llm_tokenizer_spm_session): spaces become "▁" (U+2581), a "▁" is prepended at the start
// of the text and after each special token when add_space_prefix is set, the text is cut
// into UTF-8 characters, and adjacent symbols whose concatenation is a vocabulary token are
// merged, highest score first (ties: leftmost first). A final symbol that is not a token is
// emitted as byte tokens <0xXX>.
#include <algorithm>
#include <cstdint>
#include <unordered_map>

#include <fmt/core.h>

#include "thinkmesh/error.h"
#include "tokenizer/families.h"
#include "tokenizer/token_index.h"

namespace thinkmesh::tokenizer {
namespace {

constexpr std::string_view kSpaceMark = "\xE2\x96\x81";  // "▁"

// Length of the UTF-8 sequence a lead byte announces, by its high nibble, as llama.cpp's
// unicode_len_utf8: continuation bytes count as 1, 0xF8..0xFF as 4 (then cut at the end).
size_t lead_length(uint8_t byte) {
  static constexpr uint8_t kByNibble[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
  return kByNibble[byte >> 4];
}

class SpmTokenizer final : public VocabTokenizer {
 public:
  explicit SpmTokenizer(Vocab vocab) : VocabTokenizer(std::move(vocab)), index_(vocab_.tokens) {
    static constexpr char kHex[] = "0123456789ABCDEF";
    for (int b = 0; b < 256; ++b) {
      const char name[6] = {'<', '0', 'x', kHex[b >> 4], kHex[b & 15], '>'};
      TokenId id = index_.find(std::string_view(name, 6));
      if (id < 0 && b != 0) id = index_.find(std::string_view(reinterpret_cast<const char*>(&b), 1));
      byte_tokens_[b] = id;
    }
    // Word-by-word merging is exact only if no token holds a "▁" right after another
    // character: then no merge can join the end of one word to the "▁" starting the next.
    split_at_words_ = true;
    for (const std::string& t : vocab_.tokens) {
      for (size_t p = t.find(kSpaceMark, 1); p != std::string::npos; p = t.find(kSpaceMark, p + 1)) {
        if (p < kSpaceMark.size() || t.compare(p - kSpaceMark.size(), kSpaceMark.size(), kSpaceMark) != 0) {
          split_at_words_ = false;
        }
      }
    }
  }

 protected:
  void encode_fragment(std::string_view text, bool at_text_start,
                       std::vector<TokenId>& out) const override {
    // Escaped text: "▁" for each space, and for the prefix.
    std::string escaped;
    escaped.reserve(text.size() + 3 + text.size() / 2);
    if (vocab_.add_space_prefix && at_text_start) escaped.append(kSpaceMark);
    for (char c : text) {
      if (c == ' ') {
        escaped.append(kSpaceMark);
      } else {
        escaped.push_back(c);
      }
    }
    if (escaped.empty()) return;
    if (escaped.size() > UINT32_MAX) {
      throw Error(ErrorKind::out_of_range,
                  fmt::format("tokenizer: a text fragment of {} bytes is too long", text.size()));
    }

    // Merges never cross the start of a word when no token has a "▁" after another
    // character (checked at construction): the text is then merged word by word, which gives
    // the same result as one pass over the whole fragment with much smaller queues.
    // Words repeat, so each word's ids are remembered for the rest of this fragment:
    // word text → [first, first + count) in `out`.
    std::vector<Symbol> symbols;
    std::vector<Bigram> queue;
    std::unordered_map<std::string_view, std::pair<size_t, size_t>> seen;
    auto encode_word = [&](std::string_view word) {
      if (word.size() > kMaxCachedWord) return encode_segment(word, symbols, queue, out);
      if (const auto it = seen.find(word); it != seen.end()) {
        const auto [first, count] = it->second;
        for (size_t i = 0; i < count; ++i) out.push_back(out[first + i]);
        return;
      }
      const size_t first = out.size();
      encode_segment(word, symbols, queue, out);
      seen.emplace(word, std::pair{first, out.size() - first});
    };
    const std::string_view all(escaped);
    if (!split_at_words_) return encode_segment(all, symbols, queue, out);
    size_t word_start = 0;
    bool previous_is_mark = false;
    for (size_t offset = 0; offset < escaped.size();) {
      const size_t n =
          std::min(lead_length(static_cast<uint8_t>(escaped[offset])), escaped.size() - offset);
      const bool is_mark = all.substr(offset, n) == kSpaceMark;
      if (is_mark && !previous_is_mark && offset > word_start) {
        encode_word(all.substr(word_start, offset - word_start));
        word_start = offset;
      }
      previous_is_mark = is_mark;
      offset += n;
    }
    encode_word(all.substr(word_start));
  }

  std::string decode_piece(TokenId id) const override {
    const std::string& text = vocab_.text(id);
    if (vocab_.kinds[static_cast<size_t>(id)] == TokenKind::byte) {
      // "<0xXX>" → that byte.
      if (text.size() == 6 && text.compare(0, 3, "<0x") == 0 && text[5] == '>') {
        const int hi = hex_value(text[3]), lo = hex_value(text[4]);
        if (hi >= 0 && lo >= 0) return std::string(1, static_cast<char>(hi * 16 + lo));
      }
      return text;
    }
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
  struct Symbol {
    int prev, next;   // neighbours in the list; -1 at the ends
    uint32_t offset;  // into the escaped text
    uint32_t length;  // bytes; 0 once merged into the left neighbour
  };
  struct Bigram {
    int left, right;
    float score;
    size_t size;  // bytes of the merged text, to detect stale entries
  };
  // Highest score first; among equal scores the leftmost pair.
  struct BigramOrder {
    bool operator()(const Bigram& a, const Bigram& b) const {
      return a.score < b.score || (a.score == b.score && a.left > b.left);
    }
  };

  // llama.cpp's merge loop over one run of text (a word, or the whole fragment).
  void encode_segment(std::string_view text, std::vector<Symbol>& symbols,
                      std::vector<Bigram>& queue, std::vector<TokenId>& out) const {
    // One symbol per UTF-8 character, linked as a list.
    symbols.clear();
    for (size_t offset = 0; offset < text.size();) {
      const size_t n =
          std::min(lead_length(static_cast<uint8_t>(text[offset])), text.size() - offset);
      const int index = static_cast<int>(symbols.size());
      offset += n;
      symbols.push_back({index - 1, offset == text.size() ? -1 : index + 1,
                         static_cast<uint32_t>(offset - n), static_cast<uint32_t>(n)});
    }
    if (symbols.empty()) return;

    // A max-heap of candidate merges.
    queue.clear();
    auto try_add = [&](int left, int right) {
      if (left < 0 || right < 0) return;
      const size_t size = symbols[left].length + symbols[right].length;
      const TokenId id = index_.find(text.substr(symbols[left].offset, size));
      if (id < 0) return;
      queue.push_back({left, right, score(id), size});
      std::push_heap(queue.begin(), queue.end(), BigramOrder{});
    };
    for (int i = 1; i < static_cast<int>(symbols.size()); ++i) try_add(i - 1, i);

    while (!queue.empty()) {
      std::pop_heap(queue.begin(), queue.end(), BigramOrder{});
      const Bigram bigram = queue.back();
      queue.pop_back();
      Symbol& left = symbols[bigram.left];
      Symbol& right = symbols[bigram.right];
      // Stale: one side was merged away or grew since this pair was queued.
      if (left.length == 0 || right.length == 0 || left.length + right.length != bigram.size) {
        continue;
      }
      left.length += right.length;
      right.length = 0;
      left.next = right.next;
      if (right.next >= 0) symbols[right.next].prev = bigram.left;
      try_add(left.prev, bigram.left);
      try_add(bigram.left, left.next);
    }

    for (int i = 0; i != -1; i = symbols[i].next) {
      const std::string_view piece = text.substr(symbols[i].offset, symbols[i].length);
      const TokenId id = index_.find(piece);
      if (id >= 0) {
        out.push_back(id);
        continue;
      }
      for (char c : piece) out.push_back(byte_token(static_cast<uint8_t>(c)));
    }
  }

  static int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
  }

  float score(TokenId id) const {
    return vocab_.scores.empty() ? 0.0f : vocab_.scores[static_cast<size_t>(id)];
  }

  TokenId byte_token(uint8_t byte) const {
    if (byte_tokens_[byte] >= 0) return byte_tokens_[byte];
    if (vocab_.unk) return *vocab_.unk;
    throw Error(ErrorKind::unsupported,
                fmt::format("tokenizer: the vocabulary has no token for byte 0x{:02X} and no "
                            "unknown token",
                            byte));
  }

  static constexpr size_t kMaxCachedWord = 64;  // bytes; longer words are not remembered

  TokenIndex index_;
  bool split_at_words_ = false;
  TokenId byte_tokens_[256];  // <0xXX> (or the one-byte token) per byte; -1 when absent
};

}  // namespace

std::unique_ptr<Tokenizer> make_spm_tokenizer(Vocab vocab) {
  vocab.family = VocabFamily::spm;
  return std::make_unique<SpmTokenizer>(std::move(vocab));
}

}  // namespace thinkmesh::tokenizer
