// Bad input to the engine gives a clear error: an unknown architecture (listing the supported
// ones), a missing tensor and a misshapen one (naming them), a token id out of range, a
// position past the context, a full cache, an empty prompt and one longer than the context.
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
