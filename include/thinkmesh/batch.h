// A batch of tokens decoded in one forward pass: any mix of sequences and positions.
//
//   Batch b;
//   for (size_t i = 0; i < prompt.size(); ++i) b.add(prompt[i], i, /*seq=*/0, i + 1 ==
//   prompt.size()); ctx.decode(b); auto logits = ctx.logits(b.size() - 1);
#pragma once

#include <cstdint>
#include <vector>

#include "thinkmesh/tokenizer.h"

namespace thinkmesh {

struct BatchEntry {
  TokenId token = 0;
  int32_t pos = 0;      // position in its sequence (0-based)
  int32_t seq_id = 0;   // which sequence of the KV cache it extends
  bool logits = false;  // whether Context::logits(i) is wanted for this entry
};

class Batch {
 public:
  void add(TokenId token, int32_t pos, int32_t seq_id, bool logits) {
    entries_.push_back({token, pos, seq_id, logits});
  }
  void clear() { entries_.clear(); }
  size_t size() const { return entries_.size(); }
  bool empty() const { return entries_.empty(); }
  const BatchEntry& operator[](size_t i) const { return entries_[i]; }
  const std::vector<BatchEntry>& entries() const { return entries_; }

 private:
  std::vector<BatchEntry> entries_;
};

}  // namespace thinkmesh
