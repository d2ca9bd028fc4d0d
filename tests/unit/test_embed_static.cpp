// The static word-vector embedder on tiny hand-made wordvec GGUFs: word splitting, lookup
// rules, SIF weighting, unknown/empty texts, normalisation, the converter round trip, the
// Embedder::open dispatch and cosine.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <numeric>
#include <string>
#include <vector>

#include "embed/embedder_registry.h"
#include "embed/static_embedder.h"
#include "embed/word_split.h"
#include "embed/wordvec_convert.h"
#include "thinkmesh/embed.h"
#include "thinkmesh/error.h"

namespace thinkmesh::embed {
namespace {

namespace fs = std::filesystem;

// 4-dimensional vectors for a handful of words, most frequent first.
WordvecTable tiny_table() {
  WordvecTable t;
  t.name = "tiny";
  t.dim = 4;
  t.words = {"the", "cat", "sat", "do", "john", "well-known", "summer", "camp", "cafe", "rice"};
  for (size_t i = 0; i < t.words.size(); ++i) {
    // Distinct, non-parallel vectors: word i has 1 + i in slot i % 4 and 0.5 elsewhere.
    for (int j = 0; j < 4; ++j) t.vectors.push_back(j == static_cast<int>(i % 4) ? 1.0f + i : 0.5f);
  }
  return t;
}

// Explicit p(w): "the" is very common (low weight), the rest rare.
std::vector<float> tiny_probabilities(size_t n) {
  std::vector<float> p(n, 1e-4f);
  p[0] = 0.5f;
  return p;
}

fs::path write_model(const WordvecTable& table, TensorType type, const std::string& name) {
  WordvecWriteOptions options;
  options.type = type;
  options.probabilities = tiny_probabilities(table.words.size());
  const fs::path path = fs::path(testing::TempDir()) / name;
  build_wordvec_gguf(table, options).write(path.string());
  return path;
}

std::vector<float> table_vector(const WordvecTable& t, const std::string& word) {
  const auto it = std::find(t.words.begin(), t.words.end(), word);
  const size_t i = static_cast<size_t>(it - t.words.begin());
  return {t.vectors.begin() + i * t.dim, t.vectors.begin() + (i + 1) * t.dim};
}

std::vector<float> normalized(std::vector<float> v) {
  double n = 0;
  for (float x : v) n += double{x} * x;
  for (float& x : v) x = static_cast<float>(x / std::sqrt(n));
  return v;
}

void expect_near_vec(std::span<const float> a, std::span<const float> b, float tol) {
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) EXPECT_NEAR(a[i], b[i], tol) << "component " << i;
}

std::vector<std::string> split(std::string_view text) {
  std::vector<std::string> words;
  std::string scratch;
  split_words(text, scratch, [&](std::string_view w) { words.emplace_back(w); });
  return words;
}

TEST(WordSplit, LowercasesAndKeepsInnerApostrophesAndHyphens) {
  EXPECT_EQ(split("The CAT sat."), (std::vector<std::string>{"the", "cat", "sat"}));
  EXPECT_EQ(split("Don't stop; John’s well-known rock 'n' roll -- x-"),
            (std::vector<std::string>{"don't", "stop", "john's", "well-known", "rock", "n", "roll",
                                      "x"}));
  EXPECT_EQ(split("ÉCOLE Straße 42nd"), (std::vector<std::string>{"école", "straße", "42nd"}));
  EXPECT_EQ(split("a--b"), (std::vector<std::string>{"a", "b"}));
  EXPECT_TRUE(split("").empty());
  EXPECT_TRUE(split(" ,.!? — ").empty());
}

TEST(Zipf, ProbabilitiesAreNormalisedAndDecreasing) {
  const auto p = zipf_rank_probabilities(1000);
  EXPECT_NEAR(std::accumulate(p.begin(), p.end(), 0.0), 1.0, 1e-5);
  for (size_t i = 1; i < p.size(); ++i) EXPECT_LT(p[i], p[i - 1]);
  EXPECT_NEAR(p[0] / p[9], 10.0, 1e-4);  // p(r) ∝ 1/(r+1)
}

class StaticEmbedderTest : public testing::Test {
 protected:
  void SetUp() override {
    table_ = tiny_table();
    path_ = write_model(table_, TensorType::F32, "tiny-wordvec-f32.gguf");
    embedder_ = Embedder::open(path_.string());
  }
  std::vector<float> embed(const std::string& text) { return embedder_->embed_one(text); }

