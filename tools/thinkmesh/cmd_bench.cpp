// `thinkmesh bench`: prompt-processing and generation speed, measured as llama-bench does.
//
//   thinkmesh bench -m model.gguf [-m other.gguf] [-p 128] [-n 64] [-t 1,2] [-r 3] [--json]
//
// ppN: N random tokens decoded as one batch on an empty cache; tgN: N tokens decoded one at a
// time from position 0. Each test runs once untimed (warm-up), then r times; the table shows
// tokens/s mean ± standard deviation.
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include "bench_embed_cmd.h"
#include "commands.h"
#include "thinkmesh/context.h"
#include "thinkmesh/error.h"
#include "thinkmesh/model.h"

namespace thinkmesh::cli {
namespace {

struct BenchArgs {
  std::vector<std::string> models;
  int32_t n_prompt = 128;
  int32_t n_gen = 64;
  std::string threads = "1,2";
  int32_t reps = 3;
  bool json = false;
};

std::vector<int32_t> parse_list(const std::string& text) {
  std::vector<int32_t> out;
  size_t pos = 0;
  while (pos < text.size()) {
    const size_t comma = text.find(',', pos);
    const std::string item = text.substr(pos, comma - pos);
    try {
      out.push_back(std::stoi(item));
    } catch (const std::exception&) {
      throw Error(ErrorKind::invalid_argument, fmt::format("-t: '{}' is not a number", item));
    }
    if (out.back() <= 0) throw Error(ErrorKind::invalid_argument, "-t: thread counts must be > 0");
    if (comma == std::string::npos) break;
    pos = comma + 1;
  }
  return out;
}

// Seconds to run one test on a cleared context.
double run_once(Context& ctx, int32_t n_vocab, int32_t n_tokens, bool prompt, std::mt19937& rng) {
  ctx.clear();
  std::uniform_int_distribution<int32_t> pick(0, n_vocab - 1);
  const auto start = std::chrono::steady_clock::now();
  if (prompt) {
    Batch b;
    for (int32_t i = 0; i < n_tokens; ++i) b.add(pick(rng), i, 0, i + 1 == n_tokens);
    ctx.decode(b);
  } else {
    for (int32_t i = 0; i < n_tokens; ++i) {
      Batch b;
      b.add(pick(rng), i, 0, true);
      ctx.decode(b);
    }
  }
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

void run_bench(const BenchArgs& args) {
  const std::vector<int32_t> thread_counts = parse_list(args.threads);
  if (args.reps < 1) throw Error(ErrorKind::invalid_argument, "-r must be >= 1");
  nlohmann::ordered_json rows = nlohmann::ordered_json::array();
  if (!args.json) {
    fmt::print("| {:<28} | {:>8} | {:>10} | {:>7} | {:>6} | {:>20} |\n", "model", "type", "size",
               "threads", "test", "t/s");
    fmt::print("| {:-<28} | {:->8} | {:->10} | {:->7} | {:->6} | {:->20} |\n", "", "", "", "", "",
               "");
  }
  std::mt19937 rng(1234);
  for (const auto& path : args.models) {
    ModelOptions mo;
    mo.load_tokenizer = false;
    const auto model = Model::load(path, mo);
    const ModelInfo& info = model->info();
    const std::string name = std::filesystem::path(path).stem().string();
    for (const int32_t threads : thread_counts) {
      ContextOptions co;
      co.n_ctx = std::max(args.n_prompt, args.n_gen) + 16;
      co.n_batch = std::max(args.n_prompt, 1);
      co.n_threads = threads;
      Context ctx(model, co);
      for (const bool prompt : {true, false}) {
        const int32_t n = prompt ? args.n_prompt : args.n_gen;
        if (n <= 0) continue;
        run_once(ctx, info.n_vocab, n, prompt, rng);  // warm-up
        std::vector<double> tps;
        for (int32_t r = 0; r < args.reps; ++r)
          tps.push_back(n / run_once(ctx, info.n_vocab, n, prompt, rng));
        double mean = 0, var = 0;
        for (const double v : tps) mean += v / static_cast<double>(tps.size());
        for (const double v : tps) var += (v - mean) * (v - mean);
        const double sd =
            tps.size() > 1 ? std::sqrt(var / static_cast<double>(tps.size() - 1)) : 0.0;
        const std::string test = (prompt ? "pp" : "tg") + std::to_string(n);
        if (args.json) {
          rows.push_back({{"model", name},
                          {"type", info.weight_type},
                          {"size_bytes", info.file_bytes},
                          {"threads", threads},
                          {"test", test},
                          {"tokens_per_second", mean},
                          {"stddev", sd},
                          {"repetitions", args.reps}});
        } else {
          fmt::print("| {:<28} | {:>8} | {:>6.2f} MiB | {:>7} | {:>6} | {:>20} |\n", name,
                     info.weight_type, static_cast<double>(info.file_bytes) / (1024.0 * 1024.0),
                     threads, test, fmt::format("{:.2f} ± {:.2f}", mean, sd));
          std::fflush(stdout);
        }
      }
    }
  }
  if (args.json) fmt::print("{}\n", rows.dump(2));
}

}  // namespace

void register_bench(CLI::App& app) {
  auto args = std::make_shared<BenchArgs>();
  CLI::App* cmd =
      app.add_subcommand("bench", "Measure prompt processing (pp) and generation (tg) speed");
  cmd->add_option("-m,--model", args->models, "GGUF model (repeatable)")->required();
  cmd->add_option("-p,--n-prompt", args->n_prompt,
                  "prompt tokens for the pp test (default 128; 0: skip)");
  cmd->add_option("-n,--n-gen", args->n_gen,
                  "generated tokens for the tg test (default 64; 0: skip)");
  cmd->add_option("-t,--threads", args->threads, "comma-separated thread counts (default 1,2)");
  cmd->add_option("-r,--repetitions", args->reps, "timed repetitions (default 3)");
  cmd->add_flag("--json", args->json, "print one JSON array of results");
  auto embed = std::make_shared<EmbedBenchArgs>();  // --embed: bench_embed_cmd.cpp
  add_embed_bench_options(*cmd, *embed);
  cmd->callback([args, embed] {
    if (embed->enabled)
      return run_embed_bench(args->models, args->threads, args->reps, args->json, *embed);
    run_bench(*args);
  });
}

}  // namespace thinkmesh::cli
