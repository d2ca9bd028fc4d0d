// thinkmesh_eval (include/thinkmesh/evaluate.h) and `thinkmesh eval`:
//  * a model against itself has KLD 0, top-1 agreement 1, ΔPPL 0;
//  * PPL equals exp(mean NLL) computed here by hand from Context logits with the chunk scheme;
//  * errors: text too short, context above the model's, different vocabularies;
//  * the CLI's --json has the documented fields, and --max-kld / --min-top1 exit non-zero;
//  * llama-perplexity's figures (golden/quant-error.json: tiny-llama-spm F16, Q4_0, Q4_K_M
//    against the F32 master on GPL-3 at ctx 512) are reproduced on the first 2 chunks within
//    bounds derived from the golden's per-token spread (the full 17-chunk run is documented
//    in docs/evaluation.md).
#include <gtest/gtest.h>

#include <unistd.h>
#include <array>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>

#include <nlohmann/json.hpp>

#include "support/fixtures.h"
#include "thinkmesh/context.h"
#include "thinkmesh/error.h"
#include "thinkmesh/evaluate.h"
#include "thinkmesh/gguf.h"
#include "thinkmesh/model.h"
#include "thinkmesh/tensor_type.h"

namespace thinkmesh {
namespace {

namespace fs = std::filesystem;

const char* kStories = "models/stories260K/stories260K.gguf";
const char* kStoriesQ4 = "models/stories260K/llamacpp-quantized/stories260K-q4_0-mix.gguf";
const char* kStoriesText = "eval/stories.txt";

std::string text_of(const std::string& rel) {
  return test::read_file(test::fixture(rel));
}

std::shared_ptr<const Model> load(const std::string& rel) {
  return Model::load(test::fixture(rel).string());
}

TEST(Evaluate, ModelAgainstItselfIsExact) {
  THINKMESH_REQUIRE_FIXTURE(kStories);
  THINKMESH_REQUIRE_FIXTURE(kStoriesText);
  const auto m = load(kStories);
  EvalOptions o;
  o.n_ctx = 64;
  o.n_chunks = 3;
  o.n_threads = 2;
  const EvalReport r = evaluate(*m, *m, text_of(kStoriesText), o);
  EXPECT_EQ(r.n_tokens, 3 * (64 - 1 - 32));
  EXPECT_EQ(r.n_chunks, 3);
  EXPECT_NEAR(r.kld_mean.value, 0.0, 1e-12);
  EXPECT_NEAR(r.kld_max, 0.0, 1e-12);
  EXPECT_DOUBLE_EQ(r.top1_agreement.value, 1.0);
  EXPECT_DOUBLE_EQ(r.delta_ppl.value, 0.0);
  EXPECT_DOUBLE_EQ(r.rms_dp.value, 0.0);
  EXPECT_NEAR(r.cor_ln_ppl, 1.0, 1e-9);
  EXPECT_DOUBLE_EQ(r.base.ppl.value, r.candidate.ppl.value);
  EXPECT_GT(r.base.ppl.value, 1.0);
  EXPECT_LT(r.base.ppl.value, 512.0);  // a trained model beats uniform over its 512 tokens
}

// PPL by hand: chunks of n_ctx tokens, BOS first, logits of positions n_ctx/2 .. n_ctx-2
// scoring the next token; exp of the mean NLL over all chunks.
TEST(Evaluate, PerplexityMatchesAHandComputedValue) {
  THINKMESH_REQUIRE_FIXTURE(kStories);
  THINKMESH_REQUIRE_FIXTURE(kStoriesText);
  const auto m = load(kStories);
  const std::string text = text_of(kStoriesText).substr(0, 400);
  const std::vector<TokenId> ids = m->tokenizer().tokenize(text);
  ASSERT_EQ(ids.front(), 1);  // stories' vocabulary adds BOS
  const int n_ctx = 16;
  ASSERT_GE(ids.size(), 2u * n_ctx);
  const int n_chunks = static_cast<int>(ids.size()) / n_ctx;

  ContextOptions co;
  co.n_ctx = n_ctx;
  co.n_threads = 1;
  Context ctx(m, co);
  double nll = 0;
  int count = 0;
  for (int c = 0; c < n_chunks; ++c) {
    ctx.clear();
    Batch b;
    for (int k = 0; k < n_ctx; ++k) b.add(k == 0 ? 1 : ids[c * n_ctx + k], k, 0, true);
    ctx.decode(b);
    for (int pos = n_ctx / 2; pos < n_ctx - 1; ++pos) {
      const auto l = ctx.logits(pos);
      double z = 0;
      for (const float v : l) z += std::exp(static_cast<double>(v));
      nll += std::log(z) - l[static_cast<size_t>(ids[c * n_ctx + pos + 1])];
      ++count;
    }
  }
  const double expected = std::exp(nll / count);

  EvalOptions o;
  o.n_ctx = n_ctx;
  o.n_threads = 2;
  const PerplexityReport r = perplexity(*m, text, o);
  EXPECT_EQ(r.n_tokens, count);
  EXPECT_EQ(r.n_chunks, n_chunks);
  EXPECT_EQ(r.n_text_tokens, static_cast<int64_t>(ids.size()));
  EXPECT_NEAR(r.ppl.value, expected, 1e-6 * expected);
  EXPECT_GT(r.ppl.uncertainty, 0.0);
}

TEST(Evaluate, ClearErrors) {
  THINKMESH_REQUIRE_FIXTURE(kStories);
  THINKMESH_REQUIRE_FIXTURE("fixtures/models/tiny-llama-spm-Q4_0.gguf");
  const auto m = load(kStories);
  EvalOptions o;
  o.n_ctx = 64;
  auto kind_of = [](auto&& f) {
    try {
      f();
    } catch (const Error& e) {
      std::printf("  %s\n", e.what());
      return e.kind();
    }
    return ErrorKind::internal;
  };
  // 2 x 64 tokens needed; "Once upon a time" has a handful.
  EXPECT_EQ(kind_of([&] { perplexity(*m, "Once upon a time", o); }), ErrorKind::invalid_argument);
  o.n_ctx = 4096;  // stories260K's context_length is 2048
  EXPECT_EQ(kind_of([&] { perplexity(*m, text_of(kStoriesText), o); }), ErrorKind::out_of_range);
  o.n_ctx = 64;
  const auto other = load("fixtures/models/tiny-llama-spm-Q4_0.gguf");
  EXPECT_EQ(kind_of([&] { evaluate(*other, *m, text_of(kStoriesText), o); }),
            ErrorKind::invalid_argument);
}

TEST(Evaluate, BudgetFailuresNameTheBudget) {
  EvalReport r;
  r.kld_mean.value = 0.02;
  r.top1_agreement.value = 0.8;
  EXPECT_TRUE(budget_failures(r, {}).empty());
  EXPECT_TRUE(budget_failures(r, {.max_kld = 0.05, .min_top1 = 0.75}).empty());
  const auto f = budget_failures(r, {.max_kld = 0.01, .min_top1 = 0.9});
  ASSERT_EQ(f.size(), 2u);
  EXPECT_NE(f[0].find("KLD"), std::string::npos);
  EXPECT_NE(f[1].find("top-1"), std::string::npos);
}

struct CliResult {
  int status;
  std::string out;
};

CliResult run_cli(const std::string& args) {
  const std::string cmd = test::thinkmesh_binary().string() + " " + args;
  std::unique_ptr<FILE, int (*)(FILE*)> pipe(popen(cmd.c_str(), "r"), pclose);
  CliResult r{-1, ""};
  std::array<char, 4096> buf{};
  for (size_t n; (n = fread(buf.data(), 1, buf.size(), pipe.get())) > 0;)
    r.out.append(buf.data(), n);
  r.status = pclose(pipe.release());
  return r;
}

TEST(CliEval, JsonFieldsAndBudgets) {
  THINKMESH_REQUIRE_FIXTURE(kStories);
  THINKMESH_REQUIRE_FIXTURE(kStoriesQ4);
  const std::string base = test::fixture(kStories).string();
  const std::string cand = test::fixture(kStoriesQ4).string();
  const std::string text = test::fixture(kStoriesText).string();
  const std::string common = " -f " + text + " --ctx 128 --chunks 3 -t 2 --json";

  const CliResult ok = run_cli("eval -m " + cand + " --base " + base + common);
  ASSERT_EQ(ok.status, 0) << ok.out;
  const auto j = nlohmann::json::parse(ok.out);
  for (const char* k : {"ppl_base", "ppl", "delta_ppl", "kld_mean", "kld_p99", "top1_agreement",
                        "rms_dp", "n_tokens", "kld_median", "kld_max", "ppl_ratio"})
    EXPECT_TRUE(j.contains(k)) << k;
  EXPECT_EQ(j["n_tokens"].get<int>(), 3 * (128 - 1 - 64));
  EXPECT_NEAR(j["delta_ppl"].get<double>(), j["ppl"].get<double>() - j["ppl_base"].get<double>(),
              1e-9);
  EXPECT_GT(j["kld_mean"].get<double>(), 0.0);
  EXPECT_LE(j["kld_median"].get<double>(), j["kld_p99"].get<double>());
  EXPECT_LE(j["kld_p99"].get<double>(), j["kld_max"].get<double>());
  EXPECT_GT(j["top1_agreement"].get<double>(), 0.5);
  EXPECT_LT(j["top1_agreement"].get<double>(), 1.0);
  const double kld = j["kld_mean"].get<double>();
  const double top1 = j["top1_agreement"].get<double>();

  // Budgets: met → 0; exceeded → non-zero (the JSON still printed, with the failure listed).
  EXPECT_EQ(run_cli("eval -m " + cand + " --base " + base + common + " --max-kld " +
                    std::to_string(kld * 2) + " --min-top1 " + std::to_string(top1 / 2))
                .status,
            0);
  const CliResult over = run_cli("eval -m " + cand + " --base " + base + common + " --max-kld " +
                                 std::to_string(kld / 2));
  EXPECT_NE(over.status, 0);
  EXPECT_EQ(nlohmann::json::parse(over.out)["budget_failures"].size(), 1u);
  EXPECT_NE(run_cli("eval -m " + cand + " --base " + base + common + " --min-top1 0.9999").status,
            0);

  // Perplexity only.
  const CliResult ppl = run_cli("eval -m " + base + common);
  ASSERT_EQ(ppl.status, 0);
  EXPECT_NEAR(nlohmann::json::parse(ppl.out)["ppl"].get<double>(), j["ppl_base"].get<double>(),
              1e-9 * j["ppl_base"].get<double>());
  // Errors exit non-zero: a missing text file, a text too short.
  EXPECT_NE(run_cli("eval -m " + base + " -f /nonexistent 2>/dev/null").status, 0);
  EXPECT_NE(run_cli("eval -m " + base + " -f " + text + " --ctx 4096 2>/dev/null").status, 0);
}

// --- llama-perplexity's figures for tiny-llama-spm (golden/quant-error.json) ---------------

// The F32 master holds exactly the F16 file's values (MANIFEST §1.0): rebuilt in a temp file.
fs::path f32_master() {
  static const fs::path path = [] {
    const gguf::File src =
        gguf::File::open(test::fixture("fixtures/models/tiny-llama-spm-F16.gguf").string());
    gguf::Writer w(src.version(), static_cast<uint32_t>(src.alignment()));
    for (const auto& kv : src.metadata()) w.set(kv.key, kv.value);
    w.set("general.file_type", gguf::Value::u32(0));
    for (const auto& t : src.tensors()) {
      const auto bytes = src.tensor_data(t);
      if (t.type != TensorType::F16) {
        w.add_tensor(t.name, t.type, t.ne, bytes);
        continue;
      }
      std::vector<uint8_t> wide(static_cast<size_t>(t.n_elements()) * sizeof(float));
      dequantize_row(TensorType::F16, bytes.data(), reinterpret_cast<float*>(wide.data()),
                     t.n_elements());
      w.add_tensor(t.name, TensorType::F32, t.ne, std::move(wide));
    }
    const fs::path out = fs::temp_directory_path() /
                         ("thinkmesh-eval-" + std::to_string(getpid()) + "-spm-F32.gguf");
    w.write(out.string());
    return out;
  }();
  return path;
}

struct RemoveMaster {
  ~RemoveMaster() {
    std::error_code ec;
    fs::remove(fs::temp_directory_path() /
                   ("thinkmesh-eval-" + std::to_string(getpid()) + "-spm-F32.gguf"),
               ec);
  }
} remove_master;

// Which variant, on how many chunks (F16's KLD is ~0 on any chunk: one is enough).
struct GoldenCase {
  const char* variant;
  int32_t chunks;
};

class QuantErrorGolden : public ::testing::TestWithParam<GoldenCase> {};

TEST_P(QuantErrorGolden, FirstChunksAgreeWithLlamaPerplexity) {
  const std::string golden = "fixtures/golden/quant-error.json";
  THINKMESH_REQUIRE_FIXTURE(golden);
  THINKMESH_REQUIRE_FIXTURE("fixtures/models/tiny-llama-spm-F16.gguf");
  std::ifstream in(test::fixture(golden));
  const auto g = nlohmann::json::parse(in);
  const std::string variant = GetParam().variant;
  const auto& v = g.at("variants").at(variant);
  const std::string model_rel = v.at("model");
  THINKMESH_REQUIRE_FIXTURE(model_rel);
  const std::string text_path = g.at("text_file");
  if (!fs::exists(text_path)) GTEST_SKIP() << text_path << " is not on this machine";

  const auto base = Model::load(f32_master().string());
  const auto cand = load(model_rel);
  EvalOptions o;
  o.n_ctx = g.at("n_ctx");
  o.n_chunks = GetParam().chunks;
  o.n_threads = 2;
  const EvalReport r = evaluate(*cand, *base, test::read_file(text_path), o);
  ASSERT_EQ(r.n_tokens, o.n_chunks * g.at("scored_tokens_per_chunk").get<int>());
  EXPECT_GE(r.base.n_text_tokens, g.at("n_tokens_evaluated").get<int64_t>());

  // PPL of a random-weight model ≈ vocabulary size and varies between chunks (chunk 1 alone:
  // 32289 against 33898 over all 17): within 8 %.
  const double ppl_base = g.at("base_ppl"), ppl = v.at("ppl");
  const double kld = v.at("mean_kld"), kld_max = v.at("max_kld");
  const double top1 = v.at("same_top_p_pct").get<double>() / 100;
  std::printf(
      "%-6s ours (%d chunks): PPL base %.2f cand %.2f  KLD %.6f (max %.6f)  top-1 %.4f\n"
      "       llama (17 chunks): PPL base %.2f cand %.2f  KLD %.6f (max %.6f)  top-1 %.4f\n",
      variant.c_str(), o.n_chunks, r.base.ppl.value, r.candidate.ppl.value, r.kld_mean.value,
      r.kld_max, r.top1_agreement.value, ppl_base, ppl, kld, kld_max, top1);
  EXPECT_NEAR(r.base.ppl.value, ppl_base, 0.08 * ppl_base);
  EXPECT_NEAR(r.candidate.ppl.value, ppl, 0.08 * ppl);
  // KLD per token is tightly spread (max ≈ 1.4 x mean) but differs a little between chunks
  // (Q4_K_M: 0.00207 over chunks 1-2, 0.00233 over all 17): within 25 %. An F16 model's KLD
  // (< 5e-7, printed as 0 by llama-perplexity) stays tiny.
  if (kld > 1e-5) {
    EXPECT_NEAR(r.kld_mean.value, kld, 0.25 * kld);
  } else {
    EXPECT_LT(r.kld_mean.value, 1e-5);
  }
  // Top-1 of near-flat distributions depends on the chunk far beyond its binomial error
  // (Q4_K_M: 39 % over chunks 1-2 against 53 % over all 17, with the full run agreeing with
  // llama-perplexity, docs/evaluation.md), so only a loose bound here.
  EXPECT_NEAR(r.top1_agreement.value, top1, top1 > 0.9 ? 0.01 : 0.2);
}

INSTANTIATE_TEST_SUITE_P(Spm, QuantErrorGolden,
                         ::testing::Values(GoldenCase{"F16", 1}, GoldenCase{"Q4_0", 2},
                                           GoldenCase{"Q4_K_M", 2}),
                         [](const auto& p) { return std::string(p.param.variant); });

}  // namespace
}  // namespace thinkmesh
