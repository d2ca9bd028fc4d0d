// `thinkmesh convert`: a llama2.c checkpoint or a Hugging Face folder → GGUF, with the keys and
// tensor names llama.cpp's converters write (docs/convert.md).
//
//   thinkmesh convert models/stories260K.bin --tokenizer models/tok512.bin -o stories.gguf
//   thinkmesh convert path/to/Qwen2.5-0.5B -o qwen.gguf --type f16
#include <chrono>
#include <filesystem>
#include <memory>
#include <string>

#include <fmt/core.h>

#include "commands.h"
#include "thinkmesh/convert.h"
#include "thinkmesh/error.h"

namespace thinkmesh::cli {
namespace {

struct ConvertArgs {
  std::string source;
  std::string output;
  std::string type;  // empty: f32 for llama2.c, f16 for Hugging Face
  std::string tokenizer;
  std::string name;
};

void run_convert(const ConvertArgs& args) {
  convert::ConvertOptions options;
  if (!args.type.empty()) {
    const auto type = parse_tensor_type(args.type);
    if (!type ||
        (*type != TensorType::F32 && *type != TensorType::F16 && *type != TensorType::BF16)) {
      throw Error(ErrorKind::invalid_argument,
                  fmt::format("convert: --type {} (expected f32, f16 or bf16)", args.type));
    }
    options.type = *type;
  }
  options.tokenizer = args.tokenizer;
  options.name = args.name;
  const auto start = std::chrono::steady_clock::now();
  const auto r = convert::convert_any(args.source, args.output, options);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  fmt::print(
      "{}: {} from {}, {} tensors, {} parameters, {} weights, {} tokens, {:.1f} MB, in {:.1f} s\n",
      args.output, r.architecture, r.source_format, r.n_tensors, r.n_params, name(r.type),
      r.n_vocab, static_cast<double>(std::filesystem::file_size(args.output)) / 1e6, seconds);
}

}  // namespace

void register_convert(CLI::App& app) {
  auto args = std::make_shared<ConvertArgs>();
  CLI::App* cmd = app.add_subcommand(
      "convert",
      "Convert a llama2.c checkpoint or a Hugging Face folder (Llama, Qwen2, BERT) to GGUF");
  cmd->add_option("source", args->source,
                  "a llama2.c .bin checkpoint (or a folder holding one), or a Hugging Face "
                  "folder with config.json and *.safetensors")
      ->required();
  cmd->add_option("-o,--output", args->output, "the GGUF file to write")->required();
  cmd->add_option(
      "--type", args->type,
      "2-D weight type: f32, f16 or bf16 (default f32 for llama2.c, f16 for Hugging Face)");
  cmd->add_option("--tokenizer", args->tokenizer,
                  "llama2.c: the tokenizer.bin (default: tokenizer.bin or the one tok*.bin beside "
                  "the checkpoint)");
  cmd->add_option("--name", args->name,
                  "general.name (default: the folder name, or llama for llama2.c)");
  cmd->callback([args] { run_convert(*args); });
}

}  // namespace thinkmesh::cli
