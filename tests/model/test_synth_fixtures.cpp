// thinkmesh synth against the shipped fixtures: minilm-l6 has exactly minilm-shape-F16's
// metadata keys, tensors, shapes and types; the Q4_K_M mix gives tiny-llama-spm-Q4_K_M's types
// (written by llama-quantize); --vocab-from copies the real Qwen2 vocabulary.
#include <gtest/gtest.h>

#include <filesystem>
#include <set>

#include "support/fixtures.h"
#include "thinkmesh/gguf.h"
#include "thinkmesh/model.h"
#include "thinkmesh/synth.h"
#include "thinkmesh/tokenizer.h"

namespace thinkmesh {
namespace {

namespace fs = std::filesystem;

TEST(SynthFixtures, MiniLmMatchesTheShippedShape) {
  THINKMESH_REQUIRE_FIXTURE("fixtures/models/minilm-shape-F16.gguf");
  const auto ref =
      gguf::File::open(test::fixture("fixtures/models/minilm-shape-F16.gguf").string());
  const auto path = fs::temp_directory_path() / "thinkmesh_synth_minilm_fixture.gguf";
  synth::SynthOptions o;
  o.like = "minilm-l6";
  o.type = "F16";
  o.output = path.string();
  synth::synthesize(o);
  const auto f = gguf::File::open(path.string());

  std::set<std::string> ref_keys, keys;
  for (const auto& kv : ref.metadata()) ref_keys.insert(kv.key);
  for (const auto& kv : f.metadata()) keys.insert(kv.key);
  EXPECT_EQ(keys, ref_keys);
  for (const auto& kv : ref.metadata()) {
    if (kv.key.rfind("bert.", 0) == 0 || kv.key == "general.file_type" ||
        kv.key == "general.size_label" || kv.key == "tokenizer.ggml.model" ||
        kv.key.find("token_id") != std::string::npos) {
      const gguf::Value* mine = f.find(kv.key);
      ASSERT_NE(mine, nullptr) << kv.key;
      EXPECT_EQ(mine->to_display_string(), kv.value.to_display_string()) << kv.key;
    }
  }
  ASSERT_EQ(f.tensors().size(), ref.tensors().size());
  for (size_t i = 0; i < ref.tensors().size(); ++i) {
    const auto& a = f.tensors()[i];
    const auto& b = ref.tensors()[i];
    EXPECT_EQ(a.name, b.name);
    EXPECT_EQ(a.ne, b.ne) << b.name;
    EXPECT_EQ(a.type, b.type) << b.name;
  }
  fs::remove(path);
}

TEST(SynthFixtures, QuantMixMatchesLlamaQuantize) {
  THINKMESH_REQUIRE_FIXTURE("fixtures/models/tiny-llama-spm-Q4_K_M.gguf");
  const auto ref =
      gguf::File::open(test::fixture("fixtures/models/tiny-llama-spm-Q4_K_M.gguf").string());
  const auto n_layer = static_cast<int32_t>(ref.get_int("llama.block_count"));
  const bool has_output = ref.find_tensor("output.weight") != nullptr;
  // llama-quantize counts attn_v / ffn_down in file order.
  int32_t i_attn_v = 0, i_ffn_down = 0;
  int checked = 0;
  for (const auto& t : ref.tensors()) {
    const TensorType want = t.type;
    EXPECT_EQ(
        synth::tensor_type_for("Q4_K_M", t.name, t.ne, i_attn_v, i_ffn_down, n_layer, has_output),
        want)
        << t.name;
    if (t.name.find("attn_v.weight") != std::string::npos) ++i_attn_v;
    if (t.name.find("ffn_down.weight") != std::string::npos) ++i_ffn_down;
    ++checked;
  }
  EXPECT_GT(checked, 30);
}

TEST(SynthFixtures, VocabFromCopiesTheQwen2Vocabulary) {
  THINKMESH_REQUIRE_FIXTURE("fixtures/models/tiny-qwen2-Q8_0.gguf");
  const std::string vocab = test::fixture("fixtures/models/tiny-qwen2-Q8_0.gguf").string();
  const auto path = fs::temp_directory_path() / "thinkmesh_synth_qwen_vocab.gguf";
  synth::SynthOptions o;
  o.like = "qwen2.5-0.5b";
  o.type = "Q4_0";
  o.output = path.string();
  o.vocab_from = vocab;
  o.n_layer = 1;
  synth::synthesize(o);
  const auto ref = gguf::File::open(vocab);
  const auto f = gguf::File::open(path.string());
  int copied = 0;
  for (const auto& kv : ref.metadata()) {
    if (kv.key.rfind("tokenizer.", 0) != 0) continue;
    const gguf::Value* mine = f.find(kv.key);
    ASSERT_NE(mine, nullptr) << kv.key;
    EXPECT_EQ(mine->to_display_string(1 << 20), kv.value.to_display_string(1 << 20)) << kv.key;
    ++copied;
  }
  EXPECT_GE(copied, 9);
  const auto model = Model::load(path.string());
  EXPECT_EQ(model->info().n_vocab, 151936);
  const auto ref_tok = Tokenizer::from_gguf(ref);
  const std::string text = "Hello, world! <|im_start|>user";
  EXPECT_EQ(model->tokenizer().tokenize(text), ref_tok->tokenize(text));
  fs::remove(path);
}

}  // namespace
}  // namespace thinkmesh
