// The shortcuts the tokenizers take for speed, each checked against the result the plain
// algorithm gives, including the vocabularies where a shortcut is not exact and must be off:
//   TokenIndex           16-byte slots that settle short texts without reading the token;
//   SentencePiece        merging word by word, cutting around characters no longer token
//                        contains, remembering words already seen, a table for ASCII pairs;
//   WordPiece            not probing pieces that end inside a UTF-8 character;
//   special-token split  searching only inside each fragment.
#include <gtest/gtest.h>

#include <string>

#include "tokenizer/families.h"
#include "tokenizer/token_index.h"
#include "tokenizer/vocab.h"

namespace thinkmesh::tokenizer {
namespace {

using Ids = std::vector<TokenId>;
constexpr const char* kMark = "\xE2\x96\x81";  // "▁"

TokenizeOptions opts(bool parse_special = false) {
  TokenizeOptions o;
  o.add_special = false;
  o.parse_special = parse_special;
  return o;
}

TEST(TokenIndex, FindsEveryTokenAndNothingElse) {
  // Texts sharing their first 8 bytes, lengths on both sides of 8 and of the 255 at which
  // lengths stop being told apart by the slot tag, and texts with NUL bytes.
  std::vector<std::string> tokens = {"a",         "ab",        std::string("ab\0", 3), "abcdefgh",
                                     "abcdefghi", "abcdefghj", "\xE2\x96\x81the"};
  for (size_t n : {254, 255, 256, 300}) tokens.push_back(std::string(n, 'x'));
  tokens.push_back(std::string(299, 'x') + "y");
  const TokenIndex index(tokens);
  for (size_t i = 0; i < tokens.size(); ++i) {
    EXPECT_EQ(index.find(tokens[i]), static_cast<TokenId>(i)) << "token " << i;
  }
  for (const std::string& absent :
       {std::string(), std::string("b"), std::string("abc"), std::string("abcdefg"),
        std::string("abcdefghk"), std::string("a\0", 2), std::string(257, 'x'),
        std::string(299, 'x') + "z", std::string("\xE2\x96\x81th")}) {
    EXPECT_EQ(index.find(absent), -1) << "text of " << absent.size() << " bytes";
  }
  EXPECT_EQ(TokenIndex().find("a"), -1);
}

void add(Vocab& v, std::string text, TokenKind kind, float score = 0) {
  v.tokens.push_back(std::move(text));
  v.kinds.push_back(kind);
  v.scores.push_back(score);
}

// ids: 0 <unk>, 1 <s>, 2 </s>, 3 + b = <0xBB>, then the normal tokens below.
constexpr TokenId kByte0 = 3, kSpace = 259, kB = 261,  // 260 is "a"
    kAB = 262, kSpaceA = 263, kSpaceB = 264, kExtra = 265;

// `extra` (score -1, merged before everything else) is what makes a shortcut inexact.
Vocab spm_vocab(const std::string& extra = "") {
  Vocab v;
  v.family = VocabFamily::spm;
  add(v, "<unk>", TokenKind::unknown);
  add(v, "<s>", TokenKind::control);
  add(v, "</s>", TokenKind::control);
  static const char* hex = "0123456789ABCDEF";
  for (int b = 0; b < 256; ++b) {
    add(v, std::string("<0x") + hex[b >> 4] + hex[b & 15] + ">", TokenKind::byte);
  }
  add(v, kMark, TokenKind::normal, -10);
  add(v, "a", TokenKind::normal, -10);
  add(v, "b", TokenKind::normal, -10);
  add(v, "ab", TokenKind::normal, -5);
  add(v, std::string(kMark) + "a", TokenKind::normal, -4);
  add(v, std::string(kMark) + "b", TokenKind::normal, -4);
  if (!extra.empty()) add(v, extra, TokenKind::normal, -1);
  v.bos = 1;
  v.eos = 2;
  v.unk = 0;
  v.add_space_prefix = true;
  return v;
}

TEST(SpmFastPaths, WordsRepeatWithTheSameIds) {
  // "▁ab▁ab▁a▁ab": ▁a (-4) beats ab (-5) in each word, so every "▁ab" is ▁a + b.
  const auto tok = make_spm_tokenizer(spm_vocab());
  EXPECT_EQ(tok->tokenize("ab ab a ab", opts()),
            (Ids{kSpaceA, kB, kSpaceA, kB, kSpaceA, kSpaceA, kB}));
  // Runs of spaces: "▁▁b" is cut before the first "▁" only.
  EXPECT_EQ(tok->tokenize("a  b", opts()), (Ids{kSpaceA, kSpace, kSpaceB}));
}

TEST(SpmFastPaths, MergesAcrossWordsWhenATokenHasASpaceInside) {
  // With "a▁" in the vocabulary a merge can cross the start of a word, so the text must be
  // merged as a whole: "▁a▁b" → "▁a" (-4) loses to "a▁" (-1), leaving ▁, a▁, b.
  const auto tok = make_spm_tokenizer(spm_vocab(std::string("a") + kMark));
  EXPECT_EQ(tok->tokenize("a b", opts()), (Ids{kSpace, kExtra, kB}));
}

TEST(SpmFastPaths, NewlinesSplitWordsOnlyWhenNoTokenHoldsThem) {
  // No token contains "\n": it is a word of its own, spelled as its byte token.
  const auto plain = make_spm_tokenizer(spm_vocab());
  EXPECT_EQ(plain->tokenize("a\nab", opts()), (Ids{kSpaceA, kByte0 + '\n', kAB}));
  // "\na" is a token: the newline merges with the next word.
  const auto joined = make_spm_tokenizer(spm_vocab("\na"));
  EXPECT_EQ(joined->tokenize("a\nab", opts()), (Ids{kSpaceA, kExtra, kB}));
}

TEST(SpmFastPaths, NonAsciiPairsAreLookedUpInTheIndex) {
  // "é" + "a" is outside the ASCII pair table.
  const auto tok =
      make_spm_tokenizer(spm_vocab("\xC3\xA9"
                                   "a"));
  EXPECT_EQ(tok->tokenize("\xC3\xA9"
                          "a",
                          opts()),
            (Ids{kSpace, kExtra}));
}

TEST(SpecialSplit, ManySpecialTokensInOneText) {
  // Every fragment after a special token starts a text again and gets the "▁" prefix.
  const auto tok = make_spm_tokenizer(spm_vocab());
  std::string text;
  Ids expected;
  for (int i = 0; i < 1000; ++i) {
    text += "a</s>";
    expected.insert(expected.end(), {kSpaceA, 2});
  }
  text += "<s>";
  expected.push_back(1);
  EXPECT_EQ(tok->tokenize(text, opts(true)), expected);
}

// [PAD] [UNK] [CLS] [SEP], then "▁ж" or the two halves of its bytes.
Vocab wpm_vocab(bool split_character) {
  Vocab v;
  v.family = VocabFamily::wpm;
  for (const char* t : {"[PAD]", "[UNK]", "[CLS]", "[SEP]"}) add(v, t, TokenKind::control);
  if (split_character) {
    add(v, std::string(kMark) + "\xD0", TokenKind::normal);  // ends inside "ж" (D0 B6)
    add(v, "\xB6", TokenKind::normal);
  } else {
    add(v, std::string(kMark) + "\xD0\xB6", TokenKind::normal);
  }
  v.unk = 1;
  v.bos = v.cls = 2;
  v.sep = 3;
  return v;
}

TEST(WpmFastPaths, PiecesInsideACharacterMatchOnlyIfATokenEndsInsideOne) {
  EXPECT_EQ(make_wpm_tokenizer(wpm_vocab(false))->tokenize("\xD0\xB6", opts()), (Ids{4}));
  // llama.cpp matches bytes, so a vocabulary with such tokens cuts the character in two.
  EXPECT_EQ(make_wpm_tokenizer(wpm_vocab(true))->tokenize("\xD0\xB6", opts()), (Ids{4, 5}));
}

}  // namespace
}  // namespace thinkmesh::tokenizer
