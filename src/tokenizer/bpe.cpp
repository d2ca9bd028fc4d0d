// Byte-level BPE ("gpt2" vocabularies: GPT-2, Llama 3, Qwen2, SmolLM, DeepSeek, ...) as
// llama.cpp c392e50 computes it (llm_tokenizer_bpe_session::tokenize).
//
//   text ──pre-tokenizer──▶ words ──bytes → GPT-2 code points──▶ symbols (one per code point)
//        ──merge the adjacent pair of lowest merge rank (ties: leftmost) until none applies──▶ ids
//
// With `ignore_merges` (Llama 3), a word that is itself a token is emitted whole. A final
// symbol that is not a token falls back to the tokens of its single bytes, if any.
//
// Speed: merges are looked up by the ids of the two symbols in a flat hash table built at load
// (rank and merged id in one probe), and each distinct word of a call is encoded once.
#include <algorithm>
#include <array>
#include <unordered_map>

#include "thinkmesh/error.h"
#include "tokenizer/families.h"
#include "tokenizer/pretokenize.h"
#include "tokenizer/token_index.h"
#include "tokenizer/unicode.h"

namespace thinkmesh::tokenizer {
namespace {

// (left id, right id) → (rank, merged id); open addressing, linear probing.
class MergeTable {
 public:
  struct Merge {
    int32_t rank = -1;  // -1: no such merge
    TokenId merged = -1;
  };

  void build(const std::vector<std::tuple<TokenId, TokenId, Merge>>& merges) {
    size_t capacity = 16;
    while (capacity < merges.size() * 2) capacity *= 2;
    slots_.assign(capacity, Slot{});
    mask_ = capacity - 1;
    for (const auto& [left, right, merge] : merges) {
      const uint64_t key = pack(left, right);
      for (size_t s = hash(key) & mask_;; s = (s + 1) & mask_) {
        if (slots_[s].merge.rank < 0) {
          slots_[s] = Slot{key, merge};
          break;
        }
        if (slots_[s].key == key) break;  // a duplicate merge keeps its first (lowest) rank
      }
    }
  }

  Merge find(TokenId left, TokenId right) const {
    if (left < 0 || right < 0 || slots_.empty()) return {};
    const uint64_t key = pack(left, right);
    for (size_t s = hash(key) & mask_;; s = (s + 1) & mask_) {
      const Slot& slot = slots_[s];
      if (slot.merge.rank < 0) return {};
      if (slot.key == key) return slot.merge;
    }
  }

 private:
  static uint64_t pack(TokenId a, TokenId b) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b);
  }
  static uint64_t hash(uint64_t k) {
    k ^= k >> 33;
    k *= 0xFF51AFD7ED558CCDull;
    k ^= k >> 33;
    return k;
  }
  struct Slot {
    uint64_t key = 0;
    Merge merge;
  };
  std::vector<Slot> slots_;
  size_t mask_ = 0;
};

struct Symbol {
  TokenId id;      // -1 when the symbol's text is not a token
  uint32_t begin;  // byte range in the mapped word
  uint32_t length;
  int32_t prev, next;  // neighbours; -1 at the ends
};

struct Bigram {
  int32_t rank;
  int32_t left, right;  // symbol indices
  TokenId left_id, right_id, merged_id;
  uint32_t left_length, right_length;  // to detect a stale entry, as llama.cpp compares texts
};

// Heap order: lowest rank first, then leftmost (llama.cpp's llm_bigram_bpe::comparator).
bool heap_after(const Bigram& a, const Bigram& b) {
  return a.rank > b.rank || (a.rank == b.rank && a.left > b.left);
}

class BpeTokenizer final : public VocabTokenizer {
 public:
  explicit BpeTokenizer(Vocab vocab)
      : VocabTokenizer(std::move(vocab)),
        pre_(pre_tokenizer_kind(vocab_.pre)),
        index_(vocab_.tokens) {
    for (int b = 0; b < 256; ++b) {
      std::string s;
      unicode::append_utf8(s, unicode::byte_to_codepoint(static_cast<uint8_t>(b)));
      byte_text_[static_cast<size_t>(b)] = s;
      byte_symbol_id_[static_cast<size_t>(b)] = index_.find(s);
      byte_fallback_id_[static_cast<size_t>(b)] =
          index_.find(std::string_view(reinterpret_cast<const char*>(&b), 1));
    }
    std::vector<std::tuple<TokenId, TokenId, MergeTable::Merge>> merges;
    merges.reserve(vocab_.merge_rank.size());
    for (const auto& [text, rank] : vocab_.merge_rank) {
      // "left right": the separator is the first space after the first character, so a
      // left part that is itself a space-like character survives.
      const size_t space = text.size() > 1 ? text.find(' ', 1) : std::string::npos;
      if (space == std::string::npos) continue;
      const std::string_view left(text.data(), space);
      const std::string_view right(text.data() + space + 1, text.size() - space - 1);
      const TokenId l = index_.find(left), r = index_.find(right);
      // A merge of texts that are not tokens can never apply: symbols always hold tokens
      // (llama.cpp would try it on texts, but a byte-level vocabulary has every piece).
      if (l < 0 || r < 0) continue;
      std::string joined(left);
      joined.append(right);
      merges.emplace_back(l, r, MergeTable::Merge{rank, index_.find(joined)});
    }
    merges_.build(merges);
    // The text-keyed ranks are not needed after this (tens of MiB for a 150k vocabulary).
    std::unordered_map<std::string, int32_t>().swap(vocab_.merge_rank);
    // Merges of two single-byte symbols, the lookups every word starts with, from a 256 x 256
    // table that stays in cache (the hash table of all merges does not).
    byte_pair_merges_.assign(256 * 256, MergeTable::Merge{});
    for (int a = 0; a < 256; ++a) {
      for (int b = 0; b < 256; ++b) {
        byte_pair_merges_[static_cast<size_t>(a * 256 + b)] = merges_.find(
            byte_symbol_id_[static_cast<size_t>(a)], byte_symbol_id_[static_cast<size_t>(b)]);
      }
    }
  }

