// The BERT embedder on minilm-shape-F16.gguf against llama.cpp's goldens
// (fixtures/golden/embeddings.jsonl, MANIFEST §2.4 / §3): token ids exact; embeddings within
// 1e-4 per component and cosine >= 0.99999 of the single-sentence run and of the 20-sentence
// batched run; a Q8_0 copy made here within cosine 0.9999; batch equivalence; empty,
// all-unknown and over-long texts; clear load errors.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "encoder/bert_embedder.h"
#include "encoder/encoder_ops.h"
#include "support/fixtures.h"
#include "thinkmesh/embed.h"
#include "thinkmesh/encoder.h"
#include "thinkmesh/error.h"
#include "thinkmesh/gguf.h"
#include "thinkmesh/half.h"

namespace thinkmesh {
namespace {

namespace fs = std::filesystem;

constexpr const char* kModel = "fixtures/models/minilm-shape-F16.gguf";
constexpr const char* kGolden = "fixtures/golden/embeddings.jsonl";

struct GoldenRow {
  std::string text;
  std::vector<TokenId> ids;
  std::vector<float> batched;  // `embedding`: all 20 sentences in one llama-embedding batch
  std::vector<float> single;   // `embedding_full_precision`: the sentence alone
};

std::vector<GoldenRow> read_golden() {
  std::ifstream in(test::fixture(kGolden));
  std::vector<GoldenRow> rows;
  for (std::string line; std::getline(in, line);) {
    if (line.empty()) continue;
    const auto j = nlohmann::json::parse(line);
    rows.push_back({j.at("text").get<std::string>(), j.at("ids").get<std::vector<TokenId>>(),
                    j.at("embedding").get<std::vector<float>>(),
                    j.at("embedding_full_precision").get<std::vector<float>>()});
  }
  return rows;
}

std::unique_ptr<Embedder> open_bert(const std::string& path, EmbedOptions options = {}) {
  register_bert_embedder();
  if (options.n_threads == 0) options.n_threads = 2;
  return Embedder::open(path, options);
}

double max_abs_diff(std::span<const float> a, std::span<const float> b) {
  double d = 0;
  for (size_t i = 0; i < a.size(); ++i)
    d = std::max(d, std::fabs(static_cast<double>(a[i]) - b[i]));
  return d;
}

// In double, to report how far below 1 it is.
double cosine_f64(std::span<const float> a, std::span<const float> b) {
  double dot = 0, na = 0, nb = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    dot += static_cast<double>(a[i]) * b[i];
    na += static_cast<double>(a[i]) * a[i];
    nb += static_cast<double>(b[i]) * b[i];
  }
  return dot / std::sqrt(na * nb);
}

std::vector<std::string> texts_of(const std::vector<GoldenRow>& rows) {
  std::vector<std::string> texts;
  for (const auto& r : rows) texts.push_back(r.text);
  return texts;
}

// A copy of the model in the test's temp dir: with `q8_0`, its 37 F16 matrices quantized to
// Q8_0 by the reference quantizer (after dequantize_row); with `n_positions` > 0,
// bert.context_length lowered to it (the position table stays, so truncation is cheap to test).
fs::path write_variant(const std::string& name, bool q8_0, int64_t n_positions) {
  const gguf::File f = gguf::File::open(test::fixture(kModel).string());
  gguf::Writer w;
  for (const auto& kv : f.metadata()) w.set(kv.key, kv.value);
  if (q8_0) w.set("general.file_type", gguf::Value::u32(7));  // LLAMA_FTYPE_MOSTLY_Q8_0
  if (n_positions > 0) w.set("bert.context_length", gguf::Value::u32(n_positions));
  int n_quantized = 0;
  for (const auto& t : f.tensors()) {
    const auto bytes = f.tensor_data(t);
    if (!q8_0 || t.type != TensorType::F16 || t.ne.size() != 2) {
      w.add_tensor(t.name, t.type, t.ne, bytes);
      continue;
    }
    const int64_t cols = t.ne[0], rows = t.ne[1];
    std::vector<uint8_t> out(row_bytes(TensorType::Q8_0, cols) * static_cast<size_t>(rows));
    std::vector<float> row(static_cast<size_t>(cols));
    for (int64_t r = 0; r < rows; ++r) {
      dequantize_row(TensorType::F16, bytes.data() + row_bytes(TensorType::F16, cols) * r,
                     row.data(), cols);
      quantize_row_reference(TensorType::Q8_0, row.data(),
                             out.data() + row_bytes(TensorType::Q8_0, cols) * r, cols);
    }
    w.add_tensor(t.name, TensorType::Q8_0, t.ne, std::move(out));
    ++n_quantized;
  }
  if (q8_0) {
    EXPECT_EQ(n_quantized, 37);
  }
  const fs::path dst = fs::path(testing::TempDir()) / name;
  w.write(dst.string());
  return dst;
}

class BertGolden : public ::testing::Test {
 protected:
  void SetUp() override {
    THINKMESH_REQUIRE_FIXTURE(kModel);
    THINKMESH_REQUIRE_FIXTURE(kGolden);
    golden_ = read_golden();
    ASSERT_EQ(golden_.size(), 20u);
  }
  std::vector<GoldenRow> golden_;
};

TEST_F(BertGolden, TokenIdsMatchLlamaCpp) {
  const auto e = open_bert(test::fixture(kModel).string());
  const auto& bert = static_cast<const encoder::BertEmbedder&>(*e);
  for (const auto& g : golden_) {
    EmbeddingRowInfo info;
    EXPECT_EQ(bert.tokenize(g.text, info), g.ids) << g.text;
    EXPECT_EQ(info.n_tokens, static_cast<int32_t>(g.ids.size()));
    EXPECT_FALSE(info.truncated);
  }
}

// One pass holding all 20 sentences (batch_size 32) against both goldens; BatchEqualsOneByOne
// shows that each sentence alone gives the same.
TEST_F(BertGolden, EmbeddingsMatchLlamaCpp) {
  const std::vector<std::string> texts = texts_of(golden_);
  for (const int batch : {32}) {
    EmbedOptions o;
    o.batch_size = batch;
    const auto e = open_bert(test::fixture(kModel).string(), o);
    ASSERT_EQ(e->dim(), 384);
    const EmbeddingMatrix m = e->embed(texts);
    double worst_single = 0, worst_batched = 0, min_cos_single = 1, min_cos_batched = 1;
    for (size_t i = 0; i < golden_.size(); ++i) {
      const auto row = m.row(static_cast<int64_t>(i));
      const double d_single = max_abs_diff(row, golden_[i].single);
      const double d_batched = max_abs_diff(row, golden_[i].batched);
      const double c_single = cosine_f64(row, golden_[i].single);
      const double c_batched = cosine_f64(row, golden_[i].batched);
      EXPECT_LE(d_single, 1e-4) << golden_[i].text;
      EXPECT_LE(d_batched, 1e-4) << golden_[i].text;
      EXPECT_GE(c_single, 0.99999) << golden_[i].text;
      EXPECT_GE(c_batched, 0.99999) << golden_[i].text;
      worst_single = std::max(worst_single, d_single);
      worst_batched = std::max(worst_batched, d_batched);
      min_cos_single = std::min(min_cos_single, c_single);
      min_cos_batched = std::min(min_cos_batched, c_batched);
    }
    std::printf(
        "batch_size %d: vs single-sentence golden max|d| %.3g min cos %.10f; vs batched golden "
        "max|d| %.3g min cos %.10f\n",
        batch, worst_single, min_cos_single, worst_batched, min_cos_batched);
  }
}

// Sentences of different lengths (3 to 17 tokens) in one pass give what each gives alone: no
// token attends outside its own sequence. Every matrix product computes each token's row on
// its own, so the tolerance is summation order at most. (The F16 model itself is checked in
// one pass against both goldens above; the Q8_0 copy runs faster on the scalar kernels.)
TEST_F(BertGolden, BatchEqualsOneByOne) {
  const fs::path q8 = write_variant("minilm-shape-Q8_0-batch.gguf", /*q8_0=*/true, 0);
  std::vector<std::string> texts;
  for (const size_t i : {17u, 19u, 9u, 18u, 14u, 3u}) texts.push_back(golden_[i].text);
  for (const std::string& path : {q8.string()}) {
    const auto e = open_bert(path);
    const EmbeddingMatrix together = e->embed(texts);
    for (size_t i = 0; i < texts.size(); ++i) {
      const std::vector<float> alone = e->embed_one(texts[i]);
      EXPECT_LE(max_abs_diff(together.row(static_cast<int64_t>(i)), alone), 1e-6) << texts[i];
    }
  }
  fs::remove(q8);
}

// Mean pooling default (bert.pooling_type 1), cls on request, no normalisation on request.
TEST_F(BertGolden, PoolingOverrideAndNormalisation) {
  const std::vector<std::string> texts = {golden_[19].text};
  const auto mean = open_bert(test::fixture(kModel).string());
  EXPECT_EQ(static_cast<const encoder::BertEmbedder&>(*mean).pooling(), Pooling::mean);
  EmbedOptions o;
  o.pooling = Pooling::cls;
  const auto cls = open_bert(test::fixture(kModel).string(), o);
  o.normalize = false;
  const auto raw_cls = open_bert(test::fixture(kModel).string(), o);
  const EmbeddingMatrix a = mean->embed(texts), b = cls->embed(texts), c = raw_cls->embed(texts);
  EXPECT_GE(cosine_f64(a.row(0), golden_[19].single), 0.99999);
  for (int64_t i = 0; i < 1; ++i) {
    EXPECT_LT(cosine(a.row(i), b.row(i)), 0.9999) << "cls pooling gave the mean";
    double norm = 0;
    for (const float x : b.row(i)) norm += static_cast<double>(x) * x;
    EXPECT_NEAR(norm, 1.0, 1e-5);
    EXPECT_GT(cosine(b.row(i), c.row(i)), 0.999999) << "normalisation changed the direction";
    // LayerNorm output: each component is O(1), the vector's norm about sqrt(384) ≈ 20.
    double raw = 0;
    for (const float x : c.row(i)) raw += static_cast<double>(x) * x;
    EXPECT_GT(std::sqrt(raw), 2.0);
  }
}

double norm(std::span<const float> v) {
  double n = 0;
  for (const float x : v) n += static_cast<double>(x) * x;
  return std::sqrt(n);
}

// Over-long texts on a copy whose bert.context_length is 16 (the same weights), so the
// truncated pass is cheap; the real model's 512 positions are checked on the token ids.
TEST_F(BertGolden, EmptyUnknownAndLongTexts) {
  const fs::path short_ctx = write_variant("minilm-ctx16.gguf", /*q8_0=*/false, 16);
  const auto e = open_bert(short_ctx.string());
  const auto& bert = static_cast<const encoder::BertEmbedder&>(*e);
  std::string long_text;
  for (int i = 0; i < 20; ++i) long_text += "word ";
  const std::vector<std::string> texts = {
      "", "   ", "\xF0\x9F\xA6\x99\xF0\x9F\xA6\x99 \xF0\x9F\xA6\x99", long_text, golden_[0].text};
  const EmbeddingMatrix m = e->embed(texts);

  // Empty and whitespace-only: [CLS] [SEP] alone, flagged, a unit vector, the same for both.
  for (int64_t i : {0, 1}) {
    EXPECT_TRUE(m.rows[i].empty);
    EXPECT_FALSE(m.rows[i].all_unknown);
    EXPECT_EQ(m.rows[i].n_tokens, 2);
    EXPECT_NEAR(norm(m.row(i)), 1.0, 1e-5);
  }
  EXPECT_LE(max_abs_diff(m.row(0), m.row(1)), 1e-7);

  // Every word unknown: embedded ([UNK] tokens are vectors like any), flagged.
  EmbeddingRowInfo info;
  const auto ids = bert.tokenize(texts[2], info);
  ASSERT_GE(ids.size(), 3u);
  for (size_t i = 1; i + 1 < ids.size(); ++i) EXPECT_EQ(ids[i], 100) << "expected [UNK]";
  EXPECT_TRUE(m.rows[2].all_unknown);
  EXPECT_FALSE(m.rows[2].empty);
  EXPECT_EQ(m.rows[2].n_unknown, static_cast<int32_t>(ids.size() - 2));
  EXPECT_NEAR(norm(m.row(2)), 1.0, 1e-5);

  // 20 words (22 tokens): cut to 16, [CLS] … [SEP] kept, flagged, and equal to embedding the
  // kept ids' text; a text that fits is not flagged and still matches the golden.
  const auto long_ids = bert.tokenize(long_text, info);
  EXPECT_TRUE(info.truncated);
  ASSERT_EQ(long_ids.size(), 16u);
  EXPECT_EQ(long_ids.front(), 101);
  EXPECT_EQ(long_ids.back(), 102);
  EXPECT_TRUE(m.rows[3].truncated);
  EXPECT_EQ(m.rows[3].n_tokens, 16);
  std::string kept;
  for (int i = 0; i < 14; ++i) kept += "word ";
  EXPECT_LE(max_abs_diff(m.row(3), e->embed_one(kept)), 1e-6);
  EXPECT_FALSE(m.rows[4].truncated);
  EXPECT_GE(cosine_f64(m.row(4), golden_[0].single), 0.99999) << "a long neighbour disturbed it";

  // truncate = false: the long text is an error naming the lengths; short texts still work.
  EmbedOptions strict;
  strict.truncate = false;
  const auto s = open_bert(short_ctx.string(), strict);
  try {
    s->embed(std::vector<std::string>{long_text});
    FAIL() << "a 22-token text embedded with truncation off";
  } catch (const Error& err) {
    EXPECT_EQ(err.kind(), ErrorKind::out_of_range);
    EXPECT_NE(std::string(err.what()).find("16 positions"), std::string::npos) << err.what();
  }
  EXPECT_EQ(s->embed(std::vector<std::string>{golden_[19].text}).n_rows, 1);
  fs::remove(short_ctx);

  // The real model: 600 words become 512 ids, [CLS] first and [SEP] last.
  const auto real = open_bert(test::fixture(kModel).string());
  std::string very_long;
  for (int i = 0; i < 600; ++i) very_long += "word ";
  const auto ids512 = static_cast<const encoder::BertEmbedder&>(*real).tokenize(very_long, info);
  EXPECT_TRUE(info.truncated);
  ASSERT_EQ(ids512.size(), 512u);
  EXPECT_EQ(ids512.front(), 101);
  EXPECT_EQ(ids512.back(), 102);
}

// ggml's GELU table: F16 input, F16 output of the tanh approximation, identity/zero beyond ±10.
TEST(BertOps, GeluTableMatchesRoundedTanhGelu) {
  for (const float x : {-12.0f, -10.0f, -3.3f, -0.5f, -1e-3f, 0.0f, 1e-3f, 0.7f, 2.5f, 9.99f}) {
    const float want = x <= -10.0f ? 0.0f : round_to_fp16(encoder::gelu_f32(round_to_fp16(x)));
    EXPECT_EQ(encoder::gelu_table(x), want) << x;
  }
  EXPECT_EQ(encoder::gelu_table(12.5f), 12.5f);
  EXPECT_NEAR(encoder::gelu_f32(1.0f), 0.8412f, 1e-4);
}

TEST_F(BertGolden, Q8_0CopyStaysCloseToF16) {
  const fs::path q8 = write_variant("minilm-shape-Q8_0.gguf", /*q8_0=*/true, 0);
  const auto e = open_bert(q8.string());
  const EmbeddingMatrix m = e->embed(texts_of(golden_));
  double min_cos = 1, worst = 0;
  for (size_t i = 0; i < golden_.size(); ++i) {
    const auto row = m.row(static_cast<int64_t>(i));
    min_cos = std::min(min_cos, cosine_f64(row, golden_[i].single));
    worst = std::max(worst, max_abs_diff(row, golden_[i].single));
  }
  std::printf("Q8_0 copy vs F16 golden: max|d| %.3g min cos %.10f\n", worst, min_cos);
  EXPECT_GE(min_cos, 0.9999);
  EXPECT_LE(worst, 2e-3);
  fs::remove(q8);
}

// A file whose tensor is missing or misshapen names the tensor and the expected shape.
TEST(BertErrors, MissingAndMisshapenTensorsAreNamed) {
  THINKMESH_REQUIRE_FIXTURE(kModel);
  register_bert_embedder();
  const gguf::File f = gguf::File::open(test::fixture(kModel).string());
  for (const std::string mode : {"missing", "shape", "pooling"}) {
    gguf::Writer w;
    for (const auto& kv : f.metadata()) w.set(kv.key, kv.value);
    if (mode == "pooling") w.set("bert.pooling_type", gguf::Value::u32(0));
    for (const auto& t : f.tensors()) {
      if (t.name == "blk.3.ffn_up.bias") {
        if (mode == "missing") continue;
        if (mode == "shape") {
          w.add_tensor(t.name, t.type, {t.ne[0] / 2}, f.tensor_data(t).subspan(0, t.nbytes / 2));
          continue;
        }
      }
      w.add_tensor(t.name, t.type, t.ne, f.tensor_data(t));
    }
    const fs::path path = fs::path(testing::TempDir()) / ("minilm-" + mode + ".gguf");
    w.write(path.string());
    try {
      Embedder::open(path.string());
      FAIL() << mode << ": opened";
    } catch (const Error& e) {
      const std::string what = e.what();
      if (mode == "pooling") {
        EXPECT_EQ(e.kind(), ErrorKind::invalid_argument) << what;
        EXPECT_NE(what.find("pooling"), std::string::npos) << what;
      } else {
        EXPECT_EQ(e.kind(), ErrorKind::invalid_file) << what;
        EXPECT_NE(what.find("blk.3.ffn_up.bias"), std::string::npos) << what;
        EXPECT_NE(what.find("[1536]"), std::string::npos) << what;
      }
    }
    if (mode == "pooling") {
      // An explicit pooling makes the same file usable.
      EmbedOptions o;
      o.pooling = Pooling::mean;
      EXPECT_EQ(Embedder::open(path.string(), o)->dim(), 384);
    }
    fs::remove(path);
  }
}

}  // namespace
}  // namespace thinkmesh
