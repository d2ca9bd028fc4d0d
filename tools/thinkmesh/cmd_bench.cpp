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
#include "bench_support/membw.h"
#include "commands.h"
#include "kernels/isa.h"
#include "model/weights.h"
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
  std::string isa;           // comma-separated kernel levels; empty: the active one
  double bandwidth_gbs = 0;  // > 0: tg rows also show decode as a fraction of this bandwidth
  bool membw = false;        // --membw: DRAM read bandwidth instead of models (bench_support)
  int64_t size_mib = 2048;   // --size-mib: its buffer
};

std::vector<kernels::Isa> parse_isas(const std::string& text) {
  std::vector<kernels::Isa> out;
  if (text.empty()) {
    out.push_back(kernels::active_isa());
    return out;
  }
  size_t pos = 0;
  while (pos <= text.size()) {
    const size_t comma = text.find(',', pos);
    const std::string item = text.substr(pos, comma == std::string::npos ? comma : comma - pos);
    const auto isa = kernels::parse_isa(item);
    if (!isa) {
      throw Error(
          ErrorKind::invalid_argument,
          fmt::format("--isa: '{}' is not a kernel level (scalar, avx2, avx512, amx, neon)", item));
    }
    out.push_back(*isa);
    if (comma == std::string::npos) break;
    pos = comma + 1;
  }
  return out;
}

// Bytes a decode step reads: every weight matrix once, except the token embedding table of
// which only one row is read (unless it doubles as the output matrix).
uint64_t streamed_bytes_per_token(const Model& model) {
  const model::Weights& w = model.weights();
  uint64_t bytes = model.info().weight_bytes;
  if (w.output.data != w.token_embd.data) {
    bytes -=
        static_cast<uint64_t>(w.token_embd.row_bytes) * static_cast<uint64_t>(w.token_embd.rows);
  }
  return bytes;
}

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
  const std::vector<kernels::Isa> isas = parse_isas(args.isa);
  if (args.reps < 1) throw Error(ErrorKind::invalid_argument, "-r must be >= 1");
  if (args.membw) return bench::run_membw_bench(thread_counts, args.size_mib, args.reps, args.json);
  if (args.models.empty()) throw Error(ErrorKind::invalid_argument, "bench: -m is required");
  nlohmann::ordered_json rows = nlohmann::ordered_json::array();
  if (!args.json) {
    fmt::print("| {:<28} | {:>8} | {:>10} | {:>6} | {:>7} | {:>6} | {:>20} | {:>10} |{}\n", "model",
               "type", "size", "isa", "threads", "test", "t/s (mean ± sd)", "best",
               args.bandwidth_gbs > 0 ? " of bw |" : "");
    fmt::print("| {:-<28} | {:->8} | {:->10} | {:->6} | {:->7} | {:->6} | {:->20} | {:->10} |{}\n",
               "", "", "", "", "", "", "", "", args.bandwidth_gbs > 0 ? "-------:|" : "");
  }
  std::mt19937 rng(1234);
  for (const auto& path : args.models) {
    ModelOptions mo;
    mo.load_tokenizer = false;
    const auto model = Model::load(path, mo);
    const ModelInfo& info = model->info();
    const std::string name = std::filesystem::path(path).stem().string();
    const uint64_t streamed = streamed_bytes_per_token(*model);
    for (const kernels::Isa isa : isas) {
      std::string why;
      if (!kernels::isa_supported(isa, &why)) {
        fmt::print(stderr, "bench: kernel level {} skipped: {}\n", kernels::isa_name(isa), why);
        continue;
      }
      kernels::set_active_isa(isa);
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
          double best = 0;
          for (const double v : tps) best = std::max(best, v);
          const std::string test = (prompt ? "pp" : "tg") + std::to_string(n);
          // Decode reads every streamed weight byte once per token.
          const double bw_fraction =
              !prompt && args.bandwidth_gbs > 0
                  ? best * static_cast<double>(streamed) / (args.bandwidth_gbs * 1e9)
                  : 0.0;
          if (args.json) {
            rows.push_back({{"model", name},
                            {"type", info.weight_type},
                            {"size_bytes", info.file_bytes},
                            {"isa", std::string(kernels::isa_name(isa))},
                            {"threads", threads},
                            {"test", test},
                            {"tokens_per_second", mean},
                            {"stddev", sd},
                            {"best_tokens_per_second", best},
                            {"streamed_bytes_per_token", streamed},
                            {"bandwidth_fraction", bw_fraction},
                            {"repetitions", args.reps}});
          } else {
            fmt::print(
                "| {:<28} | {:>8} | {:>6.2f} MiB | {:>6} | {:>7} | {:>6} | {:>20} | {:>10.2f} "
                "|{}\n",
                name, info.weight_type, static_cast<double>(info.file_bytes) / (1024.0 * 1024.0),
                kernels::isa_name(isa), threads, test, fmt::format("{:.2f} ± {:.2f}", mean, sd),
                best,
                args.bandwidth_gbs > 0 ? (prompt ? std::string("       |")
                                                 : fmt::format(" {:5.1f}% |", 100 * bw_fraction))
                                       : std::string());
            std::fflush(stdout);
          }
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
  cmd->add_option("-m,--model", args->models, "GGUF model (repeatable)");
  cmd->add_option("-p,--n-prompt", args->n_prompt,
                  "prompt tokens for the pp test (default 128; 0: skip)");
  cmd->add_option("-n,--n-gen", args->n_gen,
                  "generated tokens for the tg test (default 64; 0: skip)");
  cmd->add_option("-t,--threads", args->threads, "comma-separated thread counts (default 1,2)");
  cmd->add_option("-r,--repetitions", args->reps, "timed repetitions (default 3)");
  cmd->add_flag("--json", args->json, "print one JSON array of results");
  cmd->add_option("--isa", args->isa,
                  "comma-separated kernel levels to compare (scalar,avx2,avx512,amx,neon; default: "
                  "the active level)");
  cmd->add_option("--bandwidth", args->bandwidth_gbs,
                  "memory bandwidth in GB/s (from bench --membw): tg rows show decode speed as a "
                  "fraction of it (streamed weight bytes per token x tokens/s / bandwidth)");
  cmd->add_flag("--membw", args->membw, "measure DRAM read bandwidth (-r passes) instead");
  cmd->add_option("--size-mib", args->size_mib, "--membw buffer in MiB (default 2048)");
  auto embed = std::make_shared<EmbedBenchArgs>();  // --embed: bench_embed_cmd.cpp
  add_embed_bench_options(*cmd, *embed);
  cmd->callback([args, embed] {
    if (embed->enabled)
      return run_embed_bench(args->models, args->threads, args->reps, args->json, *embed);
    run_bench(*args);
  });
}

}  // namespace thinkmesh::cli
