// `thinkmesh bench --embed`: sentence-embedding speed (bench_embed_cmd.cpp), reached from
// cmd_bench.cpp.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

namespace thinkmesh::cli {

struct EmbedBenchArgs {
  bool enabled = false;          // --embed: run this benchmark instead of pp/tg
  std::string batches = "1,32";  // --batch: texts per forward pass (encoders)
  int32_t n_texts = 0;           // --texts: per timed call (0: 32 for encoders, 1000 wordvec)
  int32_t n_words = 0;           // --words: per text (0: 30 for encoders ≈ 32 tokens, 7 wordvec)
};

// Adds --embed, --batch, --texts and --words to the bench subcommand.
void add_embed_bench_options(CLI::App& cmd, EmbedBenchArgs& args);

// Texts/s of each model for each thread count and batch size: `reps` timed runs after a
// one-batch warm-up, each repeating the call for at least 0.2 s; mean ± sd as a table or JSON.
void run_embed_bench(const std::vector<std::string>& models, const std::string& threads,
                     int32_t reps, bool json, const EmbedBenchArgs& args);

}  // namespace thinkmesh::cli
