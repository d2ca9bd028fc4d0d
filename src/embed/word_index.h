// Word → id lookup for the static embedder: a flat open-addressing hash table built once at
// load. Slots hold (32-bit hash tag, id + 1) in one u64, so a probe reads one cache line and
// compares strings only when the tags match. The table is at most half full (capacity is the
// next power of two >= 2n), so an absent word is decided after ~1.5 probes on average.
#pragma once

#include <algorithm>
#include <bit>
#include <cstdint>
#include <cstring>
#include <span>
#include <string_view>
#include <vector>

namespace thinkmesh::embed {

// A fast 64-bit hash of a short string (8 bytes per step, multiply-xorshift mixing).
inline uint64_t hash_word(std::string_view s) {
  constexpr uint64_t kMul = 0x9E3779B97F4A7C15ull;
  uint64_t h = 0x243F6A8885A308D3ull ^ (s.size() * kMul);
  size_t i = 0;
  for (; i + 8 <= s.size(); i += 8) {
    uint64_t chunk;
    std::memcpy(&chunk, s.data() + i, 8);
    h = (h ^ chunk) * kMul;
    h ^= h >> 29;
  }
  if (i < s.size()) {
    uint64_t chunk = 0;
    std::memcpy(&chunk, s.data() + i, s.size() - i);
    h = (h ^ chunk) * kMul;
    h ^= h >> 29;
  }
  h *= 0xBF58476D1CE4E5B9ull;
  return h ^ (h >> 31);
}

class WordIndex {
 public:
  WordIndex() = default;
  // Indexes words[i] as id i. A word that appears twice keeps its first (most frequent) id.
  // The views must outlive the index.
  explicit WordIndex(std::span<const std::string_view> words) : words_(words) {
    const size_t capacity = std::bit_ceil(std::max<size_t>(16, words.size() * 2));
    slots_.assign(capacity, 0);
    mask_ = capacity - 1;
    for (size_t id = 0; id < words.size(); ++id) {
      const uint64_t h = hash_word(words[id]);
      const auto tag = static_cast<uint32_t>(h >> 32);
      for (size_t s = h & mask_;; s = (s + 1) & mask_) {
        if (slots_[s] == 0) {
          slots_[s] = (static_cast<uint64_t>(tag) << 32) | (id + 1);
          break;
        }
        if (static_cast<uint32_t>(slots_[s] >> 32) == tag &&
            words_[(slots_[s] & 0xFFFFFFFFu) - 1] == words[id]) {
          ++n_duplicates_;
          break;
        }
      }
    }
  }

  // The id of `word`, or -1.
  int32_t find(std::string_view word) const {
    if (slots_.empty()) return -1;
    const uint64_t h = hash_word(word);
    const auto tag = static_cast<uint32_t>(h >> 32);
    for (size_t s = h & mask_;; s = (s + 1) & mask_) {
      const uint64_t slot = slots_[s];
      if (slot == 0) return -1;
      if (static_cast<uint32_t>(slot >> 32) == tag) {
        const auto id = static_cast<uint32_t>(slot) - 1;
        if (words_[id] == word) return static_cast<int32_t>(id);
      }
    }
  }

  size_t n_duplicates() const { return n_duplicates_; }

 private:
  std::span<const std::string_view> words_;
  std::vector<uint64_t> slots_;
  size_t mask_ = 0;
  size_t n_duplicates_ = 0;
};

}  // namespace thinkmesh::embed