  WordvecTable table_;
  fs::path path_;
  std::unique_ptr<Embedder> embedder_;
};

TEST_F(StaticEmbedderTest, OpensThroughTheArchitectureDispatch) {
  EXPECT_EQ(embedder_->architecture(), "wordvec");
  EXPECT_EQ(embedder_->dim(), 4);
}

TEST_F(StaticEmbedderTest, OneWordIsItsNormalisedVector) {
  expect_near_vec(embed("cat"), normalized(table_vector(table_, "cat")), 1e-6f);
}

TEST_F(StaticEmbedderTest, WeightsAreSifOfTheStoredProbability) {
  // w = a / (a + p): "the" (p = 0.5) weighs 1e-3 / 0.501, "cat" (p = 1e-4) 1e-3 / 1.1e-3.
  const double w_the = 1e-3 / (1e-3 + 0.5), w_cat = 1e-3 / (1e-3 + 1e-4);
  const auto the = table_vector(table_, "the"), cat = table_vector(table_, "cat");
  std::vector<float> expected(4);
  for (int j = 0; j < 4; ++j) {
    expected[j] = static_cast<float>((w_the * the[j] + w_cat * cat[j]) / (w_the + w_cat));
  }
  EmbedOptions raw;
  raw.normalize = false;
  auto unnormalised = Embedder::open(path_.string(), raw);
  expect_near_vec(unnormalised->embed_one("the cat"), expected, 1e-5f);
  expect_near_vec(embed("the cat"), normalized(expected), 1e-5f);
  // The common word barely moves the vector; an unweighted mean would.
  EXPECT_GT(cosine(embed("the cat"), embed("cat")), 0.9999f);
}

TEST_F(StaticEmbedderTest, UnknownWordsAreIgnoredAndCounted) {
  const std::vector<std::string> texts = {"the zzqx cat", "the cat"};
  const EmbeddingMatrix m = embedder_->embed(texts);
  expect_near_vec(m.row(0), m.row(1), 0.0f);
  EXPECT_EQ(m.rows[0].n_tokens, 2);
  EXPECT_EQ(m.rows[0].n_unknown, 1);
  EXPECT_FALSE(m.rows[0].all_unknown);
}

TEST_F(StaticEmbedderTest, AllUnknownAndEmptyTextsAreZeroAndFlagged) {
  const std::vector<std::string> texts = {"zzqx blorf", "", "  ?!. ", "cat"};
  const EmbeddingMatrix m = embedder_->embed(texts);
  ASSERT_EQ(m.n_rows, 4);
  for (int r = 0; r < 3; ++r) {
    for (float x : m.row(r)) EXPECT_EQ(x, 0.0f) << "row " << r;
  }
  EXPECT_TRUE(m.rows[0].all_unknown);
  EXPECT_FALSE(m.rows[0].empty);
  EXPECT_EQ(m.rows[0].n_unknown, 2);
  EXPECT_TRUE(m.rows[1].empty);
  EXPECT_TRUE(m.rows[2].empty);
  EXPECT_FALSE(m.rows[3].empty || m.rows[3].all_unknown);
  EXPECT_EQ(cosine(m.row(0), m.row(3)), 0.0f);
}

TEST_F(StaticEmbedderTest, CaseAndPunctuationDoNotMatter) {
  expect_near_vec(embed("The CAT, sat!!!"), embed("the cat sat"), 0.0f);
}

TEST_F(StaticEmbedderTest, CliticsAccentsAndCompounds) {
  expect_near_vec(embed("John's"), embed("john"), 0.0f);
  expect_near_vec(embed("don't"), embed("do"), 0.0f);
  expect_near_vec(embed("Café"), embed("cafe"), 0.0f);
  // A compound the vocabulary has is one word; one it lacks is its parts.
  expect_near_vec(embed("well-known"), normalized(table_vector(table_, "well-known")), 1e-6f);
  expect_near_vec(embed("summer-camp"), embed("summer camp"), 0.0f);
}

TEST_F(StaticEmbedderTest, RowsAreUnitLengthAndInInputOrder) {
  const std::vector<std::string> texts = {"rice", "the cat sat", "john"};
  const EmbeddingMatrix m = embedder_->embed(texts);
  ASSERT_EQ(m.data.size(), 12u);
  for (int r = 0; r < 3; ++r) {
    double n = 0;
    for (float x : m.row(r)) n += double{x} * x;
    EXPECT_NEAR(n, 1.0, 1e-6);
  }
  expect_near_vec(m.row(0), embed("rice"), 0.0f);
  expect_near_vec(m.row(2), embed("john"), 0.0f);
  EXPECT_EQ(embedder_->embed(std::span<const std::string>()).n_rows, 0);
}

TEST_F(StaticEmbedderTest, ClsPoolingIsRejected) {
  EmbedOptions options;
  options.pooling = Pooling::cls;
  try {
    Embedder::open(path_.string(), options);
    FAIL() << "cls pooling accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::invalid_argument);
  }
}

TEST(StaticEmbedderFormat, Q8_0TableRoundTripsWithinQuantizationError) {
  const WordvecTable table = tiny_table();
  const auto path = write_model(table, TensorType::Q8_0, "tiny-wordvec-q8.gguf");
  gguf::File file = gguf::File::open(path.string());
  EXPECT_EQ(file.find_tensor("token_embd.weight")->ne[0], 32);  // 4 padded to one block
  StaticEmbedder embedder(std::move(file), {});
  for (int32_t id = 0; id < embedder.n_words(); ++id) {
    const auto expected = table_vector(table, table.words[id]);
    const float amax = *std::max_element(expected.begin(), expected.end());
    // Q8_0: d = amax / 127, |error| <= d / 2 (plus F16 rounding of d).
    expect_near_vec(embedder.word_vector(id), expected, amax / 127.0f * 0.51f);
  }
  const auto path16 = write_model(table, TensorType::F16, "tiny-wordvec-f16.gguf");
  StaticEmbedder f16(gguf::File::open(path16.string()), {});
  expect_near_vec(f16.word_vector(9), table_vector(table, "rice"), 1e-2f);
}

TEST(StaticEmbedderFormat, MissingPiecesAreInvalidFiles) {
  gguf::Writer w;
  w.set("general.architecture", gguf::Value::string("wordvec"));
  w.set("wordvec.embedding_length", gguf::Value::u32(4));
  w.set("tokenizer.ggml.tokens", gguf::Value::string_array({"a", "b"}));
  const auto path = fs::path(testing::TempDir()) / "broken-wordvec.gguf";
  w.write(path.string());
  try {
    Embedder::open(path.string());
    FAIL() << "a wordvec file without a table opened";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::invalid_file);
    EXPECT_NE(std::string(e.what()).find("token_embd.weight"), std::string::npos) << e.what();
  }
}

