// The default static embedder (models/wink-sg-100d.gguf, made by scripts/setup.sh) on
// eval/paraphrase.tsv: ROC AUC of the cosine score, same-intent pairs (label 1) against each
// kind of negative (label 0) and against all negatives. Prints the table; asserts the issue's
// target, AUC >= 0.95 against `unrelated`. Nothing here is tuned to the file (docs/embeddings.md).
//
// THINKMESH_WORDVEC_MODEL=path overrides the model (e.g. to compare Q8_0/F16/F32 tables).
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "support/fixtures.h"
#include "thinkmesh/embed.h"

namespace thinkmesh {
namespace {

std::filesystem::path model_path() {
  if (const char* env = std::getenv("THINKMESH_WORDVEC_MODEL"); env && *env) return env;
  return std::filesystem::path(THINKMESH_SOURCE_DIR) / "models" / "wink-sg-100d.gguf";
}

struct Pair {
  std::string a, b;
  int label = 0;
  std::string kind;
};

std::vector<Pair> read_pairs(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::vector<Pair> pairs;
  std::string line;
  std::getline(in, line);  // header: a b label kind
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    std::stringstream fields(line);
    Pair p;
    std::string label;
    std::getline(fields, p.a, '\t');
    std::getline(fields, p.b, '\t');
    std::getline(fields, label, '\t');
    std::getline(fields, p.kind, '\t');
    p.label = std::stoi(label);
    pairs.push_back(std::move(p));
  }
  return pairs;
}

// P(score of a positive > score of a negative), ties counting one half.
double roc_auc(const std::vector<double>& positives, const std::vector<double>& negatives) {
  double wins = 0;
  for (double p : positives) {
    for (double n : negatives) wins += p > n ? 1.0 : p == n ? 0.5 : 0.0;
  }
  return wins / (static_cast<double>(positives.size()) * static_cast<double>(negatives.size()));
}

TEST(StaticEmbedderEval, ParaphraseAuc) {
  THINKMESH_REQUIRE_FIXTURE("eval/paraphrase.tsv");
  const auto model = model_path();
  if (!std::filesystem::exists(model)) {
    // Not a fixture but a setup product: npm may be unreachable (setup.sh then says so and
    // skips only the embedder), so a missing file skips, under CI too, with the reason.
    GTEST_SKIP() << model << " not found: run scripts/setup.sh (npm + convert-wordvec)";
  }
  const auto pairs = read_pairs(test::fixture("eval/paraphrase.tsv"));
  ASSERT_EQ(pairs.size(), 500u);

  const auto embedder = Embedder::open(model.string());
  std::vector<std::string> texts;
  for (const auto& p : pairs) {
    texts.push_back(p.a);
    texts.push_back(p.b);
  }
  const EmbeddingMatrix m = embedder->embed(texts);
  std::vector<double> positives, all_negatives;
  std::map<std::string, std::vector<double>> negatives;  // by kind
  std::map<std::string, std::vector<double>> positives_by_kind;
  int zero_rows = 0;
  for (size_t i = 0; i < pairs.size(); ++i) {
    zero_rows += m.rows[2 * i].empty + m.rows[2 * i].all_unknown + m.rows[2 * i + 1].empty +
                 m.rows[2 * i + 1].all_unknown;
    const double score =
        cosine(m.row(static_cast<int64_t>(2 * i)), m.row(static_cast<int64_t>(2 * i + 1)));
    if (pairs[i].label == 1) {
      positives.push_back(score);
      positives_by_kind[pairs[i].kind].push_back(score);
    } else {
      negatives[pairs[i].kind].push_back(score);
      all_negatives.push_back(score);
    }
  }
  EXPECT_EQ(zero_rows, 0) << "texts with no known word";

  std::printf("model: %s\n", model.string().c_str());
  std::printf("positives: %zu (", positives.size());
  for (const auto& [kind, scores] : positives_by_kind)
    std::printf(" %s=%zu", kind.c_str(), scores.size());
  std::printf(" )\n%-12s %5s %7s\n", "negatives", "n", "AUC");
  std::map<std::string, double> auc;
  for (const auto& [kind, scores] : negatives) {
    auc[kind] = roc_auc(positives, scores);
    std::printf("%-12s %5zu %7.4f\n", kind.c_str(), scores.size(), auc[kind]);
  }
  std::printf("%-12s %5zu %7.4f\n", "all", all_negatives.size(), roc_auc(positives, all_negatives));

  ASSERT_TRUE(auc.count("unrelated"));
  EXPECT_GE(auc["unrelated"], 0.95) << "issue 5's target for the static embedder";
}

}  // namespace
}  // namespace thinkmesh
