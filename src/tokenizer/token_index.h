// TokenIndex: text → id lookup by string_view, for the tokenizers' inner loops (SentencePiece
// bigrams, WordPiece prefixes), where std::unordered_map<std::string, …> would need a
// std::string per probe. Open addressing with linear probing; keys are views into the
// vocabulary's strings, which must outlive the index and not change.
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
      for (size_t s = h & mask_;; s = (s + 1) & mask_) {
        Slot& slot = slots_[s];
        if (slot.id < 0) {
          slot = Slot{head(t), static_cast<uint32_t>(h >> 32), static_cast<uint32_t>(t.size()),
                      static_cast<TokenId>(i)};
          break;
        }
        if (slot.hash == static_cast<uint32_t>(h >> 32) && slot.length == t.size() &&
            tokens[static_cast<size_t>(slot.id)] == t) {
          break;
        }
      }
    }
  }

  // The id of the token whose text is exactly `text`, or -1.
  TokenId find(std::string_view text) const {
    if (slots_.empty()) return -1;
    const uint64_t h = hash(text);
    const auto tag = static_cast<uint32_t>(h >> 32);
    const uint64_t text_head = head(text);
    for (size_t s = h & mask_;; s = (s + 1) & mask_) {
      const Slot& slot = slots_[s];
      if (slot.id < 0) return -1;
      if (slot.hash == tag && slot.length == text.size() && slot.head == text_head &&
          (text.size() <= 8 ||
           std::memcmp((*tokens_)[static_cast<size_t>(slot.id)].data() + 8, text.data() + 8,
                       text.size() - 8) == 0)) {
        return slot.id;
      }
    }
  }

 private:
  // The first 8 bytes (zero-padded): most lookups are short and then need no second memory
  // access to the token's string.
  static uint64_t head(std::string_view s) {
    uint64_t w = 0;
    std::memcpy(&w, s.data(), std::min<size_t>(s.size(), 8));
    return w;
  }

  struct Slot {
    uint64_t head = 0;    // first 8 bytes of the text
    uint32_t hash = 0;    // upper half of the 64-bit hash
    uint32_t length = 0;  // bytes
    TokenId id = -1;      // -1: empty
  };

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

  const std::vector<std::string>* tokens_ = nullptr;
  std::vector<Slot> slots_;
  size_t mask_ = 0;
};

}  // namespace thinkmesh::tokenizer
