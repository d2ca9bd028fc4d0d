// Tokenizer throughput (MB/s of input text) per vocabulary, on eval/prose.txt from the shared
// fixtures ($THINKMESH_FIXTURES, default ../shared beside the source tree). Each iteration
// tokenizes the whole file once (add_special = false, parse_special = false).
//
//   build/<dir>/bench/bench_tokenizer --benchmark_filter=spm
//
// To add a vocabulary, add a row to kCases.
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>

#include "thinkmesh/gguf.h"
#include "thinkmesh/tokenizer.h"

namespace {

struct BenchCase {
  const char* name;   // benchmark name: family/vocabulary
  const char* vocab;  // GGUF file relative to the shared fixtures folder
};

const BenchCase kCases[] = {
    {"spm/llama2", "fixtures/models/tiny-llama-spm-F16.gguf"},
    {"wpm/minilm", "fixtures/models/minilm-shape-F16.gguf"},
    {"bpe/llama3", "fixtures/models/tiny-llama3-Q8_0.gguf"},
    {"bpe/qwen2", "fixtures/models/tiny-qwen2-Q8_0.gguf"},
    {"bpe/gpt2", "models/tokenizers/llama.cpp-vocab/ggml-vocab-gpt-2.gguf"},
};

std::filesystem::path fixtures_dir() {
  if (const char* env = std::getenv("THINKMESH_FIXTURES"); env && *env) return env;
  return std::filesystem::path(THINKMESH_SOURCE_DIR) / ".." / "shared";
}

std::string read_text(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

void bench_tokenize(benchmark::State& state, const BenchCase& c) {
  const std::string text = read_text(fixtures_dir() / "eval/prose.txt");
  if (text.empty()) {
    state.SkipWithError("eval/prose.txt not found (set THINKMESH_FIXTURES)");
    return;
  }
  std::unique_ptr<thinkmesh::Tokenizer> tokenizer;
  try {
    const auto file = thinkmesh::gguf::File::open((fixtures_dir() / c.vocab).string());
    tokenizer = thinkmesh::Tokenizer::from_gguf(file);
  } catch (const std::exception& e) {
    state.SkipWithError(e.what());
    return;
  }
  thinkmesh::TokenizeOptions options;
  options.add_special = false;
  size_t tokens = 0;
  for (auto _ : state) {
    const auto ids = tokenizer->tokenize(text, options);
    tokens = ids.size();
    benchmark::DoNotOptimize(ids.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * text.size()));
  state.counters["tokens"] = static_cast<double>(tokens);
  state.counters["bytes/token"] = tokens ? static_cast<double>(text.size()) / tokens : 0.0;
}

}  // namespace

int main(int argc, char** argv) {
  for (const BenchCase& c : kCases) {
    benchmark::RegisterBenchmark((std::string("tokenize/") + c.name).c_str(), bench_tokenize, c)
        ->Unit(benchmark::kMillisecond);
  }
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
