// SentencePiece-style BPE ("llama" vocabularies), as llama.cpp c392e50 computes it
// (llm_tokenizer_spm_session): spaces become "▁" (U+2581), a "▁" is prepended at the start
// of the text and after each special token when add_space_prefix is set, the text is cut
// into UTF-8 characters, and adjacent symbols whose concatenation is a vocabulary token are
// merged, highest score first (ties: leftmost first). A final symbol that is not a token is
// emitted as byte tokens <0xXX>.
#include <algorithm>
#include <array>
#include <cstdint>

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
    // An ASCII character that no token longer than one byte contains (e.g. "\n" in llama
    // vocabularies, which spell it <0x0A>) can never be part of a merge, so the text may also
    // be cut on both sides of it.
    isolated_.fill(true);
    for (const std::string& t : vocab_.tokens) {
      if (t.size() < 2) continue;
      for (char c : t) {
        if (static_cast<uint8_t>(c) < 0x80) isolated_[static_cast<uint8_t>(c)] = false;
      }
    }
    // Ids of the two-character texts made of ASCII characters and "▁": every word starts
    // with such pairs, and a table read is much cheaper than a probe of the index.
    for (int a = 0; a < kPairChars; ++a) {
      for (int b = 0; b < kPairChars; ++b) {
        const std::string pair = pair_char(a) + pair_char(b);
        small_pairs_[static_cast<size_t>(a * kPairChars + b)] = index_.find(pair);
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
    // Words repeat, so each word's ids are remembered for the rest of this fragment.
    std::vector<Symbol> symbols;
    std::vector<Bigram> queue;
    const std::string_view all(escaped);
    WordCache seen(all);
    auto encode_word = [&](size_t offset, size_t length) {
      if (length == 0) return;
      const std::string_view word = all.substr(offset, length);
      if (length > kMaxCachedWord) return encode_segment(word, symbols, queue, out);
      WordCache::Entry& entry = seen.find_or_insert(offset, length);
      if (entry.count != WordCache::kNew) {
        for (uint32_t i = 0; i < entry.count; ++i) out.push_back(out[entry.first + i]);
        return;
      }
      const size_t first = out.size();
      encode_segment(word, symbols, queue, out);
      entry.first = first;
      entry.count = static_cast<uint32_t>(out.size() - first);
    };
    size_t word_start = 0;
    bool previous_is_mark = false;
    for (size_t offset = 0; offset < escaped.size();) {
      const auto byte = static_cast<uint8_t>(escaped[offset]);
      if (byte < 0x80 && isolated_[byte]) {
        encode_word(word_start, offset - word_start);
        encode_word(offset, 1);
        word_start = ++offset;
        previous_is_mark = false;
        continue;
      }
      const size_t n = std::min(lead_length(byte), escaped.size() - offset);
      const bool is_mark = all.substr(offset, n) == kSpaceMark;
      if (split_at_words_ && is_mark && !previous_is_mark) {
        encode_word(word_start, offset - word_start);
        word_start = offset;
      }
      previous_is_mark = is_mark;
      offset += n;
    }
    encode_word(word_start, escaped.size() - word_start);
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
    TokenId id;       // the token this symbol is, once merged; -1 for an unmerged character
  };
  struct Bigram {
    int left, right;
    float score;
    uint32_t size;  // bytes of the merged text, to detect stale entries
    TokenId id;     // the token the merge makes
  };
  // Highest score first; among equal scores the leftmost pair.
  struct BigramOrder {
    bool operator()(const Bigram& a, const Bigram& b) const {
      return a.score < b.score || (a.score == b.score && a.left > b.left);
    }
  };

  // Words already encoded in one fragment: (offset, length) in the escaped text → the range
  // [first, first + count) of `out` that holds its ids. Open addressing, linear probing;
  // grows at half load.
  class WordCache {
   public:
    static constexpr uint32_t kNew = UINT32_MAX;  // count of an entry not yet filled in
    struct Entry {
      uint32_t offset = 0, length = 0;  // the word in the escaped text; length 0: empty slot
      size_t first = 0;
      uint32_t count = kNew;
    };

    explicit WordCache(std::string_view text) : text_(text), slots_(16) {}

    // The entry for the word at [offset, offset + length); a new one has count == kNew.
    Entry& find_or_insert(size_t offset, size_t length) {
      if (2 * (used_ + 1) > slots_.size()) grow();
      const std::string_view word = text_.substr(offset, length);
      for (size_t s = TokenIndex::hash(word) & (slots_.size() - 1);;
           s = (s + 1) & (slots_.size() - 1)) {
        Entry& e = slots_[s];
        if (e.length == 0) {
          ++used_;
          e = Entry{static_cast<uint32_t>(offset), static_cast<uint32_t>(length)};
          return e;
        }
        if (e.length == length && text_.compare(e.offset, length, word) == 0) return e;
      }
    }

   private:
    void grow() {
      std::vector<Entry> old(slots_.size() * 2);
      old.swap(slots_);
      for (const Entry& e : old) {
        if (e.length == 0) continue;
        for (size_t s = TokenIndex::hash(text_.substr(e.offset, e.length)) & (slots_.size() - 1);;
             s = (s + 1) & (slots_.size() - 1)) {
          if (slots_[s].length == 0) {
            slots_[s] = e;
            break;
          }
        }
      }
    }

    std::string_view text_;
    std::vector<Entry> slots_;
    size_t used_ = 0;
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
                         static_cast<uint32_t>(offset - n), static_cast<uint32_t>(n), -1});
    }
    if (symbols.empty()) return;

    // A max-heap of candidate merges. Each probe of the index is about one cache miss, so
    // the keys are hashed and their slots prefetched a few at a time before the lookups.
    queue.clear();
    auto pair_text = [&](int left, int right) {
      return text.substr(symbols[left].offset, symbols[left].length + symbols[right].length);
    };
    auto add = [&](int left, int right, std::string_view merged, TokenId id) {
      queue.push_back({left, right, score(id), static_cast<uint32_t>(merged.size()), id});
      std::push_heap(queue.begin(), queue.end(), BigramOrder{});
    };
    auto try_add = [&](int left, int right, std::string_view merged, uint64_t merged_hash) {
      const TokenId id = index_.find(merged, merged_hash);
      if (id >= 0) add(left, right, merged, id);
    };
    constexpr int kBatch = 8;
    uint64_t hashes[kBatch];
    TokenId ids[kBatch];
    const int count = static_cast<int>(symbols.size());
    for (int batch = 1; batch < count; batch += kBatch) {
      const int end = std::min(count, batch + kBatch);
      for (int i = batch; i < end; ++i) {
        ids[i - batch] = small_pair(text, symbols[i - 1], symbols[i]);
        if (ids[i - batch] == kNotSmall) {
          hashes[i - batch] = TokenIndex::hash(pair_text(i - 1, i));
          index_.prefetch(hashes[i - batch]);
        }
      }
      for (int i = batch; i < end; ++i) {
        const std::string_view merged = pair_text(i - 1, i);
        TokenId id = ids[i - batch];
        if (id == kNotSmall) id = index_.find(merged, hashes[i - batch]);
        if (id >= 0) add(i - 1, i, merged, id);
      }
    }

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
      left.id = bigram.id;
      right.length = 0;
      left.next = right.next;
      if (right.next >= 0) symbols[right.next].prev = bigram.left;
      // The two pairs the merged symbol now forms, probed together.
      const int before = left.prev, after = left.next;
      std::string_view with_before, with_after;
      uint64_t hash_before = 0, hash_after = 0;
      if (before >= 0) {
        with_before = pair_text(before, bigram.left);
        hash_before = TokenIndex::hash(with_before);
        index_.prefetch(hash_before);
      }
      if (after >= 0) {
        with_after = pair_text(bigram.left, after);
        hash_after = TokenIndex::hash(with_after);
        index_.prefetch(hash_after);
      }
      if (before >= 0) try_add(before, bigram.left, with_before, hash_before);
      if (after >= 0) try_add(bigram.left, after, with_after, hash_after);
    }

    for (int i = 0; i != -1; i = symbols[i].next) {
      const std::string_view piece = text.substr(symbols[i].offset, symbols[i].length);
      const TokenId id = symbols[i].id >= 0 ? symbols[i].id : index_.find(piece);
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

  // The characters of small_pairs_: ASCII 0..127, and kPairChars - 1 for "▁".
  static constexpr int kPairChars = 129;
  static constexpr TokenId kNotSmall = -2;
  static std::string pair_char(int c) {
    return c == kPairChars - 1 ? std::string(kSpaceMark) : std::string(1, static_cast<char>(c));
  }
  // small_pairs_'s id for two adjacent one-character symbols, -1 if their text is no token,
  // or kNotSmall when the table does not cover them.
  TokenId small_pair(std::string_view text, const Symbol& left, const Symbol& right) const {
    auto index = [&](const Symbol& s) {
      const auto first = static_cast<uint8_t>(text[s.offset]);
      if (s.length == 1 && first < 0x80) return static_cast<int>(first);
      if (s.length == kSpaceMark.size() && text.substr(s.offset, s.length) == kSpaceMark) {
        return kPairChars - 1;
      }
      return -1;
    };
    const int a = index(left), b = index(right);
    if (a < 0 || b < 0) return kNotSmall;
    return small_pairs_[static_cast<size_t>(a * kPairChars + b)];
  }

  static constexpr size_t kMaxCachedWord = 64;  // bytes; longer words are not remembered

  TokenIndex index_;
  bool split_at_words_ = false;
  std::array<bool, 128> isolated_{};  // ASCII characters no multi-byte token contains
  std::array<TokenId, kPairChars * kPairChars> small_pairs_{};
  TokenId byte_tokens_[256];  // <0xXX> (or the one-byte token) per byte; -1 when absent
};

}  // namespace

std::unique_ptr<Tokenizer> make_spm_tokenizer(Vocab vocab) {
  vocab.family = VocabFamily::spm;
  return std::make_unique<SpmTokenizer>(std::move(vocab));
}

}  // namespace thinkmesh::tokenizer
