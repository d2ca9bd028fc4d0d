// `thinkmesh eval`: perplexity of a model on a text, or a candidate (quantized, pruned) against
// its base model: KL divergence, top-1 agreement, Δp, ΔPPL — llama-perplexity's scheme
// (include/thinkmesh/evaluate.h, docs/evaluation.md).
//
//   thinkmesh eval -m model-Q4_0.gguf --base model-F16.gguf -f text.txt --ctx 512
//   thinkmesh eval -m model.gguf -f text.txt                     perplexity only
//   thinkmesh eval ... --json --max-kld 0.01 --min-top1 0.9      gate: exit 1 when exceeded
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>

#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include "commands.h"
#include "thinkmesh/error.h"
#include "thinkmesh/evaluate.h"
#include "thinkmesh/model.h"

namespace thinkmesh::cli {
namespace {

struct EvalArgs {
  std::string model;
  std::string base;
  std::string text_file;
  int32_t ctx = 512;
  int32_t chunks = 0;
  int32_t threads = 0;
  std::string kv = "f16";
  bool json = false;
  double max_kld = -1;
  double min_top1 = -1;
};

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(ErrorKind::not_found, fmt::format("{}: cannot open the text file", path));
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// One progress line on stderr, rewritten in place on a terminal.
std::function<void(const EvalProgress&)> progress_printer(bool with_base) {
  const bool tty = isatty(fileno(stderr)) != 0;
  return [tty, with_base](const EvalProgress& p) {
    std::string line = fmt::format("eval: chunk {}/{}  PPL {:.4f}", p.chunk, p.n_chunks, p.ppl);
    if (with_base) line += fmt::format("  KLD {:.6f}  top-1 {:.4f}", p.kld_mean, p.top1);
    line += fmt::format("  {:.1f} s", p.seconds);
    fmt::print(stderr, "{}{}", tty ? "\r" + line : line, tty && p.chunk < p.n_chunks ? "" : "\n");
    std::fflush(stderr);
  };
}

nlohmann::ordered_json ppl_json(const PerplexityReport& r) {
  nlohmann::ordered_json j;
  j["ppl"] = r.ppl.value;
  j["ppl_unc"] = r.ppl.uncertainty;
  j["mean_nll"] = r.mean_nll;
  j["n_tokens"] = r.n_tokens;
  j["n_chunks"] = r.n_chunks;
  j["n_ctx"] = r.n_ctx;
  j["n_text_tokens"] = r.n_text_tokens;
  return j;
}

nlohmann::ordered_json report_json(const EvalReport& r) {
  nlohmann::ordered_json j;
  j["ppl_base"] = r.base.ppl.value;
  j["ppl_base_unc"] = r.base.ppl.uncertainty;
  j["ppl"] = r.candidate.ppl.value;
  j["ppl_unc"] = r.candidate.ppl.uncertainty;
  j["delta_ppl"] = r.delta_ppl.value;
  j["delta_ppl_unc"] = r.delta_ppl.uncertainty;
  j["ppl_ratio"] = r.ppl_ratio.value;
  j["ppl_ratio_unc"] = r.ppl_ratio.uncertainty;
  j["mean_ln_ppl_ratio"] = r.mean_ln_ppl_ratio.value;
  j["mean_ln_ppl_ratio_unc"] = r.mean_ln_ppl_ratio.uncertainty;
  j["cor_ln_ppl"] = r.cor_ln_ppl;
  j["kld_mean"] = r.kld_mean.value;
  j["kld_mean_unc"] = r.kld_mean.uncertainty;
  j["kld_median"] = r.kld_median;
  j["kld_p90"] = r.kld_p90;
  j["kld_p95"] = r.kld_p95;
  j["kld_p99"] = r.kld_p99;
  j["kld_p99_9"] = r.kld_p99_9;
  j["kld_max"] = r.kld_max;
  j["kld_min"] = r.kld_min;
  j["top1_agreement"] = r.top1_agreement.value;
  j["top1_agreement_unc"] = r.top1_agreement.uncertainty;
  j["rms_dp"] = r.rms_dp.value;
  j["rms_dp_unc"] = r.rms_dp.uncertainty;
  j["mean_dp"] = r.mean_dp.value;
  j["mean_dp_unc"] = r.mean_dp.uncertainty;
  j["max_abs_dp"] = r.max_abs_dp;
  j["n_tokens"] = r.n_tokens;
  j["n_chunks"] = r.n_chunks;
  j["n_ctx"] = r.n_ctx;
  j["n_text_tokens"] = r.base.n_text_tokens;
  return j;
}

void print_report(const EvalReport& r) {
  fmt::print("tokens scored: {} ({} chunks of {}, second half of each)\n", r.n_tokens, r.n_chunks,
             r.n_ctx);
  fmt::print("PPL(base)          : {:12.6f} ± {:.6f}\n", r.base.ppl.value, r.base.ppl.uncertainty);
  fmt::print("PPL(candidate)     : {:12.6f} ± {:.6f}\n", r.candidate.ppl.value,
             r.candidate.ppl.uncertainty);
  fmt::print("ΔPPL               : {:12.6f} ± {:.6f}\n", r.delta_ppl.value,
             r.delta_ppl.uncertainty);
  fmt::print("PPL ratio          : {:12.6f} ± {:.6f}\n", r.ppl_ratio.value,
             r.ppl_ratio.uncertainty);
  fmt::print("Cor(ln PPL)        : {:11.2f}%\n", 100 * r.cor_ln_ppl);
  fmt::print("mean KLD           : {:12.6f} ± {:.6f}\n", r.kld_mean.value, r.kld_mean.uncertainty);
  fmt::print("median / 99% / max : {:.6f} / {:.6f} / {:.6f}\n", r.kld_median, r.kld_p99, r.kld_max);
  fmt::print("top-1 agreement    : {:11.3f}% ± {:.3f}%\n", 100 * r.top1_agreement.value,
             100 * r.top1_agreement.uncertainty);
  fmt::print("RMS Δp             : {:11.3f}% ± {:.3f}%\n", 100 * r.rms_dp.value,
             100 * r.rms_dp.uncertainty);
  fmt::print("mean Δp            : {:11.3f}% ± {:.3f}%  (max |Δp| {:.3f}%)\n",
             100 * r.mean_dp.value, 100 * r.mean_dp.uncertainty, 100 * r.max_abs_dp);
}

void run_eval(const EvalArgs& args) {
  const std::string text = read_text(args.text_file);
  EvalOptions o;
  o.n_ctx = args.ctx;
  o.n_chunks = args.chunks;
  o.n_threads = args.threads;
  if (args.kv == "f32") {
    o.kv_type = KvType::f32;
  } else if (args.kv != "f16") {
    throw Error(ErrorKind::invalid_argument, fmt::format("--kv: '{}' is not f16 or f32", args.kv));
  }
  o.progress = progress_printer(!args.base.empty());
  const auto model = Model::load(args.model);

  if (args.base.empty()) {
    if (args.max_kld >= 0 || args.min_top1 >= 0)
      throw Error(ErrorKind::invalid_argument, "--max-kld / --min-top1 need --base");
    const PerplexityReport r = perplexity(*model, text, o);
    if (args.json) {
      nlohmann::ordered_json j = ppl_json(r);
      j["model"] = args.model;
      j["text"] = args.text_file;
      fmt::print("{}\n", j.dump(1));
    } else {
      fmt::print("tokens scored: {} ({} chunks of {}, second half of each)\n", r.n_tokens,
                 r.n_chunks, r.n_ctx);
      fmt::print("PPL = {:.4f} ± {:.5f}\n", r.ppl.value, r.ppl.uncertainty);
    }
    return;
  }

  const auto base = Model::load(args.base);
  const EvalReport r = evaluate(*model, *base, text, o);
  const std::vector<std::string> failed =
      budget_failures(r, {.max_kld = args.max_kld, .min_top1 = args.min_top1});
  if (args.json) {
    nlohmann::ordered_json j = report_json(r);
    j["model"] = args.model;
    j["base"] = args.base;
    j["text"] = args.text_file;
    if (args.max_kld >= 0) j["max_kld"] = args.max_kld;
    if (args.min_top1 >= 0) j["min_top1"] = args.min_top1;
    j["budget_failures"] = failed;
    fmt::print("{}\n", j.dump(1));
  } else {
    print_report(r);
  }
  std::fflush(stdout);
  if (!failed.empty()) {
    std::string msg = "eval: budget exceeded:";
    for (const auto& f : failed) msg += " " + f + ";";
    msg.pop_back();
    throw Error(ErrorKind::out_of_range, msg);
  }
}

}  // namespace

void register_eval(CLI::App& app) {
  auto args = std::make_shared<EvalArgs>();
  CLI::App* cmd = app.add_subcommand(
      "eval", "Perplexity on a text, or KL divergence / top-1 agreement against a base model");
  cmd->add_option("-m,--model", args->model, "model (the candidate when --base is given)")
      ->required();
  cmd->add_option("--base", args->base, "reference model (e.g. the F16/F32 original)");
  cmd->add_option("-f,--file", args->text_file, "text file to evaluate on")->required();
  cmd->add_option("--ctx", args->ctx, "tokens per chunk (default 512)");
  cmd->add_option("--chunks", args->chunks, "evaluate only the first N chunks (default: all)");
  cmd->add_option("-t,--threads", args->threads, "threads (default: all)");
  cmd->add_option("--kv", args->kv, "KV cache type: f16 (default) or f32");
  cmd->add_flag("--json", args->json, "print one JSON object");
  cmd->add_option("--max-kld", args->max_kld, "fail (exit 1) when the mean KLD exceeds this");
  cmd->add_option("--min-top1", args->min_top1,
                  "fail (exit 1) when top-1 agreement (0..1) is below this");
  cmd->callback([args] { run_eval(*args); });
}

}  // namespace thinkmesh::cli
