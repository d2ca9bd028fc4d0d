// `thinkmesh synth`: a synthetic GGUF model in the shape of a public one, with seeded random
// weights (src/synth, docs/synth.md).
//
//   thinkmesh synth --like qwen2.5-0.5b --type Q8_0 -o /tmp/qwen.gguf [--seed N]
//       [--vocab-from FILE.gguf | --vocab-size N] [--layers N] [--ctx N] [-t 2]
//   thinkmesh synth --list
#include <memory>
#include <string>

#include <fmt/core.h>

#include "commands.h"
#include "thinkmesh/error.h"
#include "thinkmesh/synth.h"

namespace thinkmesh::cli {
namespace {

struct SynthArgs {
  synth::SynthOptions options;
  bool list = false;
};

void print_shapes() {
  fmt::print(
      "| {:<13} | {:<5} | {:>6} | {:>4} | {:>3} | {:>4} | {:>3} | {:>5} | {:>6} | {:>9} | "
      "{:<5} | {}\n",
      "like", "arch", "vocab", "embd", "lay", "head", "kv", "ff", "ctx", "rope", "tied", "source");
  for (const synth::ModelShape& s : synth::model_shapes()) {
    fmt::print(
        "| {:<13} | {:<5} | {:>6} | {:>4} | {:>3} | {:>4} | {:>3} | {:>5} | {:>6} | {:>9} | "
        "{:<5} | {}\n",
        s.like, s.arch, s.n_vocab, s.n_embd, s.n_layer, s.n_head, s.n_head_kv, s.n_ff, s.n_ctx,
        s.rope_theta, s.tied_embeddings ? "yes" : "no", s.source);
  }
}

void run_synth(const SynthArgs& args) {
  if (args.list) return print_shapes();
  if (args.options.like.empty()) {
    throw Error(ErrorKind::invalid_argument, "synth: --like is required (see --list)");
  }
  const synth::SynthSummary s = synth::synthesize(args.options);
  std::string types;
  for (const auto& [type, count] : s.type_counts)
    types += fmt::format("{}{} {}", types.empty() ? "" : ", ", count, type);
  fmt::print("{}: {} ({} layers, vocab {}, {} params), {} tensors ({}), {:.2f} MiB, in {:.1f} s\n",
             s.output, s.name, s.n_layer, s.n_vocab, s.n_params, s.n_tensors, types,
             static_cast<double>(s.file_bytes) / (1024.0 * 1024.0), s.seconds);
}

}  // namespace

void register_synth(CLI::App& app) {
  auto args = std::make_shared<SynthArgs>();
  synth::SynthOptions& o = args->options;
  CLI::App* cmd = app.add_subcommand(
      "synth", "Write a synthetic GGUF model with a public model's shape and random weights");
  cmd->add_option("--like", o.like,
                  "model shape: qwen2.5-0.5b, llama-1b, smollm2-135m, stories15m, minilm-l6");
  cmd->add_option("--type", o.type,
                  "weight type: F32, F16, BF16, Q8_0 (default), Q4_0, Q4_K, Q6_K, Q4_K_M");
  cmd->add_option("-o,--output", o.output, "the GGUF file to write");
  cmd->add_option("--seed", o.seed, "random seed (default 1); same seed, same bytes");
  cmd->add_option("--vocab-from", o.vocab_from,
                  "copy every tokenizer.* key from this GGUF (default: a synthetic vocabulary)");
  cmd->add_option("--layers", o.n_layer, "layer count (default: the model's)");
  cmd->add_option("--ctx", o.n_ctx, "context_length written (default: the model's)");
  cmd->add_option("--vocab-size", o.n_vocab,
                  "synthetic vocabulary size (default: the model's; small ones for tests)");
  cmd->add_option("-t,--threads", o.n_threads, "generating threads (default 2)");
  cmd->add_flag("--list", args->list, "print the table of model shapes and exit");
  cmd->callback([args] { run_synth(*args); });
}

}  // namespace thinkmesh::cli