TEST(EmbedderOpen, UnknownArchitecturesAndUnregisteredBertAreUnsupported) {
  for (const std::string arch : {"bert", "llama"}) {
    gguf::Writer w;
    w.set("general.architecture", gguf::Value::string(arch));
    const auto path = fs::path(testing::TempDir()) / ("arch-" + arch + ".gguf");
    w.write(path.string());
    try {
      Embedder::open(path.string());
      FAIL() << arch << " opened";
    } catch (const Error& e) {
      EXPECT_EQ(e.kind(), ErrorKind::unsupported);
      if (arch == "bert") {
        // This test does not call register_bert_embedder(): the message says what is missing.
        EXPECT_NE(std::string(e.what()).find("register_bert_embedder"), std::string::npos)
            << e.what();
      }
    }
  }
}

TEST(EmbedderOpen, RegisteredFactoriesAreUsed) {
  struct Fixed final : Embedder {
    int64_t dim() const override { return 2; }
    std::string_view architecture() const override { return "test-arch"; }
    EmbeddingMatrix embed(std::span<const std::string> texts) override {
      EmbeddingMatrix m{static_cast<int64_t>(texts.size()), 2, {}, {}};
      m.data.assign(texts.size() * 2, 1.0f);
      m.rows.resize(texts.size());
      return m;
    }
  };
  register_embedder_factory("test-arch", [](gguf::File, const EmbedOptions&) {
    return std::unique_ptr<Embedder>(std::make_unique<Fixed>());
  });
  gguf::Writer w;
  w.set("general.architecture", gguf::Value::string("test-arch"));
  const auto path = fs::path(testing::TempDir()) / "arch-test.gguf";
  w.write(path.string());
  EXPECT_EQ(Embedder::open(path.string())->architecture(), "test-arch");
}

