// Pruning (include/thinkmesh/prune.h, `thinkmesh prune`):
//  * stories260K with 30 % of its FFN neurons removed is a smaller file that loads (per-layer
//    feed_forward_length), generates, and evaluates against the original with finite figures;
//  * calibration-weighted importance vs magnitude (figures printed);
//  * a block-quantized model keeps ffn_down in its type at a width of whole blocks;
//  * --unstructured keeps every shape and zeroes the fraction asked of each layer matrix;
//  * bad fractions are rejected.
#include <gtest/gtest.h>

#include <unistd.h>
#include <array>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <memory>

#include <nlohmann/json.hpp>

#include "support/fixtures.h"
#include "thinkmesh/context.h"
#include "thinkmesh/error.h"
#include "thinkmesh/evaluate.h"
#include "thinkmesh/gguf.h"
#include "thinkmesh/model.h"
#include "thinkmesh/prune.h"
#include "thinkmesh/tensor_type.h"

namespace thinkmesh {
namespace {

namespace fs = std::filesystem;

const char* kStories = "models/stories260K/stories260K.gguf";
const char* kStoriesText = "eval/stories.txt";
const char* kSpmQ4 = "fixtures/models/tiny-llama-spm-Q4_0.gguf";

// A file in the temp folder, removed when the test ends.
struct TempPath {
  fs::path path;
  explicit TempPath(const std::string& name)
      : path(fs::temp_directory_path() /
             ("thinkmesh-prune-" + std::to_string(getpid()) + "-" + name)) {}
  ~TempPath() {
    std::error_code ec;
    fs::remove(path, ec);
  }
  std::string str() const { return path.string(); }
};

// Greedy tokens from BOS; every logit must be finite.
std::vector<TokenId> greedy(const std::shared_ptr<const Model>& m, int n) {
  ContextOptions co;
  co.n_ctx = 64;
  co.n_threads = 2;
  Context ctx(m, co);
  std::vector<TokenId> out{1};
  for (int i = 0; i < n; ++i) {
    Batch b;
    b.add(out.back(), i, 0, true);
    ctx.decode(b);
    const auto l = ctx.logits(0);
    size_t best = 0;
    for (size_t v = 0; v < l.size(); ++v) {
      EXPECT_TRUE(std::isfinite(l[v]));
      if (l[v] > l[best]) best = v;
    }
    out.push_back(static_cast<TokenId>(best));
  }
  return out;
}

EvalReport eval_against(const std::string& cand, const std::string& base) {
  EvalOptions o;
  o.n_ctx = 128;
  o.n_chunks = 6;
  o.n_threads = 2;
  const auto c = Model::load(cand), b = Model::load(base);
  return evaluate(*c, *b, test::read_file(test::fixture(kStoriesText)), o);
}

TEST(Prune, FfnMagnitudeGivesASmallerWorkingModel) {
  THINKMESH_REQUIRE_FIXTURE(kStories);
  THINKMESH_REQUIRE_FIXTURE(kStoriesText);
  const std::string in = test::fixture(kStories).string();
  TempPath out("ffn30.gguf");
  PruneOptions o;
  o.ffn_fraction = 0.3;
  const PruneReport r = prune_model(in, out.str(), o);
  ASSERT_EQ(r.layers.size(), 5u);
  for (const auto& l : r.layers) {
    EXPECT_EQ(l.n_ff_before, 172);
    EXPECT_EQ(l.n_ff_after, 120);  // round(0.7 * 172); F32 source: no block rounding
    EXPECT_EQ(l.down_type, "F32");
  }
  EXPECT_FALSE(r.calibrated);
  EXPECT_LT(r.bytes_out, r.bytes_in);
  EXPECT_EQ(r.bytes_out, fs::file_size(out.path));

  const auto m = Model::load(out.str());
  EXPECT_EQ(m->info().n_ff, std::vector<int32_t>(5, 120));
  const gguf::File f = gguf::File::open(out.str());
  ASSERT_NE(f.find("llama.feed_forward_length"), nullptr);
  EXPECT_TRUE(f.find("llama.feed_forward_length")->is_array());
  const auto tokens = greedy(m, 24);
  std::printf("pruned generation: %s\n", m->tokenizer().detokenize(tokens).c_str());

  const EvalReport e = eval_against(out.str(), in);
  std::printf("ffn 30%% magnitude: PPL %.4f -> %.4f  KLD %.5f  top-1 %.4f  RMS dp %.4f\n",
              e.base.ppl.value, e.candidate.ppl.value, e.kld_mean.value, e.top1_agreement.value,
              e.rms_dp.value);
  EXPECT_TRUE(std::isfinite(e.kld_mean.value));
  EXPECT_GT(e.kld_mean.value, 0.0);
  EXPECT_TRUE(std::isfinite(e.candidate.ppl.value));
  EXPECT_GT(e.top1_agreement.value, 0.0);
  EXPECT_LT(e.top1_agreement.value, 1.0);
}

TEST(Prune, CalibrationAgainstMagnitude) {
  THINKMESH_REQUIRE_FIXTURE(kStories);
  THINKMESH_REQUIRE_FIXTURE("eval/prose.txt");
  const std::string in = test::fixture(kStories).string();
  PruneOptions o;
  o.ffn_fraction = 0.3;
  TempPath mag("mag.gguf"), cal("cal.gguf");
  prune_model(in, mag.str(), o);
  // Calibrated on the first half of the stories; evaluated on all of it (6 chunks of 128).
  const std::string text = test::read_file(test::fixture(kStoriesText));
  o.calib_text = text.substr(0, text.size() / 2);
  o.calib_ctx = 128;
  o.n_threads = 2;
  const PruneReport r = prune_model(in, cal.str(), o);
  EXPECT_TRUE(r.calibrated);
  EXPECT_GT(r.calib_tokens, 1000);
  const EvalReport em = eval_against(mag.str(), in), ec = eval_against(cal.str(), in);
  std::printf(
      "ffn 30%%: magnitude KLD %.5f top-1 %.4f PPL %.4f | calibration KLD %.5f top-1 "
      "%.4f PPL %.4f (base PPL %.4f)\n",
      em.kld_mean.value, em.top1_agreement.value, em.candidate.ppl.value, ec.kld_mean.value,
      ec.top1_agreement.value, ec.candidate.ppl.value, em.base.ppl.value);
  EXPECT_LT(ec.kld_mean.value, em.kld_mean.value);
}

TEST(Prune, QuantizedDownKeepsItsTypeAtWholeBlocks) {
  THINKMESH_REQUIRE_FIXTURE(kSpmQ4);
  const std::string in = test::fixture(kSpmQ4).string();
  TempPath out("spm-q4.gguf");
  PruneOptions o;
  o.ffn_fraction = 0.3;
  const PruneReport r = prune_model(in, out.str(), o);
  const gguf::File src = gguf::File::open(in), dst = gguf::File::open(out.str());
  ASSERT_EQ(r.layers.size(), 4u);
  for (size_t l = 0; l < r.layers.size(); ++l) {
    EXPECT_EQ(r.layers[l].n_ff_after, 544);  // round(0.7 * 768 / 32) * 32
    const std::string b = "blk." + std::to_string(l) + ".";
    const auto* down_src = src.find_tensor(b + "ffn_down.weight");
    const auto* down = dst.find_tensor(b + "ffn_down.weight");
    ASSERT_NE(down, nullptr);
    EXPECT_EQ(down->type, down_src->type);
    EXPECT_EQ(down->ne, (std::vector<int64_t>{544, 256}));
    EXPECT_EQ(dst.find_tensor(b + "ffn_gate.weight")->type,
              src.find_tensor(b + "ffn_gate.weight")->type);
    EXPECT_EQ(dst.find_tensor(b + "ffn_up.weight")->ne, (std::vector<int64_t>{256, 544}));
  }
  EXPECT_LT(r.bytes_out, r.bytes_in);
  const auto m = Model::load(out.str());
  EXPECT_EQ(m->info().n_ff, std::vector<int32_t>(4, 544));
  greedy(m, 2);
}

TEST(Prune, UnstructuredKeepsShapesAndZeroesTheFraction) {
  THINKMESH_REQUIRE_FIXTURE(kStories);
  const std::string in = test::fixture(kStories).string();
  TempPath out("unstructured.gguf");
  // Through the CLI, with its JSON report.
  const std::string cmd = test::thinkmesh_binary().string() + " prune " + in + " " + out.str() +
                          " --unstructured 0.3 --json";
  std::unique_ptr<FILE, int (*)(FILE*)> pipe(popen(cmd.c_str(), "r"), pclose);
  std::string text;
  std::array<char, 4096> buf{};
  for (size_t n; (n = fread(buf.data(), 1, buf.size(), pipe.get())) > 0;)
    text.append(buf.data(), n);
  ASSERT_EQ(pclose(pipe.release()), 0) << text;
  const auto j = nlohmann::json::parse(text);
  EXPECT_GT(j["zeroed"].get<int64_t>(), 0);

  const gguf::File src = gguf::File::open(in), dst = gguf::File::open(out.str());
  ASSERT_EQ(src.tensors().size(), dst.tensors().size());
  int64_t total = 0, zeroed = 0;
  for (const auto& t : src.tensors()) {
    const auto* d = dst.find_tensor(t.name);
    ASSERT_NE(d, nullptr) << t.name;
    EXPECT_EQ(d->ne, t.ne) << t.name;
    EXPECT_EQ(d->type, t.type) << t.name;
    const auto a = src.tensor_data(t), b = dst.tensor_data(*d);
    const bool layer_matrix = t.name.starts_with("blk.") && t.ne.size() == 2;
    if (!layer_matrix) {
      EXPECT_TRUE(std::equal(a.begin(), a.end(), b.begin(), b.end())) << t.name << " changed";
      continue;
    }
    const auto* x = reinterpret_cast<const float*>(a.data());
    const auto* y = reinterpret_cast<const float*>(b.data());
    const int64_t n = t.n_elements();
    int64_t z_src = 0, z = 0;
    float kept_min = INFINITY, dropped_max = 0;
    for (int64_t i = 0; i < n; ++i) {
      z_src += x[i] == 0.0f;
      if (y[i] == 0.0f) {
        ++z;
        dropped_max = std::max(dropped_max, std::fabs(x[i]));
      } else {
        EXPECT_EQ(y[i], x[i]);
        kept_min = std::min(kept_min, std::fabs(x[i]));
      }
    }
    const auto k = std::llround(0.3 * static_cast<double>(n));
    EXPECT_GE(z, k) << t.name;
    EXPECT_LE(z, k + z_src) << t.name;
    EXPECT_LE(dropped_max, kept_min) << t.name << ": a larger weight was zeroed";
    total += n;
    zeroed += z;
  }
  EXPECT_EQ(j["unstructured_total"].get<int64_t>(), total);
  EXPECT_NEAR(static_cast<double>(zeroed) / static_cast<double>(total), 0.3, 1e-3);
}

TEST(Prune, HeadsRemoveWholeKvGroups) {
  THINKMESH_REQUIRE_FIXTURE(kStories);
  THINKMESH_REQUIRE_FIXTURE(kStoriesText);
  THINKMESH_REQUIRE_FIXTURE(kSpmQ4);
  const std::string in = test::fixture(kStories).string();
  TempPath mag("heads-mag.gguf"), cal("heads-cal.gguf");
  PruneOptions o;
  o.heads = 2;  // 8 heads, 4 KV heads: one KV group of 2 query heads
  const PruneReport r = prune_model(in, mag.str(), o);
  EXPECT_EQ(r.n_head_before, 8);
  EXPECT_EQ(r.n_head_after, 6);
  const auto m = Model::load(mag.str());
  EXPECT_EQ(m->info().n_head, 6);
  EXPECT_EQ(m->info().n_head_kv, 3);
  EXPECT_EQ(m->info().head_dim, 8);
  const gguf::File f = gguf::File::open(mag.str());
  EXPECT_EQ(f.find_tensor("blk.0.attn_q.weight")->ne, (std::vector<int64_t>{64, 48}));
  EXPECT_EQ(f.find_tensor("blk.0.attn_k.weight")->ne, (std::vector<int64_t>{64, 24}));
  EXPECT_EQ(f.find_tensor("blk.0.attn_output.weight")->ne, (std::vector<int64_t>{48, 64}));
  greedy(m, 8);
  o.calib_text = test::read_file(test::fixture(kStoriesText)).substr(0, 8000);
  o.calib_ctx = 128;
  o.n_threads = 2;
  prune_model(in, cal.str(), o);
  const EvalReport em = eval_against(mag.str(), in), ec = eval_against(cal.str(), in);
  std::printf("heads -2 of 8: magnitude KLD %.5f top-1 %.4f | calibration KLD %.5f top-1 %.4f\n",
              em.kld_mean.value, em.top1_agreement.value, ec.kld_mean.value,
              ec.top1_agreement.value);
  EXPECT_TRUE(std::isfinite(em.kld_mean.value));
  EXPECT_TRUE(std::isfinite(ec.kld_mean.value));

  // Quantized: attn_q/k/v rows are copied; attn_output (256 -> 192 columns) stays Q4_0.
  TempPath q("heads-q4.gguf");
  PruneOptions oq;
  oq.heads = 2;
  const PruneReport rq = prune_model(test::fixture(kSpmQ4).string(), q.str(), oq);
  ASSERT_FALSE(rq.attn_output_types.empty());
  EXPECT_EQ(rq.attn_output_types.front(), "Q4_0");
  const auto mq = Model::load(q.str());
  EXPECT_EQ(mq->info().n_head, 6);
  EXPECT_EQ(mq->info().head_dim, 32);
  greedy(mq, 2);
  PruneOptions bad;
  bad.heads = 1;  // not a whole KV group
  EXPECT_THROW(prune_model(in, q.str(), bad), Error);
}

TEST(Prune, RejectsBadFractions) {
  THINKMESH_REQUIRE_FIXTURE(kStories);
  const std::string in = test::fixture(kStories).string();
  TempPath out("bad.gguf");
  for (const double f : {-0.1, 1.0, 1.5}) {
    PruneOptions o;
    o.ffn_fraction = f;
    EXPECT_THROW(prune_model(in, out.str(), o), Error) << f;
  }
  EXPECT_THROW(prune_model(in, out.str(), {}), Error);  // nothing asked
  EXPECT_FALSE(fs::exists(out.path));
}

}  // namespace
}  // namespace thinkmesh
