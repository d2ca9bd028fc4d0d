// Logits of the decoder against llama.cpp c392e50's goldens (fixtures/golden/logits/*.json):
// every prompt decoded as one batch with an F16 KV cache, compared with MANIFEST §3's suggested
// tolerances in units of σ (the std of the golden logits):
//   F32 weights  max ≤ 1e-3σ, mean ≤ 1e-4σ;  F16  max ≤ 1e-2σ, mean ≤ 1e-3σ;
//   quantized    max ≤ 0.15σ, mean ≤ 0.02σ.
// Layout "full" stores every position's row; "last2_top64" stores the last two rows in full and
// the top-64 (id, logit) pairs of every position, which are compared too.
// The measured ratios are printed so they can be reported.
#include <gtest/gtest.h>

#include <unistd.h>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>

#include <nlohmann/json.hpp>

#include "support/fixtures.h"
#include "support/sha256.h"
#include "thinkmesh/context.h"
#include "thinkmesh/gguf.h"
#include "thinkmesh/model.h"
#include "thinkmesh/tensor_type.h"

namespace thinkmesh {
namespace {

namespace fs = std::filesystem;

std::vector<std::string> sidecars() {
  std::vector<std::string> out;
  const fs::path dir = test::fixture("fixtures/golden/logits");
  if (!fs::exists(dir)) return out;
  for (const auto& e : fs::directory_iterator(dir)) {
    if (e.path().extension() == ".json") out.push_back(e.path().filename().string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::string file_sha256(const fs::path& path) {
  static std::map<std::string, std::string> cache;  // the same model serves four prompts
  auto [it, inserted] = cache.try_emplace(path.string());
  if (inserted) it->second = test::sha256_hex(test::read_file(path));
  return it->second;
}

// Files this process writes (the rebuilt F32 master), removed when the tests end.
struct TempFiles {
  std::map<std::string, fs::path> by_name;
  ~TempFiles() {
    std::error_code ec;
    for (const auto& [name, path] : by_name) fs::remove(path, ec);
  }
};
TempFiles& temp_files() {
  static TempFiles files;
  return files;
}

// MANIFEST §1.0: the synthetic models' F32 masters hold exactly their F16 file's values upcast
// (weights were drawn in F32 and rounded to F16 precision; the norms are F32 in both). Rebuilds
// the master from the F16 file: same metadata with general.file_type = 0 (ALL_F32), every F16
// tensor widened to F32, the others copied.
fs::path rebuild_f32_master(const fs::path& f16_path, const std::string& name) {
  auto& files = temp_files().by_name;
  if (auto it = files.find(name); it != files.end()) return it->second;
  const gguf::File src = gguf::File::open(f16_path.string());
  gguf::Writer writer(src.version(), static_cast<uint32_t>(src.alignment()));
  for (const auto& kv : src.metadata()) writer.set(kv.key, kv.value);
  if (src.find("general.file_type") != nullptr)
    writer.set("general.file_type", gguf::Value::u32(0));
  for (const auto& t : src.tensors()) {
    const auto bytes = src.tensor_data(t);
    if (t.type != TensorType::F16) {
      writer.add_tensor(t.name, t.type, t.ne, bytes);
      continue;
    }
    const int64_t n = t.n_elements();
    std::vector<uint8_t> wide(static_cast<size_t>(n) * sizeof(float));
    dequantize_row(TensorType::F16, bytes.data(), reinterpret_cast<float*>(wide.data()), n);
    writer.add_tensor(t.name, TensorType::F32, t.ne, std::move(wide));
  }
  const fs::path out =
      fs::temp_directory_path() / ("thinkmesh-" + std::to_string(getpid()) + "-" + name);
  writer.write(out.string());
  files.emplace(name, out);
  return out;
}

// Where the sidecar's model is on this machine: the path it names; else, for a path in the
// unshipped fixtures-overflow/ folder, a shipped copy in fixtures/models with the same sha256
// (tiny-llama-spm-Q8_0 was added there after the manifest) or, for an F32 master, the master
// rebuilt from the shipped F16 file. Empty when none applies; `note` says which was used.
fs::path resolve_model(const nlohmann::json& sidecar, std::string& note) {
  const std::string rel = sidecar.at("model");
  if (fs::exists(test::fixture(rel))) return test::fixture(rel);
  const std::string file = fs::path(rel).filename().string();
  const std::string sha = sidecar.at("model_sha256");
  const fs::path shipped = test::fixture("fixtures/models/" + file);
  if (fs::exists(shipped) && file_sha256(shipped) == sha) {
    note = "shipped copy with the sidecar's sha256";
    return shipped;
  }
  const std::string suffix = "-F32.gguf";
  if (file.size() > suffix.size() && file.ends_with(suffix)) {
    const std::string f16_name = file.substr(0, file.size() - suffix.size()) + "-F16.gguf";
    const fs::path f16 = test::fixture("fixtures/models/" + f16_name);
    if (fs::exists(f16)) {
      const fs::path master = rebuild_f32_master(f16, file);
      note = "rebuilt from " + f16_name +
             (file_sha256(master) == sha
                  ? " (byte-identical: sha256 matches the sidecar)"
                  : " (same values per MANIFEST §1.0; its bytes differ from the sidecar sha256)");
      return master;
    }
  }
  return {};
}

struct Deviation {
  double max_abs = 0, sum_abs = 0;
  size_t n = 0;
  void add(double d) {
    max_abs = std::max(max_abs, d);
    sum_abs += d;
    ++n;
  }
};

class LogitsGolden : public ::testing::TestWithParam<std::string> {};

TEST_P(LogitsGolden, MatchesLlamaCppWithinManifestTolerance) {
  THINKMESH_SKIP_UNSUPPORTED_ISA();
  const std::string side = "fixtures/golden/logits/" + GetParam();
  THINKMESH_REQUIRE_FIXTURE(side);
  std::ifstream in(test::fixture(side));
  const auto j = nlohmann::json::parse(in);
  std::string note;
  const fs::path model_path = resolve_model(j, note);
  if (model_path.empty()) {
    // Only the fixtures-overflow/ models that nothing here can stand in for.
    GTEST_SKIP() << j.at("model").get<std::string>() << " is not shipped with the fixtures";
  }
  const auto model = Model::load(model_path.string(), {.load_tokenizer = false});
  const auto ids = j.at("prompt_ids").get<std::vector<TokenId>>();
  ContextOptions o;
  o.n_ctx = 512;
  o.n_threads = 2;
  Context ctx(model, o);
  Batch batch;
  for (size_t i = 0; i < ids.size(); ++i) batch.add(ids[i], static_cast<int32_t>(i), 0, true);
  ctx.decode(batch);

  const std::string bin =
      test::read_file(test::fixture("fixtures/golden/logits/" + j.at("bin").get<std::string>()));
  const auto n_vocab = j.at("n_vocab").get<size_t>();
  const auto positions = j.at("bin_positions").get<std::vector<int32_t>>();
  ASSERT_EQ(bin.size(), positions.size() * n_vocab * sizeof(float));
  const auto* gold = reinterpret_cast<const float*>(bin.data());
  ASSERT_EQ(static_cast<size_t>(model->info().n_vocab), n_vocab);

  // Full rows: every logit of the stored positions.
  double sum = 0, sum2 = 0;
  Deviation rows;
  for (size_t k = 0; k < positions.size(); ++k) {
    const auto ours = ctx.logits(positions[k]);
    for (size_t i = 0; i < n_vocab; ++i) {
      const double g = gold[k * n_vocab + i];
      sum += g;
      sum2 += g * g;
      rows.add(std::fabs(ours[i] - g));
    }
  }
  const double count = static_cast<double>(rows.n);
  const double sigma = std::sqrt(sum2 / count - (sum / count) * (sum / count));
  ASSERT_GT(sigma, 0.0);

  // Top-64 pairs of every position (layout last2_top64): the golden value at each listed id.
  Deviation top;
  if (j.contains("topk")) {
    const auto& topk = j.at("topk");
    ASSERT_EQ(topk.size(), ids.size());
    for (size_t p = 0; p < topk.size(); ++p) {
      const auto ours = ctx.logits(static_cast<int32_t>(p));
      for (const auto& pair : topk[p]) {
        const auto id = pair.at(0).get<size_t>();
        ASSERT_LT(id, n_vocab);
        top.add(std::fabs(ours[id] - static_cast<double>(pair.at(1).get<float>())));
      }
    }
  }

  const std::string type = model->info().weight_type;
  double max_tol = 0.15, mean_tol = 0.02;
  if (type == "F32") max_tol = 1e-3, mean_tol = 1e-4;
  if (type == "F16") max_tol = 1e-2, mean_tol = 1e-3;
  const double max_ratio = std::max(rows.max_abs, top.max_abs) / sigma;
  const double mean_ratio = rows.sum_abs / count / sigma;
  std::printf(
      "%-30s %-5s sigma %.3f  max %.3e sigma (abs %.2e, tol %.0e)  mean %.3e sigma (tol %.0e)",
      GetParam().c_str(), type.c_str(), sigma, max_ratio, std::max(rows.max_abs, top.max_abs),
      max_tol, mean_ratio, mean_tol);
  if (top.n > 0)
    std::printf("  top64 of %zu positions: max %.3e sigma", ids.size(), top.max_abs / sigma);
  if (!note.empty()) std::printf("  [model: %s]", note.c_str());
  std::printf("\n");
  EXPECT_LE(max_ratio, max_tol);
  EXPECT_LE(mean_ratio, mean_tol);
}

INSTANTIATE_TEST_SUITE_P(Golden, LogitsGolden, ::testing::ValuesIn(sidecars()), [](const auto& p) {
  std::string s = p.param.substr(0, p.param.size() - 5);
  for (char& c : s) c = std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
  return s;
});

}  // namespace
}  // namespace thinkmesh
