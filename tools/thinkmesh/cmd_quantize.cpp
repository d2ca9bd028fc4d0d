// `thinkmesh quantize`: write a GGUF model in another tensor type, with llama-quantize's
// per-tensor mix (see docs/quantization.md).
//
//   thinkmesh quantize model-f16.gguf model-q4_k_m.gguf Q4_K_M [--imatrix imatrix.dat]
//
// Progress goes to stderr (a live line on a terminal), then a summary: sizes, the types
// written, every fallback, and with --imatrix the importance-weighted error per tensor beside
// round-to-nearest's.
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include <fmt/core.h>

#include "commands.h"
#include "thinkmesh/error.h"
#include "thinkmesh/evaluate.h"
#include "thinkmesh/imatrix.h"
#include "thinkmesh/model.h"
#include "thinkmesh/quantize.h"

namespace thinkmesh::cli {
namespace {

struct QuantizeArgs {
  std::string input, output, type;
  bool pure = false;
  std::vector<std::string> tensor_types;
  std::string imatrix;
  std::string hessian;      // --hessian: GPTQ with these second-order statistics
  double gptq_damp = 0.01;  // --gptq-damp
  int32_t threads = 2;
  bool allow_requantize = false;
  // The quality gate: after writing OUT, evaluate it against IN on --eval-text and delete it
  // when it misses a budget.
  double gate_kld = -1;   // --gate-kld: max mean KLD (nats); -1 = none
  double gate_top1 = -1;  // --gate-top1: min top-1 agreement 0..1; -1 = none
  std::string eval_text;  // --eval-text
  int32_t eval_ctx = 512;
  int32_t eval_chunks = 0;
};

std::string read_text_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(ErrorKind::not_found, fmt::format("{}: evaluation text not found", path));
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Evaluates the written model against the input; removes it and throws when a budget fails.
void run_gate(const QuantizeArgs& args, const std::string& text, int32_t threads) {
  const auto base = Model::load(args.input);
  const auto cand = Model::load(args.output);
  EvalOptions eo;
  eo.n_ctx = args.eval_ctx;
  eo.n_chunks = args.eval_chunks;
  eo.n_threads = threads;
  const EvalReport r = evaluate(*cand, *base, text, eo);
  fmt::print(stderr,
             "gate: {} tokens, PPL {:.4f} -> {:.4f}, mean KLD {:.6f} (p99 {:.6f}), top-1 {:.2f}%\n",
             r.candidate.n_tokens, r.base.ppl.value, r.candidate.ppl.value, r.kld_mean.value,
             r.kld_p99, 100.0 * r.top1_agreement.value);
  EvalBudget budget;
  budget.max_kld = args.gate_kld;
  budget.min_top1 = args.gate_top1;
  const std::vector<std::string> failures = budget_failures(r, budget);
  if (failures.empty()) {
    fmt::print(stderr, "gate: {} passes\n", args.output);
    return;
  }
  std::error_code ec;
  std::filesystem::remove(args.output, ec);
  std::string why;
  for (const auto& f : failures) why += (why.empty() ? "" : "; ") + f;
  throw Error(ErrorKind::invalid_argument,
              fmt::format("quality gate failed, {} deleted: {}", args.output, why));
}

double mib(uint64_t bytes) {
  return static_cast<double>(bytes) / (1024.0 * 1024.0);
}

void print_imatrix_errors(const QuantizeReport& report) {
  double ours = 0, rtn = 0;
  int better = 0, measured = 0;
  fmt::print(stderr, "importance-weighted error sum(imatrix*(w-q)^2), per tensor:\n");
  fmt::print(stderr, "  {:<32} {:<6} {:>12} {:>12} {:>7}\n", "tensor", "type", "imatrix", "nearest",
             "ratio");
  for (const auto& t : report.tensors) {
    if (t.weighted_error_rtn <= 0 && t.weighted_error <= 0) continue;
    ++measured;
    ours += t.weighted_error;
    rtn += t.weighted_error_rtn;
    if (t.weighted_error <= t.weighted_error_rtn) ++better;
    fmt::print(stderr, "  {:<32} {:<6} {:>12.5g} {:>12.5g} {:>7.3f}\n", t.name, name(t.to),
               t.weighted_error, t.weighted_error_rtn,
               t.weighted_error_rtn > 0 ? t.weighted_error / t.weighted_error_rtn : 1.0);
  }
  if (measured > 0)
    fmt::print(stderr, "  total {:.5g} vs {:.5g} (ratio {:.3f}); imatrix <= nearest in {}/{}\n",
               ours, rtn, rtn > 0 ? ours / rtn : 1.0, better, measured);
}

void print_hessian_errors(const QuantizeReport& report) {
  double ours = 0, rtn = 0;
  fmt::print(stderr, "second-order error sum((w-q) H (w-q)^T), per tensor:\n");
  fmt::print(stderr, "  {:<32} {:<6} {:>5} {:>12} {:>12} {:>7}\n", "tensor", "type", "gptq",
             "result", "nearest", "ratio");
  for (const auto& t : report.tensors) {
    if (t.hessian_error_rtn <= 0 && t.hessian_error <= 0) continue;
    ours += t.hessian_error;
    rtn += t.hessian_error_rtn;
    fmt::print(stderr, "  {:<32} {:<6} {:>5} {:>12.5g} {:>12.5g} {:>7.3f}\n", t.name, name(t.to),
               t.gptq ? "yes" : "no", t.hessian_error, t.hessian_error_rtn,
               t.hessian_error_rtn > 0 ? t.hessian_error / t.hessian_error_rtn : 1.0);
  }
  fmt::print(stderr, "  total {:.5g} vs {:.5g} (ratio {:.3f})\n", ours, rtn,
             rtn > 0 ? ours / rtn : 1.0);
}

void run_quantize(const QuantizeArgs& args) {
  const auto ftype = parse_file_type(args.type);
  if (!ftype)
    throw Error(ErrorKind::invalid_argument,
                fmt::format("unknown quantization type '{}' (types: {})", args.type,
                            supported_file_types()));
  if (args.threads < 1)
    throw Error(ErrorKind::invalid_argument,
                fmt::format("--threads {} (must be >= 1)", args.threads));
  std::error_code ec;
  if (!std::filesystem::is_regular_file(args.input, ec))
    throw Error(ErrorKind::not_found, fmt::format("{}: input model not found", args.input));
  const bool gated = args.gate_kld >= 0 || args.gate_top1 >= 0;
  if (gated && args.eval_text.empty())
    throw Error(ErrorKind::invalid_argument, "--gate-kld/--gate-top1 need --eval-text FILE");
  // Read before quantizing: a missing text fails at once, not after the work.
  const std::string eval_text = gated ? read_text_file(args.eval_text) : std::string();
  QuantizeOptions opt;
  opt.file_type = *ftype;
  opt.pure = args.pure;
  opt.n_threads = args.threads;
  opt.allow_requantize = args.allow_requantize;
  for (const auto& spec : args.tensor_types)
    opt.overrides.push_back(parse_tensor_type_override(spec));
  ImportanceMatrix imatrix;
  if (!args.imatrix.empty()) {
    imatrix = ImportanceMatrix::read(args.imatrix);
    opt.imatrix = &imatrix;
    fmt::print(stderr, "imatrix: {} entries from {}{}\n", imatrix.size(), args.imatrix,
               imatrix.dataset.empty()
                   ? ""
                   : fmt::format(" (dataset {}, {} chunks)", imatrix.dataset, imatrix.last_call));
  }
  if (!(args.gptq_damp > 0))
    throw Error(ErrorKind::invalid_argument,
                fmt::format("--gptq-damp {} (must be > 0)", args.gptq_damp));
  HessianSet hessian;
  if (!args.hessian.empty()) {
    hessian = HessianSet::read(args.hessian);
    opt.hessian = &hessian;
    opt.gptq_damp = args.gptq_damp;
    fmt::print(stderr, "hessian: {} entries from {}{}\n", hessian.size(), args.hessian,
               hessian.dataset.empty()
                   ? ""
                   : fmt::format(" (dataset {}, {} chunks)", hessian.dataset, hessian.n_chunks));
  }
  const bool tty = isatty(fileno(stderr)) != 0;
  uint64_t done_in = 0, done_out = 0;
  opt.on_tensor = [&](const TensorPlan& t, size_t i, size_t n) {
    done_in += t.bytes_in;
    done_out += t.bytes_out;
    if (t.fallback)
      fmt::print(stderr, "{}fallback: {}: {}\n", tty ? "\r\033[K" : "", t.name, t.note);
    if (tty) {
      fmt::print(stderr, "\r\033[K[{:>4}/{}] {:<32} {:>5} -> {:<5} {:8.2f} MiB -> {:8.2f} MiB", i,
                 n, t.name, name(t.from), name(t.to), mib(done_in), mib(done_out));
      if (i == n) fmt::print(stderr, "\n");
    }
  };
  const QuantizeReport report = quantize_model(args.input, args.output, opt);

  std::map<std::string, int> counts;
  int quantized = 0;
  for (const auto& t : report.tensors) {
    ++counts[std::string(name(t.to))];
    quantized += t.quantize;
  }
  std::string types;
  for (const auto& [type, count] : counts)
    types += fmt::format("{}{} {}", types.empty() ? "" : ", ", type, count);
  fmt::print(stderr,
             "quantize: {} -> {} ({}): {} of {} tensors converted, {:.2f} MiB -> {:.2f} MiB\n",
             args.input, args.output, file_type_name(*ftype), quantized, report.tensors.size(),
             mib(report.bytes_in), mib(report.bytes_out));
  fmt::print(stderr, "types: {}\n", types);
  if (report.n_fallback > 0) {
    fmt::print(stderr, "{} of {} tensors needed a fallback type:\n", report.n_fallback,
               report.tensors.size());
    for (const auto& t : report.tensors)
      if (t.fallback) fmt::print(stderr, "  {}: {}\n", t.name, t.note);
  }
  if (opt.imatrix) {
    fmt::print(stderr, "imatrix used for {} tensors\n", report.n_imatrix);
    print_imatrix_errors(report);
  }
  if (opt.hessian) {
    fmt::print(stderr, "GPTQ used for {} tensors\n", report.n_gptq);
    print_hessian_errors(report);
  }
  if (gated) run_gate(args, eval_text, args.threads);
}

}  // namespace

void register_quantize(CLI::App& app) {
  auto args = std::make_shared<QuantizeArgs>();
  CLI::App* cmd =
      app.add_subcommand("quantize", "Write a model in another tensor type (llama-quantize mixes)");
  cmd->add_option("input", args->input, "input GGUF model")->required();
  cmd->add_option("output", args->output, "output GGUF (never the input)")->required();
  cmd->add_option("type", args->type,
                  "Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K_S, Q4_K_M, Q5_K_S, "
                  "Q5_K_M, Q6_K, F16, BF16 or F32")
      ->required();
  cmd->add_flag("--pure", args->pure, "every quantizable weight gets TYPE (no per-tensor mix)");
  cmd->add_option("--tensor-type", args->tensor_types,
                  "REGEX=TYPE: tensors whose name matches get TYPE (repeatable; first match wins)");
  cmd->add_option("--imatrix", args->imatrix,
                  "importance matrix (imatrix.dat) for weighted quantization");
  cmd->add_option("--hessian", args->hessian,
                  "Hessian file (calibrate --hessian): GPTQ error-compensating rounding for "
                  "Q4_0..Q8_0 and Q4_K/Q5_K/Q6_K tensors that have an entry");
  cmd->add_option("--gptq-damp", args->gptq_damp,
                  "GPTQ damping: fraction of mean diag(H) added to the diagonal (default 0.01)");
  cmd->add_option("-t,--threads", args->threads, "worker threads per tensor (default 2)");
  cmd->add_flag("--allow-requantize", args->allow_requantize,
                "accept already-quantized inputs (dequantized, then quantized again)");
  cmd->add_option("--gate-kld", args->gate_kld,
                  "quality gate: evaluate OUT against IN on --eval-text and delete OUT when its "
                  "mean KL divergence exceeds this (nats)");
  cmd->add_option("--gate-top1", args->gate_top1,
                  "quality gate: minimum top-1 agreement with IN (0..1)");
  cmd->add_option("--eval-text", args->eval_text,
                  "text for the quality gate (as thinkmesh eval -f)");
  cmd->add_option("--eval-ctx", args->eval_ctx, "gate evaluation context (default 512)");
  cmd->add_option("--eval-chunks", args->eval_chunks, "gate evaluation chunks (default 0: all)");
  cmd->callback([args] { run_quantize(*args); });
}

}  // namespace thinkmesh::cli
