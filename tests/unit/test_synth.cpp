// thinkmesh synth: same seed → same bytes (whatever the thread count), another seed → other
// bytes; every decoder layout loads in Model::load and decodes to finite logits; metadata and
// shapes follow the table; the BERT layout has minilm's tensors; the vocabularies tokenize.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <set>
#include <string>

#include "thinkmesh/context.h"
#include "thinkmesh/error.h"
#include "thinkmesh/gguf.h"
#include "thinkmesh/model.h"
#include "thinkmesh/synth.h"
#include "thinkmesh/tokenizer.h"

namespace thinkmesh {
namespace {

namespace fs = std::filesystem;

fs::path temp_path(const std::string& name) {
  return fs::temp_directory_path() / ("thinkmesh_synth_" + name + ".gguf");
}

std::string read_bytes(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

synth::SynthSummary make(const std::string& like, const std::string& type, const fs::path& out,
                         uint64_t seed = 1, int32_t layers = 1, int32_t threads = 2,
                         int32_t vocab = 0) {
  synth::SynthOptions o;
  o.n_vocab = vocab;
  o.like = like;
  o.type = type;
  o.output = out.string();
  o.seed = seed;
  o.n_layer = layers;
  o.n_threads = threads;
  return synth::synthesize(o);
}

// Decodes three tokens and checks every logit of the last one is finite and they are not all
// equal.
void expect_finite_logits(const std::string& path) {
  ModelOptions mo;
  mo.load_tokenizer = false;
  const auto model = Model::load(path, mo);
  ContextOptions co;
  co.n_ctx = 16;
  co.n_threads = 2;
  Context ctx(model, co);
  Batch b;
  for (int32_t i = 0; i < 3; ++i) b.add(10 + 7 * i, i, 0, i == 2);
  ctx.decode(b);
  const auto logits = ctx.logits(2);
  ASSERT_EQ(logits.size(), static_cast<size_t>(model->info().n_vocab));
  float lo = logits[0], hi = logits[0];
  for (const float v : logits) {
    ASSERT_TRUE(std::isfinite(v)) << path;
    lo = std::min(lo, v), hi = std::max(hi, v);
  }
  EXPECT_LT(lo, hi) << path;
}

TEST(Synth, SameSeedSameBytesWhateverTheThreads) {
  const auto a = temp_path("det_a"), b = temp_path("det_b"), c = temp_path("det_c");
  make("stories15m", "Q8_0", a, 7, 1, 2);
  make("stories15m", "Q8_0", b, 7, 1, 1);
  make("stories15m", "Q8_0", c, 8, 1, 2);
  const std::string bytes_a = read_bytes(a);
  EXPECT_FALSE(bytes_a.empty());
  EXPECT_TRUE(bytes_a == read_bytes(b)) << "same seed, 1 vs 2 threads";
  const std::string bytes_c = read_bytes(c);
  ASSERT_EQ(bytes_a.size(), bytes_c.size());
  EXPECT_FALSE(bytes_a == bytes_c) << "another seed gives the same file";
  // The difference lies in the weights, not the header.
  const auto fa = gguf::File::open(a.string()), fc = gguf::File::open(c.string());
  for (const auto& t : fa.tensors()) {
    if (t.name == "rope_freqs.weight") continue;
    const auto da = fa.tensor_data(t), dc = fc.tensor_data(*fc.find_tensor(t.name));
    EXPECT_FALSE(std::equal(da.begin(), da.end(), dc.begin())) << t.name;
  }
  for (const auto& p : {a, b, c}) fs::remove(p);
}

TEST(Synth, FewerLayersKeepTheSameWeights) {
  const auto one = temp_path("layers1"), two = temp_path("layers2");
  make("stories15m", "Q4_0", one, 3, 1);
  make("stories15m", "Q4_0", two, 3, 2);
  const auto f1 = gguf::File::open(one.string()), f2 = gguf::File::open(two.string());
  EXPECT_EQ(f1.get_int("llama.block_count"), 1);
  EXPECT_EQ(f2.get_int("llama.block_count"), 2);
  EXPECT_EQ(f2.find_tensor("blk.1.ffn_up.weight") != nullptr, true);
  EXPECT_EQ(f1.find_tensor("blk.1.ffn_up.weight"), nullptr);
  for (const auto& t : f1.tensors()) {
    const auto d1 = f1.tensor_data(t), d2 = f2.tensor_data(*f2.find_tensor(t.name));
    ASSERT_EQ(d1.size(), d2.size());
    EXPECT_TRUE(std::equal(d1.begin(), d1.end(), d2.begin())) << t.name;
  }
  fs::remove(one), fs::remove(two);
}

// Metadata and tensor shapes against the table row, for every decoder.
TEST(Synth, DecodersMatchTheTableAndDecode) {
  for (const synth::ModelShape& s : synth::model_shapes()) {
    if (s.arch == "bert") continue;
    SCOPED_TRACE(std::string(s.like));
    const auto path = temp_path(std::string(s.like));
    // The big vocabularies (150k × 896, 128k × 2048) take long to draw: a smaller one there.
    const int32_t n_vocab = int64_t{s.n_vocab} * s.n_embd > 40'000'000 ? 8192 : s.n_vocab;
    const auto summary = make(std::string(s.like), "Q8_0", path, 1, 1, 2, n_vocab);
    const auto f = gguf::File::open(path.string());
    const std::string a = std::string(s.arch) + ".";
    EXPECT_EQ(f.get_string("general.architecture"), s.arch);
    EXPECT_EQ(f.get_int(a + "block_count"), 1);
    EXPECT_EQ(f.get_int(a + "embedding_length"), s.n_embd);
    EXPECT_EQ(f.get_int(a + "feed_forward_length"), s.n_ff);
    EXPECT_EQ(f.get_int(a + "attention.head_count"), s.n_head);
    EXPECT_EQ(f.get_int(a + "attention.head_count_kv"), s.n_head_kv);
    EXPECT_EQ(f.get_int(a + "context_length"), s.n_ctx);
    EXPECT_FLOAT_EQ(static_cast<float>(f.get_float(a + "rope.freq_base")), s.rope_theta);
    EXPECT_FLOAT_EQ(static_cast<float>(f.get_float(a + "attention.layer_norm_rms_epsilon")),
                    s.norm_eps);
    EXPECT_EQ(f.get_int("general.file_type"), 7);
    EXPECT_EQ(f.get_string("tokenizer.ggml.model"), "llama");
    EXPECT_EQ(f.get_string_array("tokenizer.ggml.tokens").size(), static_cast<size_t>(n_vocab));
    if (s.arch == "llama") {
      EXPECT_EQ(f.get_int("llama.vocab_size"), n_vocab);
    }
    const int64_t head_dim = s.n_embd / s.n_head;
    const auto* embd = f.find_tensor("token_embd.weight");
    ASSERT_NE(embd, nullptr);
    EXPECT_EQ(embd->ne, (std::vector<int64_t>{s.n_embd, n_vocab}));
    EXPECT_EQ(embd->type, TensorType::Q8_0);
    EXPECT_EQ(f.find_tensor("output.weight") == nullptr, s.tied_embeddings);
    EXPECT_EQ(f.find_tensor("blk.0.attn_k.weight")->ne,
              (std::vector<int64_t>{s.n_embd, head_dim * s.n_head_kv}));
    EXPECT_EQ(f.find_tensor("blk.0.ffn_down.weight")->ne, (std::vector<int64_t>{s.n_ff, s.n_embd}));
    EXPECT_EQ(f.find_tensor("blk.0.attn_q.bias") != nullptr, s.qkv_bias);
    EXPECT_EQ(f.find_tensor("blk.0.attn_norm.weight")->type, TensorType::F32);
    const auto* rope = f.find_tensor("rope_freqs.weight");
    EXPECT_EQ(rope != nullptr, s.llama3_rope_factor > 0);
    if (rope) {
      EXPECT_EQ(rope->ne, (std::vector<int64_t>{head_dim / 2}));
      const auto* v = reinterpret_cast<const float*>(f.tensor_data(*rope).data());
      EXPECT_FLOAT_EQ(v[0], 1.0f);                                 // high frequencies unscaled
      EXPECT_FLOAT_EQ(v[head_dim / 2 - 1], s.llama3_rope_factor);  // low ones × factor
    }
    EXPECT_EQ(summary.file_bytes, fs::file_size(path));
    expect_finite_logits(path.string());
    fs::remove(path);
  }
}

TEST(Synth, EveryTypeLoadsAndDecodes) {
  for (const char* type : {"F32", "F16", "BF16", "Q4_0", "Q4_K", "Q6_K", "Q4_K_M"}) {
    SCOPED_TRACE(type);
    const auto path = temp_path(std::string("type_") + type);
    make("stories15m", type, path, 1, 1);
    const auto f = gguf::File::open(path.string());
    // stories15m rows of 288 are no whole k-quant block: llama.cpp's fallbacks apply.
    const TensorType up = f.find_tensor("blk.0.ffn_up.weight")->type;
    const TensorType down = f.find_tensor("blk.0.ffn_down.weight")->type;  // rows of 768
    const std::string t = type;
    if (t == "Q4_K") {
      EXPECT_EQ(up, TensorType::Q5_0);
      EXPECT_EQ(down, TensorType::Q4_K);
    }
    if (t == "Q6_K") {
      EXPECT_EQ(up, TensorType::Q8_0);
      EXPECT_EQ(down, TensorType::Q6_K);
    }
    if (t == "Q4_K_M") {
      // One layer: it is the last eighth, so attn_v and ffn_down get more bits.
      EXPECT_EQ(up, TensorType::Q5_0);
      EXPECT_EQ(down, TensorType::Q6_K);
      EXPECT_EQ(f.find_tensor("output.weight")->type, TensorType::Q8_0);  // 288 % 256 != 0
      EXPECT_EQ(f.get_int("general.file_type"), 15);
    }
    if (t == "F16" || t == "BF16" || t == "F32" || t == "Q4_0") {
      EXPECT_EQ(name(up), t);
    }
    expect_finite_logits(path.string());
    fs::remove(path);
  }
}

TEST(Synth, SyntheticSentencePieceVocabularyTokenizes) {
  const auto path = temp_path("spm_vocab");
  make("stories15m", "Q4_0", path, 1, 1);
  const auto model = Model::load(path.string());
  const Tokenizer& tok = model->tokenizer();
  EXPECT_EQ(tok.vocab_size(), 32000u);
  TokenizeOptions plain;
  plain.add_special = false;
  for (const std::string text : {"hello world",
                                 "Zebra 42 \xC3\xBC"
                                 "n\xC3\xAF"
                                 "code\n"}) {
    const auto ids = tok.tokenize(text, plain);
    EXPECT_FALSE(ids.empty());
    EXPECT_EQ(tok.detokenize(ids), text);
  }
  // Lowercase words merge into pieces longer than one character.
  EXPECT_LT(tok.tokenize("the cat sat", plain).size(), 11u);
  fs::remove(path);
}

TEST(Synth, BertHasMiniLmTensorsAndAWordPieceVocabulary) {
  const auto path = temp_path("minilm");
  const auto summary = make("minilm-l6", "F16", path, 1, 0);  // all 6 layers
  const auto f = gguf::File::open(path.string());
  EXPECT_EQ(f.get_string("general.architecture"), "bert");
  EXPECT_EQ(f.get_int("bert.block_count"), 6);
  EXPECT_EQ(f.get_int("bert.context_length"), 512);
  EXPECT_EQ(f.get_int("bert.pooling_type"), 1);
  EXPECT_FALSE(f.get_bool_or("bert.attention.causal", true));
  EXPECT_EQ(f.get_string("tokenizer.ggml.model"), "bert");
  EXPECT_EQ(f.tensors().size(), 5u + 6u * 16u);
  EXPECT_EQ(f.find_tensor("position_embd.weight")->ne, (std::vector<int64_t>{384, 512}));
  EXPECT_EQ(f.find_tensor("position_embd.weight")->type, TensorType::F32);
  EXPECT_EQ(f.find_tensor("token_types.weight")->type, TensorType::F32);
  EXPECT_EQ(f.find_tensor("token_embd.weight")->type, TensorType::F16);
  EXPECT_EQ(f.find_tensor("blk.5.ffn_up.weight")->ne, (std::vector<int64_t>{384, 1536}));
  EXPECT_EQ(summary.n_params, 22565376u);  // all-MiniLM-L6-v2's parameter count
  EXPECT_EQ(f.get_string("general.size_label"), "23M");
  const auto tok = Tokenizer::from_gguf(f);
  EXPECT_EQ(tok->vocab_size(), 30522u);
  const auto ids = tok->tokenize("hello, world!");
  ASSERT_GE(ids.size(), 3u);
  EXPECT_EQ(ids.front(), 101);  // [CLS]
  EXPECT_EQ(ids.back(), 102);   // [SEP]
  for (const auto id : ids) EXPECT_NE(id, 100) << "[UNK] in a plain ASCII text";
  fs::remove(path);
}

TEST(Synth, QuantMixFollowsLlamaCpp) {
  // A 24-layer model: more bits in layers 0-2, 21-23 and every third from 5.
  std::set<int32_t> more;
  for (int32_t i = 0; i < 24; ++i) {
    if (synth::tensor_type_for("Q4_K_M", "blk.x.attn_v.weight", {1024, 256}, i, 0, 24, true) ==
        TensorType::Q6_K)
      more.insert(i);
  }
  EXPECT_EQ(more, (std::set<int32_t>{0, 1, 2, 5, 8, 11, 14, 17, 20, 21, 22, 23}));
  EXPECT_EQ(synth::tensor_type_for("Q4_K_M", "token_embd.weight", {1024, 9}, 0, 0, 24, false),
            TensorType::Q6_K);  // tied: stands for the output
  EXPECT_EQ(synth::tensor_type_for("Q4_K_M", "token_embd.weight", {1024, 9}, 0, 0, 24, true),
            TensorType::Q4_K);
  EXPECT_EQ(synth::tensor_type_for("Q4_K_M", "token_embd.weight", {896, 9}, 0, 0, 24, false),
            TensorType::Q8_0);
  EXPECT_EQ(synth::tensor_type_for("Q4_K_M", "blk.0.ffn_up.weight", {896, 9}, 0, 0, 24, true),
            TensorType::Q5_0);
  EXPECT_EQ(synth::tensor_type_for("q8_0", "blk.0.attn_norm.weight", {896}, 0, 0, 24, true),
            TensorType::F32);
  EXPECT_THROW(synth::tensor_type_for("Q3_K_S", "a.weight", {256, 1}, 0, 0, 1, true), Error);
}

TEST(Synth, SizeLabelsAsGgufPy) {
  EXPECT_EQ(synth::size_label(494032768), "494M");
  EXPECT_EQ(synth::size_label(1235814400), "1.2B");
  EXPECT_EQ(synth::size_label(19532032), "20M");
  EXPECT_EQ(synth::size_label(260000), "260K");
}

TEST(Synth, BadRequestsAreErrors) {
  const auto path = temp_path("bad");
  EXPECT_THROW(make("gpt-5", "Q8_0", path), Error);
  EXPECT_THROW(make("stories15m", "IQ2_XXS", path), Error);
  EXPECT_THROW(make("stories15m", "Q8_0", path, 1, 5000), Error);
  synth::SynthOptions o;
  o.like = "stories15m";
  o.output = path.string();
  o.vocab_from = "/nonexistent/vocab.gguf";
  EXPECT_THROW(synth::synthesize(o), Error);
  o.vocab_from.clear();
  o.n_vocab = 100;  // too small for the 259 fixed tokens and placeholders
  EXPECT_THROW(synth::synthesize(o), Error);
  EXPECT_FALSE(fs::exists(path));
}

}  // namespace
}  // namespace thinkmesh
