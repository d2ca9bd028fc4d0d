// Bad input to the engine gives a clear error: an unknown architecture (listing the supported
// ones), a missing tensor and a misshapen one (naming them), a token id out of range, a
// position past the context, a full cache, an empty prompt and one longer than the context.
// And what must not be an error: a tokenizer family we lack (the weights still decode ids) and
// head counts written as per-layer arrays of one value.
#include <gtest/gtest.h>

#include <filesystem>

#include "support/fixtures.h"
#include "thinkmesh/context.h"
#include "thinkmesh/error.h"
#include "thinkmesh/generate.h"
#include "thinkmesh/gguf.h"
#include "thinkmesh/model.h"

namespace thinkmesh {
namespace {

constexpr const char* kModel = "models/stories260K/stories260K.gguf";

// Rewrites stories260K with `edit` applied to a Writer copy; returns the new file's path.
std::string rewritten(const std::string& name,
                      const std::function<void(gguf::Writer&, const gguf::File&)>& edit) {
  const auto f = gguf::File::open(test::fixture(kModel).string());
  gguf::Writer w(f.version(), static_cast<uint32_t>(f.alignment()));
  for (const auto& kv : f.metadata()) w.set(kv.key, kv.value);
  edit(w, f);
  const auto path = std::filesystem::temp_directory_path() / ("thinkmesh_errors_" + name + ".gguf");
  w.write(path.string());
  return path.string();
}

std::string load_error(const std::string& path) {
  try {
    Model::load(path);
  } catch (const Error& e) {
    return e.what();
  }
  return "no error";
}

void add_all_but(gguf::Writer& w, const gguf::File& f, const std::string& skip) {
  for (const auto& t : f.tensors()) {
    if (t.name != skip) w.add_tensor(t.name, t.type, t.ne, f.tensor_data(t));
  }
}

TEST(ModelErrors, UnknownArchitectureListsTheSupportedOnes) {
  THINKMESH_REQUIRE_FIXTURE(kModel);
  const auto path = rewritten("arch", [](gguf::Writer& w, const gguf::File& f) {
    w.set("general.architecture", gguf::Value::string("mamba9"));
    add_all_but(w, f, "");
  });
  const std::string e = load_error(path);
  EXPECT_NE(e.find("'mamba9'"), std::string::npos) << e;
  EXPECT_NE(e.find("llama, qwen2"), std::string::npos) << e;
  std::filesystem::remove(path);
}

TEST(ModelErrors, MissingTensorIsNamed) {
  THINKMESH_REQUIRE_FIXTURE(kModel);
  const auto path = rewritten("missing", [](gguf::Writer& w, const gguf::File& f) {
    add_all_but(w, f, "blk.3.ffn_up.weight");
  });
  const std::string e = load_error(path);
  EXPECT_NE(e.find("'blk.3.ffn_up.weight' is missing"), std::string::npos) << e;
  EXPECT_NE(e.find("[64, 172]"), std::string::npos) << e;  // the expected shape
  std::filesystem::remove(path);
}

TEST(ModelErrors, MisshapenTensorIsNamed) {
  THINKMESH_REQUIRE_FIXTURE(kModel);
  const auto path = rewritten("shape", [](gguf::Writer& w, const gguf::File& f) {
    for (const auto& t : f.tensors()) {
      if (t.name == "blk.0.attn_norm.weight") {
        const auto data = f.tensor_data(t);
        w.add_tensor(t.name, t.type, {32}, data.subspan(0, 128));
      } else {
        w.add_tensor(t.name, t.type, t.ne, f.tensor_data(t));
      }
    }
  });
  const std::string e = load_error(path);
  EXPECT_NE(e.find("'blk.0.attn_norm.weight' has shape [32], expected [64]"), std::string::npos)
      << e;
  std::filesystem::remove(path);
}

// The logits of a short prompt, one row per position (for comparing a rewritten file).
std::vector<float> prompt_logits(const std::shared_ptr<const Model>& m) {
  ContextOptions o;
  o.n_ctx = 16;
  o.n_threads = 1;
  Context ctx(m, o);
  Batch b;
  const std::vector<TokenId> ids = {1, 403, 407, 261, 378};
  for (size_t i = 0; i < ids.size(); ++i) b.add(ids[i], static_cast<int32_t>(i), 0, true);
  ctx.decode(b);
  std::vector<float> out;
  for (size_t i = 0; i < ids.size(); ++i) {
    const auto row = ctx.logits(static_cast<int32_t>(i));
    out.insert(out.end(), row.begin(), row.end());
  }
  return out;
}

TEST(ModelErrors, UnsupportedTokenizerFamilyIsReportedWhenTheTokenizerIsAsked) {
  THINKMESH_REQUIRE_FIXTURE(kModel);
  const auto path = rewritten("tokenizer", [](gguf::Writer& w, const gguf::File& f) {
    w.set("tokenizer.ggml.model", gguf::Value::string("rwkv9"));
    add_all_but(w, f, "");
  });
  const auto m = Model::load(path);  // the weights load without the tokenizer
  EXPECT_FALSE(m->has_tokenizer());
  try {
    m->tokenizer();
    FAIL() << "tokenizer() returned for an unsupported family";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::unsupported);
    EXPECT_NE(std::string(e.what()).find("'rwkv9'"), std::string::npos) << e.what();
  }
  const auto original = Model::load(test::fixture(kModel).string());
  EXPECT_TRUE(original->has_tokenizer());
  EXPECT_EQ(prompt_logits(m), prompt_logits(original));  // same weights, same arithmetic
  std::filesystem::remove(path);
}

TEST(ModelErrors, HeadCountArraysMustHoldOneValue) {
  THINKMESH_REQUIRE_FIXTURE(kModel);
  const auto original = Model::load(test::fixture(kModel).string());
  const ModelInfo& info = original->info();
  const auto n_layer = static_cast<size_t>(info.n_layer);
  // Uniform arrays (as some converters write them) mean the scalar.
  const auto uniform = rewritten("heads_uniform", [&](gguf::Writer& w, const gguf::File& f) {
    w.set("llama.attention.head_count",
          gguf::Value::i32_array(std::vector<int32_t>(n_layer, info.n_head)));
    w.set("llama.attention.head_count_kv",
          gguf::Value::i32_array(std::vector<int32_t>(n_layer, info.n_head_kv)));
    add_all_but(w, f, "");
  });
  const auto m = Model::load(uniform);
  EXPECT_EQ(m->info().n_head, info.n_head);
  EXPECT_EQ(m->info().n_head_kv, info.n_head_kv);
  EXPECT_EQ(prompt_logits(m), prompt_logits(original));
  std::filesystem::remove(uniform);
  // Counts that differ between layers need a KV cache of per-layer widths: refused, named.
  const auto mixed = rewritten("heads_mixed", [&](gguf::Writer& w, const gguf::File& f) {
    std::vector<int32_t> kv(n_layer, info.n_head_kv);
    kv.back() = info.n_head;
    w.set("llama.attention.head_count_kv", gguf::Value::i32_array(kv));
    add_all_but(w, f, "");
  });
  try {
    Model::load(mixed);
    FAIL() << "differing per-layer head counts accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::unsupported);
    EXPECT_NE(std::string(e.what()).find("llama.attention.head_count_kv differs between layers"),
              std::string::npos)
        << e.what();
  }
  std::filesystem::remove(mixed);
}

TEST(ModelErrors, DecodeRejectsBadTokensPositionsAndAFullCache) {
  THINKMESH_REQUIRE_FIXTURE(kModel);
  const auto m = Model::load(test::fixture(kModel).string());
  ContextOptions o;
  o.n_ctx = 8;
  o.n_threads = 1;
  Context ctx(m, o);
  auto error_of = [&](const Batch& b) -> std::pair<ErrorKind, std::string> {
    try {
      ctx.decode(b);
    } catch (const Error& e) {
      return {e.kind(), e.what()};
    }
    return {ErrorKind::internal, "no error"};
  };
  Batch b;
  b.add(512, 0, 0, true);  // vocabulary is 512
  auto [kind, what] = error_of(b);
  EXPECT_EQ(kind, ErrorKind::invalid_argument);
  EXPECT_NE(what.find("token id 512"), std::string::npos) << what;
  b.clear();
  b.add(1, 8, 0, true);
  std::tie(kind, what) = error_of(b);
  EXPECT_EQ(kind, ErrorKind::out_of_range);
  EXPECT_NE(what.find("position 8"), std::string::npos) << what;
  b.clear();
  b.add(1, 0, 99, true);
  std::tie(kind, what) = error_of(b);
  EXPECT_EQ(kind, ErrorKind::invalid_argument);
  b.clear();
  for (int i = 0; i < 8; ++i) b.add(1, i, 0, false);
  ctx.decode(b);  // fills the cache
  b.clear();
  b.add(1, 7, 1, true);
  std::tie(kind, what) = error_of(b);
  EXPECT_EQ(kind, ErrorKind::out_of_range);
  EXPECT_NE(what.find("KV cache is full"), std::string::npos) << what;
  EXPECT_EQ(ctx.seq_pos_max(0), 7);  // what was stored is kept
}

TEST(ModelErrors, GeneratorRejectsEmptyAndOverlongPrompts) {
  THINKMESH_REQUIRE_FIXTURE(kModel);
  const auto m = Model::load(test::fixture(kModel).string());
  ContextOptions o;
  o.n_ctx = 16;
  o.n_threads = 1;
  Context ctx(m, o);
  Generator gen(ctx, m->tokenizer());
  try {
    gen.generate({}, {});
    FAIL() << "empty prompt accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::invalid_argument);
    EXPECT_NE(std::string(e.what()).find("empty"), std::string::npos);
  }
  const std::vector<TokenId> long_prompt(17, 300);
  try {
    gen.generate(long_prompt, {});
    FAIL() << "overlong prompt accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::out_of_range);
    EXPECT_NE(std::string(e.what()).find("17 tokens"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace thinkmesh
