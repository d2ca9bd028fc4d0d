// `thinkmesh calibrate`: compute an importance matrix (llama.cpp's imatrix.dat) from a text.
//
//   thinkmesh calibrate -m model.gguf -f calibration.txt -o imatrix.dat [--ctx 512]
//       [--hessian hessian.gguf]
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>

#include <fmt/core.h>

#include "commands.h"
#include "thinkmesh/error.h"
#include "thinkmesh/imatrix.h"
#include "thinkmesh/model.h"

namespace thinkmesh::cli {
namespace {

struct CalibrateArgs {
  std::string model, text, out;
  int32_t ctx = 512;
  int32_t chunks = -1;
  int32_t threads = 2;
  bool process_output = false;
  std::string hessian;  // --hessian: also write the second-order statistics (GGUF)
};

std::string read_text(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw Error(ErrorKind::not_found, fmt::format("{}: cannot open the text file", path));
  std::ostringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

void run_calibrate(const CalibrateArgs& args) {
  if (args.threads < 1)
    throw Error(ErrorKind::invalid_argument,
                fmt::format("--threads {} (must be >= 1)", args.threads));
  const std::string text = read_text(args.text);
  const auto model = Model::load(args.model);
  CalibrateOptions opt;
  opt.n_ctx = args.ctx;
  opt.n_chunks = args.chunks;
  opt.n_threads = args.threads;
  opt.include_output = args.process_output;
  opt.collect_hessian = !args.hessian.empty();
  const bool tty = isatty(fileno(stderr)) != 0;
  opt.on_chunk = [tty](int32_t i, int32_t n) {
    if (tty) fmt::print(stderr, "\r\033[Kchunk {}/{}", i, n);
    if (tty && i == n) fmt::print(stderr, "\n");
  };
  const CalibrateResult r = calibrate(model, text, opt, args.text);
  r.imatrix.write(args.out);
  fmt::print(stderr, "calibrate: {} tokens, {} chunks of {}: {} entries written to {}\n",
             r.n_text_tokens, r.n_chunks, args.ctx, r.imatrix.size(), args.out);
  if (opt.collect_hessian) {
    r.hessian.write(args.hessian);
    size_t n_weights = 0;
    for (const auto& e : r.hessian.entries()) n_weights += e.weights.size();
    fmt::print(stderr, "calibrate: {} Hessians ({} weights) written to {}\n", r.hessian.size(),
               n_weights, args.hessian);
  }
}

}  // namespace

void register_calibrate(CLI::App& app) {
  auto args = std::make_shared<CalibrateArgs>();
  CLI::App* cmd =
      app.add_subcommand("calibrate", "Compute an importance matrix (imatrix.dat) from a text");
  cmd->add_option("-m,--model", args->model, "GGUF model")->required();
  cmd->add_option("-f,--file", args->text, "calibration text (UTF-8)")->required();
  cmd->add_option("-o,--output", args->out,
                  "imatrix file to write (llama.cpp's imatrix.dat format)")
      ->required();
  cmd->add_option("--ctx", args->ctx, "tokens per chunk (default 512)");
  cmd->add_option("--chunks", args->chunks, "chunks to run (default: all full chunks)");
  cmd->add_option("-t,--threads", args->threads, "threads (default 2)");
  cmd->add_flag("--process-output", args->process_output,
                "also collect output.weight (llama-imatrix leaves it out by default)");
  cmd->add_option("--hessian", args->hessian,
                  "also write H = mean x x^T of every distinct matmul input (GGUF) for "
                  "quantize --hessian (GPTQ)");
  cmd->callback([args] { run_calibrate(*args); });
}

}  // namespace thinkmesh::cli
