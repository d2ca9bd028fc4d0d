// Splitting text into lower-cased words for word-vector lookup.
//
// A word is a maximal run of letters, digits and combining marks (Unicode \p{L}, \p{N}, \p{M}),
// lower-cased (ASCII by table, other code points by the simple Unicode mapping). An apostrophe
// (' or U+2019, written as ') or a hyphen (-) joins two runs when it has a word character on
// both sides: "don't", "o'brien", "well-known" are one word each; "rock 'n' roll" is three.
// Everything else separates words and is dropped.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "tokenizer/unicode.h"

namespace thinkmesh::embed {

namespace detail {

enum AsciiClass : uint8_t { kSep = 0, kWordChar = 1, kApostrophe = 2, kHyphen = 3 };

struct AsciiTable {
  uint8_t cls[128];
  char lower[128];
  constexpr AsciiTable() : cls(), lower() {
    for (int c = 0; c < 128; ++c) {
      const bool upper = c >= 'A' && c <= 'Z';
      const bool word = upper || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
      cls[c] = word ? kWordChar : c == '\'' ? kApostrophe : c == '-' ? kHyphen : kSep;
      lower[c] = static_cast<char>(upper ? c + ('a' - 'A') : c);
    }
  }
};
inline constexpr AsciiTable kAscii{};

inline bool is_word_codepoint(uint32_t cp) {
  return (unicode::flags(cp) & (unicode::kLetter | unicode::kNumber | unicode::kAccentMark)) != 0;
}

}  // namespace detail

// Calls on_word(std::string_view) for each word of `text` in order. The view points into
// `scratch`, which is reused (no allocation once it has grown to the longest word) and is only
// valid during the call.
template <class OnWord>
void split_words(std::string_view text, std::string& scratch, OnWord&& on_word) {
  scratch.clear();
  char pending_joiner = 0;  // an apostrophe/hyphen seen right after a word character
  auto finish = [&] {
    if (!scratch.empty()) on_word(std::string_view(scratch));
    scratch.clear();
    pending_joiner = 0;
  };
  size_t pos = 0;
  while (pos < text.size()) {
    const auto byte = static_cast<uint8_t>(text[pos]);
    uint8_t cls;
    uint32_t cp = byte;
    if (byte < 0x80) {
      cls = detail::kAscii.cls[byte];
      ++pos;
    } else {
      cp = unicode::decode_one(text, pos);
      cls = cp == 0x2019 ? detail::kApostrophe
                         : (detail::is_word_codepoint(cp) ? detail::kWordChar : detail::kSep);
    }
    if (cls == detail::kWordChar) {
      if (pending_joiner) scratch.push_back(pending_joiner);
      pending_joiner = 0;
      if (cp < 0x80) {
        scratch.push_back(detail::kAscii.lower[cp]);
      } else {
        unicode::append_utf8(scratch, unicode::to_lower(cp));
      }
    } else if (cls == detail::kSep || pending_joiner || scratch.empty()) {
      finish();  // a separator, a second joiner in a row, or a joiner with no word before it
    } else {
      pending_joiner = cls == detail::kApostrophe ? '\'' : '-';
    }
  }
  finish();
}

}  // namespace thinkmesh::embed
