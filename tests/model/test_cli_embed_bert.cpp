// `thinkmesh embed` / `similarity` with a BERT GGUF end to end: --json is one array of 384
// floats per text equal to the library's embeddings, --pooling cls changes them, similarity
// prints one cosine, and an over-long text warns on stderr (or fails with
// --no-truncate).
#include <gtest/gtest.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "support/fixtures.h"
#include "thinkmesh/embed.h"
#include "thinkmesh/encoder.h"
#include "thinkmesh/gguf.h"

namespace thinkmesh {
namespace {

constexpr const char* kModel = "fixtures/models/minilm-shape-F16.gguf";

struct CliResult {
  int status;
  std::string out;  // stdout, or stdout and stderr together with merge_stderr
};

CliResult run(const std::string& args, bool merge_stderr = false) {
  const std::string cmd =
      test::thinkmesh_binary().string() + " " + args + (merge_stderr ? " 2>&1" : "");
  std::unique_ptr<FILE, int (*)(FILE*)> pipe(popen(cmd.c_str(), "r"), pclose);
  CliResult r{-1, ""};
  std::array<char, 4096> buf{};
  for (size_t n; (n = fread(buf.data(), 1, buf.size(), pipe.get())) > 0;)
    r.out.append(buf.data(), n);
  r.status = pclose(pipe.release());
  return r;
}

std::vector<std::vector<float>> library(const std::vector<std::string>& texts, Pooling pooling) {
  register_bert_embedder();
  EmbedOptions o;
  o.pooling = pooling;
  const EmbeddingMatrix m = Embedder::open(test::fixture(kModel).string(), o)->embed(texts);
  std::vector<std::vector<float>> rows;
  for (int64_t i = 0; i < m.n_rows; ++i) rows.emplace_back(m.row(i).begin(), m.row(i).end());
  return rows;
}

void expect_close(const nlohmann::json& j, const std::vector<std::vector<float>>& want) {
  ASSERT_TRUE(j.is_array());
  ASSERT_EQ(j.size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) {
    const auto got = j[i].get<std::vector<float>>();
    ASSERT_EQ(got.size(), 384u);
    // fmt prints the shortest round-trip form of each float.
    for (size_t k = 0; k < got.size(); ++k) EXPECT_NEAR(got[k], want[i][k], 1e-7) << i << "," << k;
  }
}

TEST(CliEmbedBert, JsonMeanAndCls) {
  THINKMESH_REQUIRE_FIXTURE(kModel);
  const std::string m = test::fixture(kModel).string();
  const CliResult mean = run("embed -m '" + m + "' --json a b");
  ASSERT_EQ(mean.status, 0);
  expect_close(nlohmann::json::parse(mean.out), library({"a", "b"}, Pooling::mean));
  const CliResult cls = run("embed -m '" + m + "' --json --pooling cls a b");
  ASSERT_EQ(cls.status, 0);
  expect_close(nlohmann::json::parse(cls.out), library({"a", "b"}, Pooling::cls));
}

TEST(CliEmbedBert, SimilarityPrintsOneCosine) {
  THINKMESH_REQUIRE_FIXTURE(kModel);
  const std::string m = test::fixture(kModel).string();
  const CliResult r = run("similarity -m '" + m + "' 'the cat sits' 'a cat is sitting'");
  ASSERT_EQ(r.status, 0);
  const auto rows = library({"the cat sits", "a cat is sitting"}, Pooling::mean);
  const double want = cosine(rows[0], rows[1]);
  EXPECT_NEAR(std::stod(r.out), want, 1e-6) << r.out;
  const CliResult same = run("similarity -m '" + m + "' 'the cat sits' 'the cat sits'");
  EXPECT_NEAR(std::stod(same.out), 1.0, 1e-6) << same.out;
}

// On a copy whose bert.context_length is 16 (same weights), so the truncated pass is cheap.
TEST(CliEmbedBert, LongTextWarnsOrFails) {
  THINKMESH_REQUIRE_FIXTURE(kModel);
  const gguf::File f = gguf::File::open(test::fixture(kModel).string());
  gguf::Writer w;
  for (const auto& kv : f.metadata()) w.set(kv.key, kv.value);
  w.set("bert.context_length", gguf::Value::u32(16));
  for (const auto& t : f.tensors()) w.add_tensor(t.name, t.type, t.ne, f.tensor_data(t));
  const std::string m =
      (std::filesystem::path(testing::TempDir()) / "minilm-cli-ctx16.gguf").string();
  w.write(m);
  std::string long_text;
  for (int i = 0; i < 20; ++i) long_text += "word ";
  const CliResult warned = run("embed -m '" + m + "' '" + long_text + "'", true);
  EXPECT_EQ(warned.status, 0);
  EXPECT_NE(warned.out.find("truncated"), std::string::npos) << warned.out;
  const CliResult failed = run("embed -m '" + m + "' --no-truncate '" + long_text + "'", true);
  EXPECT_NE(failed.status, 0);
  EXPECT_NE(failed.out.find("16 positions"), std::string::npos) << failed.out;
  std::filesystem::remove(m);
}

}  // namespace
}  // namespace thinkmesh
