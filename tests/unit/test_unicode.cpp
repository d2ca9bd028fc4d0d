// Unicode helpers the tokenizers rely on. Expected values come from the Unicode standard
// (decompositions, case mappings, categories) and from llama.cpp's UTF-8 error policy: a
// malformed sequence yields U+FFFD and consumes exactly one byte.
#include <gtest/gtest.h>

#include <set>

#include "tokenizer/unicode.h"

namespace thinkmesh::unicode {
namespace {

using Cps = std::vector<uint32_t>;

TEST(Unicode, DecodesValidUtf8) {
  EXPECT_EQ(decode("aé€🦙"), (Cps{'a', 0xE9, 0x20AC, 0x1F999}));
  EXPECT_EQ(decode(""), Cps{});
}

TEST(Unicode, EachBadByteBecomesOneReplacementCharacter) {
  EXPECT_EQ(decode("\xFF"), (Cps{kReplacement}));
  EXPECT_EQ(decode("a\x80z"), (Cps{'a', kReplacement, 'z'}));  // lone continuation byte
  EXPECT_EQ(decode("\xC3"), (Cps{kReplacement}));              // truncated at the end
  // A 3-byte lead whose third byte is not a continuation: the lead is bad, then the
  // continuation byte on its own is bad, then 'x' decodes.
  EXPECT_EQ(decode("\xE2\x82x"), (Cps{kReplacement, kReplacement, 'x'}));
  EXPECT_EQ(decode("\xF0\x9F\x98"), (Cps{kReplacement, kReplacement, kReplacement}));
  EXPECT_EQ(decode("\xF8\x88"), (Cps{kReplacement, kReplacement}));  // no 5-byte forms
}

TEST(Unicode, DecodeOneAdvances) {
  const std::string s = "\xC3\xA9!";
  size_t pos = 0;
  EXPECT_EQ(decode_one(s, pos), 0xE9u);
  EXPECT_EQ(pos, 2u);
  EXPECT_EQ(decode_one(s, pos), static_cast<uint32_t>('!'));
  EXPECT_EQ(pos, 3u);
}

TEST(Unicode, Utf8EncodingRoundTrips) {
  for (uint32_t cp : {0x0u, 0x41u, 0x7Fu, 0x80u, 0x7FFu, 0x800u, 0xFFFFu, 0x10000u, 0x10FFFFu}) {
    EXPECT_EQ(decode(to_utf8(cp)), Cps{cp}) << std::hex << cp;
  }
  EXPECT_EQ(to_utf8(0x20AC), "\xE2\x82\xAC");
  EXPECT_EQ(utf8_sequence_length(0xE2), 3u);
  EXPECT_EQ(utf8_sequence_length('a'), 1u);
}

TEST(Unicode, NfdFirstStripsAccentsAndKeepsTheLeadingJamo) {
  EXPECT_EQ(nfd_first(0xE9), static_cast<uint32_t>('e'));  // é = e + U+0301
  EXPECT_EQ(nfd_first(0xC5), static_cast<uint32_t>('A'));  // Å = A + U+030A
  EXPECT_EQ(nfd_first(0xD55C), 0x1112u);                    // 한 = ᄒ ᅡ ᆫ
  EXPECT_EQ(nfd_first(0xAD6D), 0x1100u);                    // 국 = ᄀ ᅮ ᆨ
  EXPECT_EQ(nfd_first('a'), static_cast<uint32_t>('a'));
  EXPECT_EQ(nfd_first(0x4E2D), 0x4E2Du);  // 中 has no decomposition
}

TEST(Unicode, ToLower) {
  EXPECT_EQ(to_lower('A'), static_cast<uint32_t>('a'));
  EXPECT_EQ(to_lower('a'), static_cast<uint32_t>('a'));
  EXPECT_EQ(to_lower('1'), static_cast<uint32_t>('1'));
  EXPECT_EQ(to_lower(0x410), 0x430u);  // Cyrillic А → а
  EXPECT_EQ(to_lower(0x3A3), 0x3C3u);  // Greek Σ → σ
  EXPECT_EQ(to_lower(0xC9), 0xE9u);    // É → é
}

TEST(Unicode, CategoryFlags) {
  EXPECT_TRUE(flags('a') & kLetter);
  EXPECT_TRUE(flags('a') & kLowercase);
  EXPECT_TRUE(flags('Q') & kUppercase);
  EXPECT_TRUE(flags('7') & kNumber);
  EXPECT_TRUE(flags('!') & kPunctuation);
  EXPECT_TRUE(flags('+') & kSymbol);
  EXPECT_TRUE(flags(0) & kControl);
  EXPECT_TRUE(flags(0x301) & kAccentMark);
  EXPECT_TRUE(is_whitespace(' '));
  EXPECT_TRUE(is_whitespace('\n'));
  EXPECT_TRUE(is_whitespace(0x3000));  // ideographic space
  EXPECT_FALSE(is_whitespace(0x200B));  // zero-width space is a format character
  EXPECT_TRUE(flags(0x200B) & kControl);
  EXPECT_TRUE(flags(0x4E2D) & kLetter);
}

TEST(Unicode, ByteMapRoundTripsAllBytes) {
  std::set<uint32_t> images;
  for (int b = 0; b < 256; ++b) {
    const uint32_t cp = byte_to_codepoint(static_cast<uint8_t>(b));
    EXPECT_EQ(codepoint_to_byte(cp), b);
    images.insert(cp);
  }
  EXPECT_EQ(images.size(), 256u);
  // GPT-2: printable bytes map to themselves, space to 'Ġ' (U+0120), '\n' to 'Ċ' (U+010A).
  EXPECT_EQ(byte_to_codepoint('A'), static_cast<uint32_t>('A'));
  EXPECT_EQ(byte_to_codepoint(' '), 0x120u);
  EXPECT_EQ(byte_to_codepoint('\n'), 0x10Au);
  EXPECT_EQ(codepoint_to_byte(0x4E2D), -1);
}

}  // namespace
}  // namespace thinkmesh::unicode
