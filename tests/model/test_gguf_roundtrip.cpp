// read -> write -> identical bytes, on the real GGUF files of the fixtures: every metadata
// value (with its stored type, nested arrays included) and every tensor written back with
// gguf::Writer must reproduce the original file byte for byte.
#include <gtest/gtest.h>

#include <filesystem>

#include "support/fixtures.h"
#include "thinkmesh/gguf.h"

namespace thinkmesh::gguf {
namespace {

class RoundTrip : public ::testing::TestWithParam<std::string> {};

TEST_P(RoundTrip, WriterReproducesTheFile) {
  THINKMESH_REQUIRE_FIXTURE(GetParam());
  const File f = File::open(test::fixture(GetParam()).string());
  Writer w(f.version(), static_cast<uint32_t>(f.alignment()));
  for (const auto& kv : f.metadata()) w.set(kv.key, kv.value);
  for (const auto& t : f.tensors()) w.add_tensor(t.name, t.type, t.ne, f.tensor_data(t));
  const std::vector<uint8_t> out = w.to_bytes();
  const auto original = f.bytes();
  ASSERT_EQ(out.size(), original.size());
  size_t first_diff = out.size();
  for (size_t i = 0; i < out.size(); ++i) {
    if (out[i] != original[i]) {
      first_diff = i;
      break;
    }
  }
  EXPECT_EQ(first_diff, out.size()) << "first differing byte at offset " << first_diff;
}

INSTANTIATE_TEST_SUITE_P(
    Fixtures, RoundTrip,
    ::testing::Values("models/stories260K/stories260K.gguf",
                      "fixtures/models/tiny-llama-spm-Q4_K_M.gguf",
                      "fixtures/models/tiny-qwen2-Q8_0.gguf",
                      "fixtures/models/minilm-shape-F16.gguf",
                      "models/tokenizers/llama.cpp-vocab/ggml-vocab-phi-3.gguf"),
    [](const auto& p) {
      std::string s = std::filesystem::path(p.param).stem().string();
      for (char& c : s) c = std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
      return s;
    });

}  // namespace
}  // namespace thinkmesh::gguf
