// Unicode helpers for the tokenizers: UTF-8 decoding with llama.cpp's error policy, general
// categories, lower-casing and the "first code point of NFD" mapping llama.cpp uses for
// BERT normalisation. Backed by ICU (libicu); the Basic Multilingual Plane is cached in a
// flat table so the per-code-point lookups on the hot path are one array read.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace thinkmesh::unicode {

inline constexpr uint32_t kReplacement = 0xFFFD;

// Category flags, one bit per Unicode general-category class (\p{N}, \p{L}, ...), plus helpers.
enum Flag : uint16_t {
  kUndefined = 0x0001,    // Cn, or beyond U+10FFFF
  kNumber = 0x0002,       // \p{N}
  kLetter = 0x0004,       // \p{L}
  kSeparator = 0x0008,    // \p{Z}
  kAccentMark = 0x0010,   // \p{M}
  kPunctuation = 0x0020,  // \p{P}
  kSymbol = 0x0040,       // \p{S}
  kControl = 0x0080,      // \p{C} (Cc, Cf, Cs, Co)
  kWhitespace = 0x0100,   // \s: the White_Space property
  kLowercase = 0x0200,    // Ll
  kUppercase = 0x0400,    // Lu
};

uint16_t flags(uint32_t cp);
inline bool is_whitespace(uint32_t cp) { return flags(cp) & kWhitespace; }

// Decodes one code point at `pos` and advances `pos`. A malformed sequence (bad lead byte,
// missing continuation bytes, truncated at the end) yields U+FFFD and advances by one byte,
// as llama.cpp does. `pos` must be < text.size().
uint32_t decode_one(std::string_view text, size_t& pos);
std::vector<uint32_t> decode(std::string_view text);

void append_utf8(std::string& out, uint32_t cp);
std::string to_utf8(uint32_t cp);
std::string to_utf8(const std::vector<uint32_t>& cps);
// Length in bytes of the UTF-8 sequence a lead byte announces (1 for invalid lead bytes).
size_t utf8_sequence_length(uint8_t lead);

// Simple (one-to-one) lower-case mapping.
uint32_t to_lower(uint32_t cp);
// First code point of the canonical decomposition (NFD) of `cp`; `cp` itself if none.
// llama.cpp's WordPiece normalisation maps every code point this way, which strips accents
// ("é" → "e") and keeps only the leading jamo of a Hangul syllable.
uint32_t nfd_first(uint32_t cp);

// GPT-2's byte ⇄ printable-code-point mapping used by byte-level BPE vocabularies:
// printable Latin-1 bytes map to themselves, the others to U+0100 + n.
uint32_t byte_to_codepoint(uint8_t byte);
// The byte a code point stands for; -1 when the code point is not in the mapping.
int codepoint_to_byte(uint32_t cp);

}  // namespace thinkmesh::unicode