 protected:
  void encode_fragment(std::string_view text, bool /*at_text_start*/,
                       std::vector<TokenId>& out) const override {
    std::string sanitized;
    if (replace_malformed_utf8(text, sanitized)) text = sanitized;
    std::vector<WordSpan> words;
    words.reserve(text.size() / 4 + 1);
    pretokenize(pre_, text, words);

    // Each distinct word of this call is encoded once: ids are kept in `cache_ids`.
    std::unordered_map<std::string_view, std::pair<uint32_t, uint32_t>> cache;
    std::vector<TokenId> cache_ids;
    for (const WordSpan& w : words) {
      const std::string_view word = text.substr(w.offset, w.length);
      auto [it, inserted] = cache.try_emplace(word, 0, 0);
      if (inserted) {
        const auto start = static_cast<uint32_t>(cache_ids.size());
        encode_word(word, cache_ids);
        it->second = {start, static_cast<uint32_t>(cache_ids.size()) - start};
      }
      out.insert(out.end(), cache_ids.begin() + it->second.first,
                 cache_ids.begin() + it->second.first + it->second.second);
    }
  }

  std::string decode_piece(TokenId id) const override {
    const std::string& text = vocab_.text(id);
    std::string out;
    out.reserve(text.size());
    for (size_t pos = 0; pos < text.size();) {
      const uint32_t cp = unicode::decode_one(text, pos);
      const int byte = unicode::codepoint_to_byte(cp);
      if (byte >= 0) {
        out.push_back(static_cast<char>(byte));
      } else {
        unicode::append_utf8(out, cp);  // not a byte code point: keep the character
      }
    }
    return out;
  }

 private:
  // BPE on one pre-token (raw UTF-8 bytes); appends its ids.
  void encode_word(std::string_view word, std::vector<TokenId>& out) const {
    std::string& mapped = mapped_buffer();
    auto& symbols = symbols_buffer();
    mapped.clear();
    symbols.clear();
    for (const char c : word) {
      const auto b = static_cast<uint8_t>(c);
      const std::string& t = byte_text_[b];
      symbols.push_back(Symbol{
          byte_symbol_id_[b], static_cast<uint32_t>(mapped.size()), static_cast<uint32_t>(t.size()),
          static_cast<int32_t>(symbols.size()) - 1, static_cast<int32_t>(symbols.size()) + 1});
      mapped.append(t);
    }
    // Symbols are per byte; llama.cpp makes one per UTF-8 character of the mapped text, and
    // each mapped character is exactly one input byte, so the two agree.
    symbols.back().next = -1;

    if (vocab_.ignore_merges) {
      if (const TokenId whole = index_.find(mapped); whole >= 0) {
        out.push_back(whole);
        return;
      }
    }
    if (word.size() <= kShortWord) {
      merge_short_word(word);
    } else {
      merge_long_word(word);
    }
    emit_symbols(out);
  }

