// Static embedder speed on short sentences: the `a` column of eval/paraphrase.tsv (500
// sentences, 6-8 words each) from the shared fixtures, embedded one thread at a time with the
// default model models/wink-sg-100d.gguf (THINKMESH_WORDVEC_MODEL overrides it).
//
//   build/<dir>/bench/bench_embed                     sentences/s as items_per_second
//   build/<dir>/bench/bench_embed --benchmark_filter=Lookup   hash vs binary-search lookup
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "embed/static_embedder.h"
#include "embed/word_split.h"
#include "thinkmesh/embed.h"

namespace {

std::filesystem::path fixtures_dir() {
  if (const char* env = std::getenv("THINKMESH_FIXTURES"); env && *env) return env;
  return std::filesystem::path(THINKMESH_SOURCE_DIR) / ".." / "shared";
}

std::string model_path() {
  if (const char* env = std::getenv("THINKMESH_WORDVEC_MODEL"); env && *env) return env;
  return (std::filesystem::path(THINKMESH_SOURCE_DIR) / "models" / "wink-sg-100d.gguf").string();
}

std::vector<std::string> short_sentences() {
  std::ifstream in(fixtures_dir() / "eval/paraphrase.tsv");
  std::vector<std::string> out;
  std::string line;
  std::getline(in, line);  // header
  while (std::getline(in, line)) out.push_back(line.substr(0, line.find('\t')));
  return out;
}

std::unique_ptr<thinkmesh::Embedder> open_or_skip(benchmark::State& state) {
  try {
    return thinkmesh::Embedder::open(model_path());
  } catch (const std::exception& e) {
    state.SkipWithError(e.what());
    return nullptr;
  }
}

// Sentences per second, one thread, through the public batch API.
void BM_StaticEmbed(benchmark::State& state) {
  const auto texts = short_sentences();
  if (texts.empty()) return state.SkipWithError("eval/paraphrase.tsv not found");
  const auto embedder = open_or_skip(state);
  if (!embedder) return;
  for (auto _ : state) {
    auto m = embedder->embed(texts);
    benchmark::DoNotOptimize(m.data.data());
  }
  state.SetItemsProcessed(state.iterations() * static_cast<int64_t>(texts.size()));
}
BENCHMARK(BM_StaticEmbed)->Unit(benchmark::kMicrosecond);

// The hot path without the output matrix: embed_into a reused row.
void BM_StaticEmbedInto(benchmark::State& state) {
  const auto texts = short_sentences();
  if (texts.empty()) return state.SkipWithError("eval/paraphrase.tsv not found");
  const auto embedder = open_or_skip(state);
  if (!embedder) return;
  const auto& s = static_cast<const thinkmesh::embed::StaticEmbedder&>(*embedder);
  std::vector<float> row(static_cast<size_t>(s.dim()));
  std::string scratch;
  for (auto _ : state) {
    for (const auto& t : texts) benchmark::DoNotOptimize(s.embed_into(t, row, scratch));
  }
  state.SetItemsProcessed(state.iterations() * static_cast<int64_t>(texts.size()));
}
BENCHMARK(BM_StaticEmbedInto)->Unit(benchmark::kMicrosecond);

// Word lookups per second: the flat hash index against binary search in a sorted vocabulary.
std::vector<std::string> sentence_words() {
  std::vector<std::string> words;
  std::string scratch;
  for (const auto& t : short_sentences()) {
    thinkmesh::embed::split_words(t, scratch, [&](std::string_view w) { words.emplace_back(w); });
  }
  return words;
}

void BM_LookupHash(benchmark::State& state) {
  const auto embedder = open_or_skip(state);
  if (!embedder) return;
  const auto& s = static_cast<const thinkmesh::embed::StaticEmbedder&>(*embedder);
  const auto words = sentence_words();
  for (auto _ : state) {
    for (const auto& w : words) benchmark::DoNotOptimize(s.find_word(w));
  }
  state.SetItemsProcessed(state.iterations() * static_cast<int64_t>(words.size()));
}
BENCHMARK(BM_LookupHash);

void BM_LookupBinarySearch(benchmark::State& state) {
  const auto embedder = open_or_skip(state);
  if (!embedder) return;
  const auto& s = static_cast<const thinkmesh::embed::StaticEmbedder&>(*embedder);
  std::vector<std::pair<std::string_view, int32_t>> sorted;
  for (int32_t id = 0; id < s.n_words(); ++id) sorted.emplace_back(s.word(id), id);
  std::sort(sorted.begin(), sorted.end());
  const auto words = sentence_words();
  for (auto _ : state) {
    for (const auto& w : words) {
      const auto it =
          std::lower_bound(sorted.begin(), sorted.end(), std::string_view(w),
                           [](const auto& e, std::string_view k) { return e.first < k; });
      benchmark::DoNotOptimize(it != sorted.end() && it->first == w ? it->second : -1);
    }
  }
  state.SetItemsProcessed(state.iterations() * static_cast<int64_t>(words.size()));
}
BENCHMARK(BM_LookupBinarySearch);

// Opening the model: map, parse 341K words of metadata, build the index.
void BM_StaticOpen(benchmark::State& state) {
  for (auto _ : state) {
    const auto embedder = open_or_skip(state);
    if (!embedder) return;
    benchmark::DoNotOptimize(embedder->dim());
  }
}
BENCHMARK(BM_StaticOpen)->Unit(benchmark::kMillisecond)->Iterations(3);

}  // namespace

BENCHMARK_MAIN();
