// `convert` of the llama2.c stories260K checkpoint reproduces stories260K.gguf (made by
// llama.cpp's converter): the same tensors byte for byte, the same vocabulary, bit-identical
// logits; --type f16/bf16 store 2-D weights in that type and keep 1-D ones F32.
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "hf_folder_writer.h"
#include "support/fixtures.h"
#include "thinkmesh/batch.h"
#include "thinkmesh/context.h"
#include "thinkmesh/convert.h"
#include "thinkmesh/error.h"
#include "thinkmesh/gguf.h"
#include "thinkmesh/half.h"
#include "thinkmesh/model.h"

namespace thinkmesh {
namespace {

namespace fs = std::filesystem;

const std::string kOriginal = "models/stories260K/stories260K.gguf";
const std::string kCheckpoint = "models/stories260K/derived-llama2c/stories260K.bin";
const std::string kTokenizer = "models/stories260K/derived-llama2c/tok512.bin";

fs::path temp_dir(const std::string& name) {
  const fs::path dir = fs::temp_directory_path() /
                       ("thinkmesh-convert-" + name + "-" +
                        std::to_string(::testing::UnitTest::GetInstance()->random_seed()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

std::vector<std::vector<float>> all_logits(const std::string& path,
                                           const std::vector<TokenId>& ids) {
  const auto model = Model::load(path);
  ContextOptions options;
  options.n_ctx = 64;
  options.n_threads = 1;
  Context ctx(model, options);
  Batch batch;
  for (size_t i = 0; i < ids.size(); ++i) batch.add(ids[i], static_cast<int32_t>(i), 0, true);
  ctx.decode(batch);
  std::vector<std::vector<float>> out;
  for (size_t i = 0; i < ids.size(); ++i) {
    const auto l = ctx.logits(static_cast<int32_t>(i));
    out.emplace_back(l.begin(), l.end());
  }
  return out;
}

TEST(ConvertLlama2c, ReproducesStories260K) {
  THINKMESH_REQUIRE_FIXTURE(kOriginal);
  THINKMESH_REQUIRE_FIXTURE(kCheckpoint);
  const fs::path dir = temp_dir("llama2c");
  const std::string out = (dir / "stories260K.gguf").string();
  convert::ConvertOptions options;
  options.tokenizer = test::fixture(kTokenizer).string();
  const auto result = convert::convert_llama2c(test::fixture(kCheckpoint).string(), out, options);
  EXPECT_EQ(result.architecture, "llama");
  EXPECT_EQ(result.type, TensorType::F32);
  EXPECT_EQ(result.n_vocab, 512u);

  const auto original = gguf::File::open(test::fixture(kOriginal).string());
  const auto converted = gguf::File::open(out);
  // Same tensors (names, order, types, shapes, bytes).
  ASSERT_EQ(converted.tensors().size(), original.tensors().size());
  for (size_t i = 0; i < original.tensors().size(); ++i) {
    const auto& a = original.tensors()[i];
    const auto& b = converted.tensors()[i];
    EXPECT_EQ(a.name, b.name) << i;
    EXPECT_EQ(a.type, b.type) << a.name;
    EXPECT_EQ(a.ne, b.ne) << a.name;
    const auto x = original.tensor_data(a), y = converted.tensor_data(b);
    EXPECT_TRUE(x.size() == y.size() && std::memcmp(x.data(), y.data(), x.size()) == 0) << a.name;
  }
  // Metadata: the vocabulary and every hyperparameter agree; report what differs.
  const auto diffs = test::metadata_differences(original, converted);
  for (const auto& d : diffs) std::cout << "  metadata difference: " << d << "\n";
  for (const char* key :
       {"tokenizer.ggml.tokens", "tokenizer.ggml.scores", "tokenizer.ggml.token_type",
        "tokenizer.ggml.model", "llama.embedding_length", "llama.feed_forward_length",
        "llama.attention.head_count", "llama.attention.head_count_kv", "llama.block_count",
        "llama.rope.dimension_count", "llama.attention.layer_norm_rms_epsilon",
        "tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id",
        "tokenizer.ggml.unknown_token_id"}) {
    ASSERT_NE(original.find(key), nullptr) << key;
    ASSERT_NE(converted.find(key), nullptr) << key;
    EXPECT_TRUE(test::same_value(*original.find(key), *converted.find(key))) << key;
  }

  // Logits of a real prompt, every position: bit-identical.
  const auto model = Model::load(test::fixture(kOriginal).string());
  std::vector<TokenId> ids =
      model->tokenizer().tokenize("Once upon a time, there was a little girl");
  ASSERT_GT(ids.size(), 5u);
  const auto expected = all_logits(test::fixture(kOriginal).string(), ids);
  const auto actual = all_logits(out, ids);
  ASSERT_EQ(expected.size(), actual.size());
  double max_rel = 0;
  for (size_t p = 0; p < expected.size(); ++p) {
    ASSERT_EQ(expected[p].size(), actual[p].size());
    for (size_t v = 0; v < expected[p].size(); ++v) {
      const double d = std::abs(expected[p][v] - actual[p][v]) /
                       std::max(1e-6, std::abs(double(expected[p][v])));
      max_rel = std::max(max_rel, d);
    }
    EXPECT_EQ(std::memcmp(expected[p].data(), actual[p].data(), expected[p].size() * 4), 0) << p;
  }
  std::cout << "  " << ids.size() << " positions × " << expected[0].size()
            << " logits, max relative difference " << max_rel << "\n";
  fs::remove_all(dir);
}

TEST(ConvertLlama2c, Bf16AndF16KeepNormsF32) {
  THINKMESH_REQUIRE_FIXTURE(kCheckpoint);
  const fs::path dir = temp_dir("llama2c-types");
  const auto original = gguf::File::open(test::fixture(kOriginal).string());
  for (const TensorType type : {TensorType::F16, TensorType::BF16}) {
    const std::string out = (dir / "out.gguf").string();
    convert::ConvertOptions options;
    options.type = type;
    // The folder form finds the checkpoint and tok512.bin itself.
    convert::convert_any(test::fixture("models/stories260K/derived-llama2c").string(), out,
                         options);
    const auto converted = gguf::File::open(out);
    EXPECT_EQ(converted.get_int("general.file_type"), type == TensorType::F16 ? 1 : 32);
    EXPECT_EQ(converted.get_int("general.quantization_version"), 2);
    for (const auto& t : converted.tensors()) {
      const auto* src = original.find_tensor(t.name);
      ASSERT_NE(src, nullptr) << t.name;
      EXPECT_EQ(t.type, t.ne.size() == 1 ? TensorType::F32 : type) << t.name;
      const auto a = test::tensor_values(original, *src);
      const auto b = test::tensor_values(converted, t);
      ASSERT_EQ(a.size(), b.size());
      for (size_t i = 0; i < a.size(); ++i) {
        const float want = t.type == TensorType::F32   ? a[i]
                           : t.type == TensorType::F16 ? round_to_fp16(a[i])
                                                       : bf16_to_fp32(fp32_to_bf16(a[i]));
        ASSERT_EQ(b[i], want) << t.name << "[" << i << "]";
      }
    }
  }
  convert::ConvertOptions q8;
  q8.type = TensorType::Q8_0;
  EXPECT_THROW(
      convert::convert_any(test::fixture(kCheckpoint).string(), (dir / "q.gguf").string(), q8),
      Error);
  fs::remove_all(dir);
}

TEST(ConvertLlama2c, CommandLineWritesTheFile) {
  THINKMESH_REQUIRE_FIXTURE(kCheckpoint);
  const fs::path dir = temp_dir("llama2c-cli");
  const fs::path out = dir / "stories-f16.gguf";
  const std::string cmd = test::thinkmesh_binary().string() + " convert '" +
                          test::fixture(kCheckpoint).string() + "' --tokenizer '" +
                          test::fixture(kTokenizer).string() + "' -o '" + out.string() +
                          "' --type f16 > '" + (dir / "log").string() + "' 2>&1";
  EXPECT_EQ(std::system(cmd.c_str()), 0) << test::read_file(dir / "log");
  const std::string log = test::read_file(dir / "log");
  EXPECT_NE(log.find("llama from llama2.c, 48 tensors"), std::string::npos) << log;
  EXPECT_EQ(gguf::File::open(out.string()).get_int("general.file_type"), 1);
  const std::string bad = test::thinkmesh_binary().string() + " convert '" +
                          test::fixture(kCheckpoint).string() + "' -o '" + out.string() +
                          "' --type q4_0 > /dev/null 2>&1";
  EXPECT_NE(std::system(bad.c_str()), 0);
  fs::remove_all(dir);
}

TEST(ConvertLlama2c, TruncatedCheckpointIsAClearError) {
  THINKMESH_REQUIRE_FIXTURE(kCheckpoint);
  const fs::path dir = temp_dir("llama2c-bad");
  const std::string bytes = test::read_file(test::fixture(kCheckpoint));
  const fs::path bad = dir / "cut.bin";
  std::ofstream(bad, std::ios::binary)
      .write(bytes.data(), static_cast<std::streamsize>(bytes.size() - 100));
  convert::ConvertOptions options;
  options.tokenizer = test::fixture(kTokenizer).string();
  try {
    convert::convert_llama2c(bad.string(), (dir / "o.gguf").string(), options);
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::invalid_file);
    EXPECT_NE(std::string(e.what()).find("the header implies"), std::string::npos) << e.what();
  }
  fs::remove_all(dir);
}

}  // namespace
}  // namespace thinkmesh
