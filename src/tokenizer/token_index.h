// TokenIndex: text → id lookup by string_view, for the tokenizers' inner loops (SentencePiece
// bigrams, WordPiece prefixes), where std::unordered_map<std::string, …> would need a
// std::string per probe. Open addressing with linear probing; keys are views into the
// vocabulary's strings, which must outlive the index and not change.
//
// Most probes in the inner loops miss (an adjacent pair that is not a token), and the table
// does not fit in L1/L2 for a 32k–150k vocabulary, so a probe costs about one cache miss.
// Each slot is 16 bytes and holds enough to decide a miss, and a hit on a text of at most 8
// bytes, without reading the token's string: its first 8 bytes, its length and a 24-bit
// hash tag. Callers that know several keys ahead can hash them first and `prefetch` the
// slots, so that the misses overlap.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "thinkmesh/tokenizer.h"

namespace thinkmesh::tokenizer {

class TokenIndex {
 public:
  TokenIndex() = default;
  // Indexes every token; for duplicate texts the lowest id wins (a finalized Vocab has none).
  explicit TokenIndex(const std::vector<std::string>& tokens) : tokens_(&tokens) {
    size_t capacity = 16;
    while (capacity < tokens.size() * 2) capacity *= 2;
    slots_.assign(capacity, Slot{});
    mask_ = capacity - 1;
    for (size_t i = 0; i < tokens.size(); ++i) {
      const std::string& t = tokens[i];
      const uint64_t h = hash(t);
      const uint32_t key = tag(h, t.size());
      for (size_t s = h & mask_;; s = (s + 1) & mask_) {
        Slot& slot = slots_[s];
        if (slot.id < 0) {
          slot = Slot{head(t), key, static_cast<TokenId>(i)};
          break;
        }
        if (slot.tag == key && tokens[static_cast<size_t>(slot.id)] == t) break;
      }
    }
  }

  // 64-bit hash of a short byte string: 8 bytes at a time, multiply-xorshift mixing.
  static uint64_t hash(std::string_view s) {
    uint64_t h = 0x9E3779B97F4A7C15ull ^ (s.size() * 0xFF51AFD7ED558CCDull);
    const char* p = s.data();
    size_t n = s.size();
    while (n >= 8) {
      uint64_t w;
      std::memcpy(&w, p, 8);
      h = (h ^ w) * 0xBF58476D1CE4E5B9ull;
      h ^= h >> 29;
      p += 8;
      n -= 8;
    }
    if (n > 0) {
      uint64_t w = 0;
      std::memcpy(&w, p, n);
      h = (h ^ w) * 0x94D049BB133111EBull;
    }
    h ^= h >> 31;
    h *= 0xBF58476D1CE4E5B9ull;
    h ^= h >> 32;
    return h;
  }

  // Starts loading the first slot a probe for a text with this hash will read.
  void prefetch(uint64_t text_hash) const {
    if (!slots_.empty()) __builtin_prefetch(&slots_[text_hash & mask_]);
  }

  // The id of the token whose text is exactly `text`, or -1.
  TokenId find(std::string_view text) const { return find(text, hash(text)); }
  // The same, with `text_hash` == hash(text) computed by the caller.
  TokenId find(std::string_view text, uint64_t text_hash) const {
    if (slots_.empty()) return -1;
    const uint32_t key = tag(text_hash, text.size());
    const uint64_t text_head = head(text);
    for (size_t s = text_hash & mask_;; s = (s + 1) & mask_) {
      const Slot& slot = slots_[s];
      if (slot.id < 0) return -1;
      if (slot.tag != key || slot.head != text_head) continue;
      // Equal tags mean equal lengths below 255 bytes; then the head settles texts of up to
      // 8 bytes. Longer texts are compared in full.
      const std::string& token = (*tokens_)[static_cast<size_t>(slot.id)];
      if (text.size() < kLengthInTag && text.size() <= 8) return slot.id;
      if (token.size() == text.size() &&
          std::memcmp(token.data() + 8, text.data() + 8, text.size() - 8) == 0) {
        return slot.id;
      }
    }
  }

 private:
  static constexpr size_t kLengthInTag = 255;  // lengths from here on share one tag value

  // The first 8 bytes (zero-padded).
  static uint64_t head(std::string_view s) {
    uint64_t w = 0;
    std::memcpy(&w, s.data(), std::min<size_t>(s.size(), 8));
    return w;
  }
  // Upper 24 bits of the hash (the lower ones pick the slot) and the length, capped at 255.
  static uint32_t tag(uint64_t h, size_t length) {
    return (static_cast<uint32_t>(h >> 40) << 8) |
           static_cast<uint32_t>(std::min(length, kLengthInTag));
  }

  struct Slot {
    uint64_t head = 0;  // first 8 bytes of the text, zero-padded
    uint32_t tag = 0;   // see tag()
    TokenId id = -1;    // -1: empty
  };
  static_assert(sizeof(Slot) == 16);

  const std::vector<std::string>* tokens_ = nullptr;
  std::vector<Slot> slots_;
  size_t mask_ = 0;
};

}  // namespace thinkmesh::tokenizer