  // Short words (most of them): the best pair is found by scanning the cached rank of each
  // symbol's pair with its right neighbour -- cheaper than a heap at these sizes, same order
  // (lowest rank, then leftmost).
  static constexpr size_t kShortWord = 48;
  void merge_short_word(std::string_view word) const {
    thread_local std::vector<MergeTable::Merge> with_next;
    auto& symbols = symbols_buffer();
    const size_t n = symbols.size();
    with_next.assign(n, MergeTable::Merge{});
    for (size_t i = 0; i + 1 < n; ++i) {
      with_next[i] = byte_pair_merges_[static_cast<size_t>(static_cast<uint8_t>(word[i])) * 256 +
                                       static_cast<uint8_t>(word[i + 1])];
    }
    while (true) {
      int32_t best = -1;
      int32_t best_rank = INT32_MAX;
      for (int32_t i = 0; i >= 0; i = symbols[static_cast<size_t>(i)].next) {
        const int32_t r = with_next[static_cast<size_t>(i)].rank;
        if (r >= 0 && r < best_rank) best_rank = r, best = i;
      }
      if (best < 0) break;
      Symbol& l = symbols[static_cast<size_t>(best)];
      Symbol& r = symbols[static_cast<size_t>(l.next)];
      l.id = with_next[static_cast<size_t>(best)].merged;
      l.length += r.length;
      r.length = 0;
      l.next = r.next;
      if (r.next >= 0) symbols[static_cast<size_t>(r.next)].prev = best;
      with_next[static_cast<size_t>(best)] =
          l.next >= 0 ? merges_.find(l.id, symbols[static_cast<size_t>(l.next)].id)
                      : MergeTable::Merge{};
      if (l.prev >= 0) {
        with_next[static_cast<size_t>(l.prev)] =
            merges_.find(symbols[static_cast<size_t>(l.prev)].id, l.id);
      }
    }
  }

  void merge_long_word(std::string_view word) const {
    auto& symbols = symbols_buffer();
    thread_local std::vector<Bigram> heap;
    heap.clear();
    auto push_merge = [&](int32_t left, int32_t right, MergeTable::Merge m) {
      if (m.rank < 0) return;
      const Symbol& l = symbols[static_cast<size_t>(left)];
      const Symbol& r = symbols[static_cast<size_t>(right)];
      heap.push_back(Bigram{m.rank, left, right, l.id, r.id, m.merged, l.length, r.length});
      std::push_heap(heap.begin(), heap.end(), heap_after);
    };
    auto push_pair = [&](int32_t left, int32_t right) {
      if (left < 0 || right < 0) return;
      push_merge(left, right,
                 merges_.find(symbols[static_cast<size_t>(left)].id,
                              symbols[static_cast<size_t>(right)].id));
    };
    for (size_t i = 1; i < word.size(); ++i) {
      const auto a = static_cast<uint8_t>(word[i - 1]), b = static_cast<uint8_t>(word[i]);
      push_merge(static_cast<int32_t>(i - 1), static_cast<int32_t>(i),
                 byte_pair_merges_[static_cast<size_t>(a) * 256 + b]);
    }
    while (!heap.empty()) {
      std::pop_heap(heap.begin(), heap.end(), heap_after);
      const Bigram bg = heap.back();
      heap.pop_back();
      Symbol& l = symbols[static_cast<size_t>(bg.left)];
      Symbol& r = symbols[static_cast<size_t>(bg.right)];
      if (l.length == 0 || r.length == 0 || l.id != bg.left_id || r.id != bg.right_id ||
          l.length != bg.left_length || r.length != bg.right_length) {
        continue;  // stale: one side has merged since
      }
      l.length += r.length;
      l.id = bg.merged_id;
      r.length = 0;
      l.next = r.next;
      if (r.next >= 0) symbols[static_cast<size_t>(r.next)].prev = bg.left;
      push_pair(l.prev, bg.left);
      push_pair(bg.left, l.next);
    }
  }

  // Appends the ids of the final symbols of the word in symbols_buffer().
  void emit_symbols(std::vector<TokenId>& out) const {
    const auto& symbols = symbols_buffer();
    const std::string& mapped = mapped_buffer();
    for (int32_t i = 0; i >= 0; i = symbols[static_cast<size_t>(i)].next) {
      const Symbol& s = symbols[static_cast<size_t>(i)];
      if (s.id >= 0) {
        out.push_back(s.id);
        continue;
      }
      // Not a token: the tokens of its single bytes (of the mapped text), where they exist.
      for (uint32_t k = 0; k < s.length; ++k) {
        const auto b = static_cast<uint8_t>(mapped[s.begin + k]);
        if (byte_fallback_id_[b] >= 0) out.push_back(byte_fallback_id_[b]);
      }
    }
  }

  static std::vector<Symbol>& symbols_buffer() {
    thread_local std::vector<Symbol> symbols;
    return symbols;
  }
  static std::string& mapped_buffer() {
    thread_local std::string mapped;
    return mapped;
  }

  PreTokenizerKind pre_;
  TokenIndex index_;
  MergeTable merges_;
  std::vector<MergeTable::Merge> byte_pair_merges_;  // [a * 256 + b] for bytes a, b
  std::array<std::string, 256> byte_text_;           // byte → its GPT-2 code point as UTF-8
  std::array<TokenId, 256> byte_symbol_id_{};        // id of byte_text_[b], or -1
  std::array<TokenId, 256> byte_fallback_id_{};      // id of the one-byte text b, or -1
};

}  // namespace

std::unique_ptr<Tokenizer> make_bpe_tokenizer(Vocab vocab) {
  if (vocab.merge_rank.empty()) {
    throw Error(ErrorKind::invalid_file, "byte-level BPE vocabulary has no merges");
  }
  return std::make_unique<BpeTokenizer>(std::move(vocab));
}

}  // namespace thinkmesh::tokenizer
