// Per-tensor type choice (src/quant/recipe.cpp, plan_quantization) on small synthetic GGUF
// files: llama.cpp's layer pattern for Q4_K_M / Q5_K_M / Q4_K_S, the output and tied-embedding
// rules, what is never quantized, fallbacks, overrides and the requantize guard.
#include <gtest/gtest.h>

#include <set>
#include <string>
#include <vector>

#include "thinkmesh/error.h"
#include "thinkmesh/gguf.h"
#include "thinkmesh/imatrix.h"
#include "thinkmesh/quantize.h"

namespace thinkmesh {
namespace {

// A llama-shaped file: n_layer blocks of attn_q/attn_v/ffn_down/attn_norm, F32, rows of `cols`.
std::vector<uint8_t> llama_file(int n_layer, bool tied, int64_t cols = 256,
                                TensorType weight_type = TensorType::F32) {
  gguf::Writer w;
  w.set("general.architecture", gguf::Value::string("llama"));
  w.set("llama.block_count", gguf::Value::u32(static_cast<uint32_t>(n_layer)));
  w.set("general.file_type", gguf::Value::u32(0));
  auto add = [&](const std::string& name, std::vector<int64_t> ne, TensorType type) {
    int64_t n = 1;
    for (int64_t d : ne) n *= d;
    w.add_tensor(name, type, ne, std::vector<uint8_t>(row_bytes(type, ne[0]) * (n / ne[0])));
  };
  add("token_embd.weight", {cols, 2}, weight_type);
  for (int i = 0; i < n_layer; ++i) {
    const std::string p = "blk." + std::to_string(i) + ".";
    add(p + "attn_norm.weight", {cols}, TensorType::F32);
    add(p + "attn_q.weight", {cols, 2}, weight_type);
    add(p + "attn_v.weight", {cols, 2}, weight_type);
    add(p + "ffn_down.weight", {cols, 2}, weight_type);
  }
  add("output_norm.weight", {cols}, TensorType::F32);
  if (!tied) add("output.weight", {cols, 2}, weight_type);
  return w.to_bytes();
}

QuantizeReport plan(const std::vector<uint8_t>& bytes, const std::string& type,
                    QuantizeOptions opt = {}) {
  const gguf::File f = gguf::File::parse(bytes);
  opt.file_type = *parse_file_type(type);
  return plan_quantization(f, opt);
}

const TensorPlan& find(const QuantizeReport& r, const std::string& name) {
  for (const auto& t : r.tensors)
    if (t.name == name) return t;
  throw std::runtime_error("no tensor " + name);
}

std::set<int> layers_with(const QuantizeReport& r, const std::string& suffix, TensorType type) {
  std::set<int> out;
  for (const auto& t : r.tensors)
    if (t.name.size() > suffix.size() && t.name.ends_with(suffix) && t.to == type)
      out.insert(std::stoi(t.name.substr(4)));
  return out;
}

TEST(QuantRecipe, Q4KMUsesMoreBitsInLlamaCppsLayers) {
  const auto bytes = llama_file(32, false);
  const auto r = plan(bytes, "Q4_K_M");
  // use_more_bits(i, 32): i < 4, i >= 28, or (i - 4) % 3 == 2.
  const std::set<int> more = {0, 1, 2, 3, 6, 9, 12, 15, 18, 21, 24, 27, 28, 29, 30, 31};
  EXPECT_EQ(layers_with(r, ".attn_v.weight", TensorType::Q6_K), more);
  EXPECT_EQ(layers_with(r, ".ffn_down.weight", TensorType::Q6_K), more);
  EXPECT_EQ(layers_with(r, ".attn_q.weight", TensorType::Q4_K).size(), 32u);
  EXPECT_EQ(find(r, "output.weight").to, TensorType::Q6_K);
  EXPECT_EQ(find(r, "token_embd.weight").to, TensorType::Q4_K);
  EXPECT_EQ(find(r, "blk.0.attn_norm.weight").to, TensorType::F32);
  EXPECT_FALSE(find(r, "blk.0.attn_norm.weight").quantize);
  EXPECT_EQ(r.n_fallback, 0);
}

TEST(QuantRecipe, Q5KMAndQ4KS) {
  const auto bytes = llama_file(8, false);
  const auto m = plan(bytes, "Q5_K_M");
  // use_more_bits(i, 8): i < 1, i >= 7, (i - 1) % 3 == 2.
  EXPECT_EQ(layers_with(m, ".ffn_down.weight", TensorType::Q6_K), (std::set<int>{0, 3, 6, 7}));
  EXPECT_EQ(layers_with(m, ".attn_q.weight", TensorType::Q5_K).size(), 8u);
  const auto s = plan(bytes, "Q4_K_S");
  EXPECT_EQ(layers_with(s, ".attn_v.weight", TensorType::Q5_K), (std::set<int>{0, 1, 2, 3}));
  EXPECT_EQ(layers_with(s, ".ffn_down.weight", TensorType::Q5_K), (std::set<int>{0}));
  EXPECT_EQ(find(s, "output.weight").to, TensorType::Q6_K);
}

TEST(QuantRecipe, LegacyTypesAndPure) {
  const auto bytes = llama_file(4, false);
  const auto q40 = plan(bytes, "Q4_0");
  EXPECT_EQ(find(q40, "output.weight").to, TensorType::Q6_K);
  EXPECT_EQ(find(q40, "blk.3.ffn_down.weight").to, TensorType::Q4_0);
  const auto q80 = plan(bytes, "Q8_0");
  EXPECT_EQ(find(q80, "output.weight").to, TensorType::Q8_0);
  QuantizeOptions pure;
  pure.pure = true;
  const auto p = plan(bytes, "Q4_0", pure);
  for (const auto& t : p.tensors)
    EXPECT_EQ(t.to, t.ne.size() == 1 ? TensorType::F32 : TensorType::Q4_0) << t.name;
  const auto f16 = plan(bytes, "F16");  // float targets never mix
  EXPECT_EQ(find(f16, "output.weight").to, TensorType::F16);
}

TEST(QuantRecipe, TiedEmbeddingIsTreatedAsTheOutput) {
  const auto r = plan(llama_file(4, true), "Q4_K_M");
  EXPECT_EQ(find(r, "token_embd.weight").to, TensorType::Q6_K);
}

TEST(QuantRecipe, FirstFfnDownGetsQ4_1WithImatrixOnly) {
  const auto bytes = llama_file(16, false);
  ImportanceMatrix im;
  im.set("blk.0.attn_q.weight", {1, std::vector<float>(256, 1.f)});
  QuantizeOptions opt;
  opt.imatrix = &im;
  const auto r = plan(bytes, "Q4_0", opt);
  EXPECT_EQ(layers_with(r, ".ffn_down.weight", TensorType::Q4_1), (std::set<int>{0, 1}));
  EXPECT_TRUE(find(r, "blk.0.attn_q.weight").imatrix_used);
  EXPECT_FALSE(find(r, "blk.1.attn_q.weight").imatrix_used);
  EXPECT_EQ(r.n_imatrix, 1);
  EXPECT_TRUE(layers_with(plan(bytes, "Q4_0"), ".ffn_down.weight", TensorType::Q4_1).empty());
}

TEST(QuantRecipe, ImatrixOfTheWrongSizeIsAnError) {
  const auto bytes = llama_file(2, false);
  ImportanceMatrix im;
  im.set("blk.0.attn_q.weight", {1, std::vector<float>(100, 1.f)});
  QuantizeOptions opt;
  opt.imatrix = &im;
  EXPECT_THROW(plan(bytes, "Q4_0", opt), Error);
}

TEST(QuantRecipe, RowsThatDoNotFitFallBack) {
  const auto bytes = llama_file(2, false, 96);  // 96: a multiple of 32, not of 256
  const auto r = plan(bytes, "Q4_K_M");
  const auto& q = find(r, "blk.0.attn_q.weight");
  EXPECT_EQ(q.wanted, TensorType::Q4_K);
  EXPECT_EQ(q.to, TensorType::Q5_0);
  EXPECT_TRUE(q.fallback);
  EXPECT_NE(q.note.find("96"), std::string::npos);
  EXPECT_EQ(find(r, "blk.1.attn_v.weight").to, TensorType::Q8_0);  // Q6_K → Q8_0
  EXPECT_EQ(find(r, "output.weight").to, TensorType::Q8_0);        // output rule, no fallback
  EXPECT_FALSE(find(r, "output.weight").fallback);
  const auto odd = plan(llama_file(2, false, 40), "Q8_0");  // 40: no block type fits
  EXPECT_EQ(find(odd, "blk.0.attn_q.weight").to, TensorType::F16);
  EXPECT_EQ(odd.n_fallback, 8);  // token_embd, 6 block weights, output
}

TEST(QuantRecipe, OverridesReplaceTheRecipeFirstMatchWins) {
  const auto bytes = llama_file(4, false);
  QuantizeOptions opt;
  opt.overrides.push_back(parse_tensor_type_override("attn_v=q8_0"));
  opt.overrides.push_back(parse_tensor_type_override("blk\\.[0-9]+\\.attn=Q5_K"));
  const auto r = plan(bytes, "Q4_K_M", opt);
  EXPECT_EQ(find(r, "blk.2.attn_v.weight").to, TensorType::Q8_0);
  EXPECT_TRUE(find(r, "blk.2.attn_v.weight").overridden);
  EXPECT_EQ(find(r, "blk.2.attn_q.weight").to, TensorType::Q5_K);
  EXPECT_EQ(find(r, "blk.2.ffn_down.weight").to, TensorType::Q6_K);
  EXPECT_FALSE(find(r, "blk.2.ffn_down.weight").overridden);
  EXPECT_EQ(find(r, "blk.0.attn_norm.weight").to, TensorType::F32);  // never quantized
}

TEST(QuantRecipe, BadOverridesAreRejected) {
  EXPECT_THROW(parse_tensor_type_override("attn_v"), Error);
  EXPECT_THROW(parse_tensor_type_override("=Q8_0"), Error);
  EXPECT_THROW(parse_tensor_type_override("attn(=Q8_0"), Error);
  EXPECT_THROW(parse_tensor_type_override("attn=Q9_9"), Error);
  EXPECT_THROW(parse_tensor_type_override("attn=IQ2_XXS"), Error);
  EXPECT_EQ(parse_tensor_type_override("a=b=Q8_0").pattern, "a=b");
}

TEST(QuantRecipe, RequantizeIsRefusedUnlessAllowed) {
  const auto bytes = llama_file(2, false, 256, TensorType::Q4_0);
  EXPECT_THROW(plan(bytes, "Q8_0"), Error);
  QuantizeOptions allow;
  allow.allow_requantize = true;
  EXPECT_EQ(find(plan(bytes, "Q8_0", allow), "blk.0.attn_q.weight").to, TensorType::Q8_0);
  QuantizeOptions pure;
  pure.pure = true;  // already the wanted type: copied, no requantization
  EXPECT_FALSE(find(plan(bytes, "Q4_0", pure), "blk.0.attn_q.weight").quantize);
}

TEST(QuantRecipe, FileTypeNames) {
  EXPECT_EQ(parse_file_type("q4_k_m"), FileType::q4_k_m);
  EXPECT_EQ(static_cast<uint32_t>(*parse_file_type("Q8_0")), 7u);
  EXPECT_EQ(static_cast<uint32_t>(*parse_file_type("Q4_K_M")), 15u);
  EXPECT_EQ(static_cast<uint32_t>(*parse_file_type("BF16")), 32u);
  EXPECT_FALSE(parse_file_type("Q4_K").has_value());
  EXPECT_EQ(file_type_base(FileType::q5_k_s), TensorType::Q5_K);
}

}  // namespace
}  // namespace thinkmesh
