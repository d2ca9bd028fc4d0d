// The byte-level BPE pre-tokenizers on inputs where the expressions differ: contractions,
// digit groups, whitespace runs before words, newlines, punctuation, non-ASCII letters.
// Expected pieces follow the regular expressions in pretokenize.h (and llama.cpp's splitters).
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "thinkmesh/error.h"
#include "tokenizer/pretokenize.h"

namespace thinkmesh::tokenizer {
namespace {

std::vector<std::string> split(PreTokenizerKind kind, std::string_view text) {
  std::vector<WordSpan> spans;
  pretokenize(kind, text, spans);
  std::vector<std::string> out;
  size_t covered = 0;
  for (const auto& s : spans) {
    EXPECT_EQ(s.offset, covered) << "pieces must tile the text";
    covered = s.offset + s.length;
    out.emplace_back(text.substr(s.offset, s.length));
  }
  EXPECT_EQ(covered, text.size());
  return out;
}

using V = std::vector<std::string>;

TEST(Pretokenize, Gpt2) {
  const auto k = PreTokenizerKind::gpt2;
  EXPECT_EQ(split(k, "Hello world's  x"), (V{"Hello", " world", "'s", " ", " x"}));
  EXPECT_EQ(split(k, "I'LL 2024!?"), (V{"I", "'", "LL", " 2024", "!?"}));  // case-sensitive
  EXPECT_EQ(split(k, "a\n\nb  "), (V{"a", "\n", "\n", "b", "  "}));
  EXPECT_EQ(split(k, "caf\xC3\xA9 \xE4\xBD\xA0\xE5\xA5\xBD"),
            (V{"caf\xC3\xA9", " \xE4\xBD\xA0\xE5\xA5\xBD"}));
}

TEST(Pretokenize, Llama3) {
  const auto k = PreTokenizerKind::llama3;
  EXPECT_EQ(split(k, "abc 12345\n\nX"), (V{"abc", " ", "123", "45", "\n\n", "X"}));
  EXPECT_EQ(split(k, "DON'T"), (V{"DON", "'T"}));  // case-insensitive contractions
  EXPECT_EQ(split(k, "x!!\n\ny"), (V{"x", "!!\n\n", "y"}));
  EXPECT_EQ(split(k, "(hello"), (V{"(hello"}));  // one non-letter may lead a word
  EXPECT_EQ(split(k, "  \n  z"), (V{"  \n", " ", " z"}));
}

TEST(Pretokenize, Qwen2SplitsEveryDigit) {
  EXPECT_EQ(split(PreTokenizerKind::qwen2, "a 123"), (V{"a", " ", "1", "2", "3"}));
}

TEST(Pretokenize, SmollmSplitsDigitsThenGpt2) {
  EXPECT_EQ(split(PreTokenizerKind::smollm, " 12ab cd"), (V{" ", "1", "2", "ab", " cd"}));
}

TEST(Pretokenize, DefaultAndFalconPipelines) {
  EXPECT_EQ(split(PreTokenizerKind::default_bpe, "a+b 1234"), (V{"a", "+", "b", " ", "1234"}));
  EXPECT_EQ(split(PreTokenizerKind::falcon, "x 12345"), (V{"x", " ", "123", "45"}));
}

TEST(Pretokenize, EmptyTextHasNoPieces) {
  EXPECT_TRUE(split(PreTokenizerKind::llama3, "").empty());
}

TEST(Pretokenize, NamesAndErrors) {
  EXPECT_EQ(pre_tokenizer_kind("llama-bpe"), PreTokenizerKind::llama3);
  EXPECT_EQ(pre_tokenizer_kind("deepseek-r1-qwen"), PreTokenizerKind::qwen2);
  try {
    pre_tokenizer_kind("tekken");
    FAIL() << "tekken is not supported";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("'tekken'"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("qwen2"), std::string::npos);  // lists the supported
  }
}

TEST(Pretokenize, MalformedUtf8IsReplacedByteByByte) {
  std::string out;
  EXPECT_FALSE(replace_malformed_utf8("plain ascii", out));
  EXPECT_FALSE(replace_malformed_utf8("caf\xC3\xA9", out));
  ASSERT_TRUE(
      replace_malformed_utf8("a\xFF"
                             "b\xC3",
                             out));
  EXPECT_EQ(out,
            "a\xEF\xBF\xBD"
            "b\xEF\xBF\xBD");
}

}  // namespace
}  // namespace thinkmesh::tokenizer
