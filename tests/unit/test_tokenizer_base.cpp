// The shared tokenizer machinery (special-token split, BOS/EOS, pieces, detokenisation) and
// the SentencePiece and WordPiece algorithms on tiny hand-built vocabularies, where every
// expected id follows from the rules by hand (comments give the reasoning).
#include <gtest/gtest.h>

#include "thinkmesh/error.h"
#include "tokenizer/families.h"
#include "tokenizer/vocab.h"

namespace thinkmesh::tokenizer {
namespace {

using Ids = std::vector<TokenId>;

TokenizeOptions opts(bool add_special, bool parse_special = false) {
  TokenizeOptions o;
  o.add_special = add_special;
  o.parse_special = parse_special;
  return o;
}

void add(Vocab& v, std::string text, TokenKind kind, float score = 0) {
  v.tokens.push_back(std::move(text));
  v.kinds.push_back(kind);
  v.scores.push_back(score);
}

// ids: 0 <unk>, 1 <s>, 2 </s>, 3 + b = <0xBB>, then the normal tokens below.
constexpr TokenId kByte0 = 3, kSpace = 259, kA = 260, kB = 261, kC = 262, kAB = 263, kBC = 264,
                  kSpaceA = 265, kSpaceB = 266, kUser = 267, kImEnd = 268;

Vocab spm_vocab(float score_ab = -5, float score_bc = -3) {
  Vocab v;
  v.family = VocabFamily::spm;
  add(v, "<unk>", TokenKind::unknown);
  add(v, "<s>", TokenKind::control);
  add(v, "</s>", TokenKind::control);
  static const char* hex = "0123456789ABCDEF";
  for (int b = 0; b < 256; ++b) {
    add(v, std::string("<0x") + hex[b >> 4] + hex[b & 15] + ">", TokenKind::byte);
  }
  add(v, "\xE2\x96\x81", TokenKind::normal, -1);  // "▁"
  add(v, "a", TokenKind::normal, -10);
  add(v, "b", TokenKind::normal, -10);
  add(v, "c", TokenKind::normal, -10);
  add(v, "ab", TokenKind::normal, score_ab);
  add(v, "bc", TokenKind::normal, score_bc);
  add(v, "\xE2\x96\x81" "a", TokenKind::normal, -4);
  add(v, "\xE2\x96\x81" "b", TokenKind::normal, -4);
  add(v, "<u>", TokenKind::user_defined);
  add(v, "<|im_end|>", TokenKind::normal);  // an end-of-turn name: becomes CONTROL and EOG
  v.bos = 1;
  v.eos = 2;
  v.unk = 0;
  v.add_bos = true;
  v.add_space_prefix = true;
  v.clean_spaces = false;
  return v;
}

TEST(SpmTokenizer, MergesHighestScoreFirst) {
  // "▁abc": pairs ▁a (-4), ab (-5), bc (-3). bc merges first, then ▁a; "abc" is no token.
  const auto tok = make_spm_tokenizer(spm_vocab());
  EXPECT_EQ(tok->tokenize("abc", opts(false)), (Ids{kSpaceA, kBC}));
}

TEST(SpmTokenizer, EqualScoresMergeLeftmostFirst) {
  // ab and bc both -3 (above ▁a at -4): ab is further left, so it wins; then ▁+ab and ab+c
  // are not tokens.
  const auto tok = make_spm_tokenizer(spm_vocab(-3, -3));
  EXPECT_EQ(tok->tokenize("abc", opts(false)), (Ids{kSpace, kAB, kC}));
}

TEST(SpmTokenizer, AddsBosWhenAsked) {
  const auto tok = make_spm_tokenizer(spm_vocab());
  EXPECT_EQ(tok->tokenize("abc", opts(true)), (Ids{1, kSpaceA, kBC}));
  EXPECT_EQ(tok->tokenize("", opts(true)), (Ids{1}));
  EXPECT_EQ(tok->tokenize("", opts(false)), Ids{});
  EXPECT_TRUE(tok->adds_bos());
  EXPECT_FALSE(tok->adds_eos());
}

TEST(SpmTokenizer, FallsBackToByteTokens) {
  // "▁é": é is no token, so its two UTF-8 bytes become <0xC3> <0xA9>.
  const auto tok = make_spm_tokenizer(spm_vocab());
  const Ids ids = tok->tokenize("\xC3\xA9", opts(false));
  EXPECT_EQ(ids, (Ids{kSpace, kByte0 + 0xC3, kByte0 + 0xA9}));
  EXPECT_EQ(tok->detokenize(ids), "\xC3\xA9");
}

TEST(SpmTokenizer, SpecialTokensSplitTheTextAndRestartTheSpacePrefix) {
  const auto tok = make_spm_tokenizer(spm_vocab());
  // parse_special: "a" <s> "b"; the fragment after a special token gets "▁" again.
  EXPECT_EQ(tok->tokenize("a<s>b", opts(false, true)), (Ids{kSpaceA, 1, kSpaceB}));
  // Without it <s> is text: ▁a, then '<' 's' '>' as bytes, then b.
  EXPECT_EQ(tok->tokenize("a<s>b", opts(false, false)),
            (Ids{kSpaceA, kByte0 + '<', kByte0 + 's', kByte0 + '>', kB}));
  // User-defined tokens are split out even without parse_special.
  EXPECT_EQ(tok->tokenize("a<u>b", opts(false, false)), (Ids{kSpaceA, kUser, kSpaceB}));
  // Whitespace after a special token is kept: "  b" → "▁▁▁b" → ▁ ▁ ▁b.
  EXPECT_EQ(tok->tokenize("a<u>  b", opts(false)), (Ids{kSpaceA, kUser, kSpace, kSpace, kSpaceB}));
}

TEST(SpmTokenizer, Phi3SpecialTokensEatTheWhitespaceAfterThem) {
  Vocab v = spm_vocab();
  v.model_name = "Phi3";  // llama.cpp sets RSTRIP on its special tokens, except <unk>/<s>
  const auto tok = make_spm_tokenizer(std::move(v));
  EXPECT_EQ(tok->tokenize("a<u>  b", opts(false)), (Ids{kSpaceA, kUser, kSpaceB}));
  EXPECT_EQ(tok->tokenize("a<s>  b", opts(false, true)), (Ids{kSpaceA, 1, kSpace, kSpace, kSpaceB}));
}

TEST(SpmTokenizer, EndOfTurnNamesAreControlAndEndGeneration) {
  const auto tok = make_spm_tokenizer(spm_vocab());
  EXPECT_EQ(tok->token_kind(kImEnd), TokenKind::control);
  EXPECT_EQ(tok->eot(), kImEnd);
  EXPECT_TRUE(tok->is_eog(kImEnd));
  EXPECT_TRUE(tok->is_eog(2));  // EOS
  EXPECT_FALSE(tok->is_eog(1));
  EXPECT_FALSE(tok->is_eog(kA));
  // Now CONTROL, so parse_special finds it.
  EXPECT_EQ(tok->tokenize("<|im_end|>", opts(false, true)), (Ids{kImEnd}));
}

TEST(SpmTokenizer, PiecesAndDetokenize) {
  const auto tok = make_spm_tokenizer(spm_vocab());
  EXPECT_EQ(tok->token_to_piece(1), "");
  EXPECT_EQ(tok->token_to_piece(1, true), "<s>");
  EXPECT_EQ(tok->token_to_piece(kUser), "<u>");
  EXPECT_EQ(tok->token_to_piece(kSpaceA), " a");
  EXPECT_EQ(tok->token_to_piece(kByte0 + 'A'), "A");
  EXPECT_EQ(tok->token_text(kSpaceA), "\xE2\x96\x81" "a");
  EXPECT_EQ(tok->find_token("ab"), kAB);
  EXPECT_EQ(tok->find_token("zz"), std::nullopt);
  // The prefix space is dropped from the first piece...
  EXPECT_EQ(tok->detokenize(Ids{kSpaceA, kSpaceB}), "a b");
  // ...but a leading BOS takes that turn, removed or not (llama.cpp's remove_space logic).
  EXPECT_EQ(tok->detokenize(Ids{1, kSpaceA, kSpaceB}), " a b");
  DetokenizeOptions remove;
  remove.remove_special = true;
  EXPECT_EQ(tok->detokenize(Ids{1, kSpaceA, kSpaceB}, remove), " a b");
  DetokenizeOptions render;
  render.render_special = true;
  EXPECT_EQ(tok->detokenize(Ids{kSpaceA, 2}, render), "a</s>");
  EXPECT_THROW(tok->token_to_piece(100000), Error);
  EXPECT_THROW(tok->token_text(-1), Error);
}

TEST(SpmTokenizer, RoundTripsText) {
  const auto tok = make_spm_tokenizer(spm_vocab());
  for (const std::string text : {"abc", " a  b c", "\xC3\xA9t\xC3\xA9 \xF0\x9F\xA6\x99", "x\ny\tz"}) {
    EXPECT_EQ(tok->detokenize(tok->tokenize(text, opts(false))), text);
  }
}

TEST(Vocab, RejectsInconsistentVocabularies) {
  {
    Vocab v = spm_vocab();
    v.scores.pop_back();
    EXPECT_THROW(make_spm_tokenizer(std::move(v)), Error);
  }
  {
    Vocab v = spm_vocab();
    v.tokens[kC] = "a";  // duplicate text
    EXPECT_THROW(make_spm_tokenizer(std::move(v)), Error);
  }
  {
    Vocab v = spm_vocab();
    v.bos = 5000;
    EXPECT_THROW(make_spm_tokenizer(std::move(v)), Error);
  }
  {
    Vocab v = spm_vocab();
    v.bos.reset();  // add_bos without a BOS
    EXPECT_THROW(make_spm_tokenizer(std::move(v)), Error);
  }
  {
    Vocab v;
    EXPECT_THROW(make_spm_tokenizer(std::move(v)), Error);
  }
  try {
    Vocab v = spm_vocab();
    v.kinds.pop_back();
    make_spm_tokenizer(std::move(v));
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::invalid_file);
  }
}

// ids: 0 [PAD], 1 [UNK], 2 [CLS], 3 [SEP], then the pieces below.
enum : TokenId { kHello = 4, kWorld, kComma, kBang, kPlay, kIng, kCafe, kZhong, kQuote, kS, kUn, kAff, kAble };

Vocab wpm_vocab() {
  Vocab v;
  v.family = VocabFamily::wpm;
  for (const char* s : {"[PAD]", "[UNK]", "[CLS]", "[SEP]"}) add(v, s, TokenKind::control);
  for (const char* s : {"\xE2\x96\x81hello", "\xE2\x96\x81world", "\xE2\x96\x81,", "\xE2\x96\x81!",
                        "\xE2\x96\x81play", "ing", "\xE2\x96\x81" "cafe", "\xE2\x96\x81\xE4\xB8\xAD",
                        "\xE2\x96\x81'", "\xE2\x96\x81s", "\xE2\x96\x81un", "aff", "able"}) {
    add(v, s, TokenKind::normal);
  }
  v.scores.clear();
  v.pad = 0;
  v.unk = 1;
  v.bos = v.cls = 2;
  v.sep = 3;
  v.add_bos = true;
  v.clean_spaces = true;
  return v;
}

TEST(WpmTokenizer, SplitsOnWhitespaceAndPunctuationAndLowercases) {
  const auto tok = make_wpm_tokenizer(wpm_vocab());
  EXPECT_EQ(tok->tokenize("Hello, World!", opts(false)), (Ids{kHello, kComma, kWorld, kBang}));
  EXPECT_EQ(tok->tokenize("Hello, World!", opts(true)), (Ids{2, kHello, kComma, kWorld, kBang, 3}));
  EXPECT_EQ(tok->tokenize("", opts(true)), (Ids{2, 3}));
  EXPECT_EQ(tok->bos(), 2);
  EXPECT_EQ(tok->eos(), 3);  // [SEP]
}

TEST(WpmTokenizer, GreedyLongestMatchWithContinuationPieces) {
  const auto tok = make_wpm_tokenizer(wpm_vocab());
  EXPECT_EQ(tok->tokenize("playing", opts(false)), (Ids{kPlay, kIng}));
  EXPECT_EQ(tok->tokenize("unaffable", opts(false)), (Ids{kUn, kAff, kAble}));
  // A word with an unmatched position is [UNK] as a whole.
  EXPECT_EQ(tok->tokenize("playx xyz", opts(false)), (Ids{1, 1}));
}

TEST(WpmTokenizer, NormalisesAccentsDropsControlsAndIsolatesCjk) {
  const auto tok = make_wpm_tokenizer(wpm_vocab());
  EXPECT_EQ(tok->tokenize("Caf\xC3\xA9", opts(false)), (Ids{kCafe}));  // é → e
  EXPECT_EQ(tok->tokenize("\x01hel\xFFlo", opts(false)), (Ids{kHello}));  // \x01 and U+FFFD go
  // 中文: each ideograph is its own word; 文 is not in the vocabulary.
  EXPECT_EQ(tok->tokenize("\xE4\xB8\xAD\xE6\x96\x87", opts(false)), (Ids{kZhong, 1}));
}

TEST(WpmTokenizer, SpecialTokensOnlyWithParseSpecial) {
  const auto tok = make_wpm_tokenizer(wpm_vocab());
  EXPECT_EQ(tok->tokenize("[CLS] hello", opts(false, true)), (Ids{2, kHello}));
  // As text: "[", "cls", "]" are three unknown words.
  EXPECT_EQ(tok->tokenize("[CLS] hello", opts(false, false)), (Ids{1, 1, 1, kHello}));
}

TEST(WpmTokenizer, DetokenizeCleansSpaces) {
  const auto tok = make_wpm_tokenizer(wpm_vocab());
  EXPECT_EQ(tok->detokenize(Ids{kHello, kComma, kWorld, kBang}), " hello, world!");
  EXPECT_EQ(tok->detokenize(Ids{kHello, kQuote, kS}), " hello's");  // " ' " → "'"
  EXPECT_EQ(tok->detokenize(Ids{kPlay, kIng}), " playing");
  DetokenizeOptions remove;
  remove.remove_special = true;  // drops [CLS] (add_bos); [SEP] is no EOS, so it stays (as "")
  EXPECT_EQ(tok->detokenize(Ids{2, kHello, 3}, remove), " hello");
}

TEST(WpmTokenizer, RequiresClsAndSep) {
  Vocab v = wpm_vocab();
  v.sep.reset();
  EXPECT_THROW(make_wpm_tokenizer(std::move(v)), Error);
}

}  // namespace
}  // namespace thinkmesh::tokenizer