// The converter reads the wink-embeddings JSON layout.
TEST(WinkConverter, ReadsTheJsonLayoutAndChecksIt) {
  const fs::path dir = fs::path(testing::TempDir()) / "wink-tiny";
  fs::create_directories(dir);
  std::ofstream(dir / "package.json") << R"({"name": "wink-tiny", "main": "./vec.json"})";
  std::ofstream(dir / "vec.json")
      << R"({"precision":8,"l2NormIndex":2,"wordIndex":3,"size":3,"dimensions":2,)"
      << R"("words":["the","cat","caf\u00e9"],)"
      << R"("vectors":{"cat":[0.5,-1.25,1.4,1],"the":[1,2,2.2,0],"café":[3,4,5,2]},)"
      << R"("unkVector":[0,0,0,-1]})";
  const WordvecTable t = read_wink_embeddings(dir.string());
  EXPECT_EQ(t.dim, 2);
  EXPECT_EQ(t.words, (std::vector<std::string>{"the", "cat", "café"}));
  EXPECT_EQ(t.vectors, (std::vector<float>{1, 2, 0.5f, -1.25f, 3, 4}));

  std::ofstream(dir / "bad.json") << R"({"dimensions":2,"words":["the","cat"],)"
                                  << R"("vectors":{"the":[1,2,2.2,1],"cat":[1,1,1,0]}})";
  EXPECT_THROW(read_wink_embeddings((dir / "bad.json").string()), Error);  // index mismatch
  std::ofstream(dir / "missing.json") << R"({"dimensions":2,"words":["the","cat"],)"
                                      << R"("vectors":{"the":[1,2]}})";
  EXPECT_THROW(read_wink_embeddings((dir / "missing.json").string()), Error);
  std::ofstream(dir / "truncated.json") << R"({"dimensions":2,"words":["the")";
  EXPECT_THROW(read_wink_embeddings((dir / "truncated.json").string()), Error);
}

TEST(Cosine, BasicsAndEdgeCases) {
  const std::vector<float> a = {1, 0}, b = {0, 2}, c = {3, 0}, zero = {0, 0};
  EXPECT_FLOAT_EQ(cosine(a, c), 1.0f);
  EXPECT_FLOAT_EQ(cosine(a, b), 0.0f);
  EXPECT_EQ(cosine(a, zero), 0.0f);
  EXPECT_THROW(cosine(a, std::vector<float>{1, 2, 3}), Error);
}

}  // namespace
}  // namespace thinkmesh::embed
