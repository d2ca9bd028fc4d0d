// `thinkmesh run`: generate text from a prompt, streaming it to stdout.
//
//   thinkmesh run -m model.gguf -p "Once upon a time" -n 64 --temp 0
//
// Only generated text goes to stdout (the prompt is not echoed); timings go to stderr.
// --chat wraps the prompt in the model's chat template as one user turn.
#include <cstdio>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include <fmt/core.h>

#include "commands.h"
#include "thinkmesh/chat.h"
#include "thinkmesh/context.h"
#include "thinkmesh/error.h"
#include "thinkmesh/generate.h"
#include "thinkmesh/model.h"

namespace thinkmesh::cli {
namespace {

// Resident set size of this process in bytes (VmRSS), 0 when /proc is unavailable.
uint64_t resident_bytes() {
  std::ifstream status("/proc/self/status");
  for (std::string line; std::getline(status, line);) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stoull(line.substr(6)) * 1024;
  }
  return 0;
}

struct RunArgs {
  std::string model;
  std::string prompt;
  std::string prompt_file;
  bool chat = false;
  std::string chat_template;
  std::string system;
  int32_t n_predict = 128;
  int32_t threads = 0;
  int32_t ctx = 0;
  int32_t batch = 512;
  std::vector<std::string> stop;
  SamplerOptions sampling;
};

void run(RunArgs args) {
  std::string prompt = args.prompt;
  if (!args.prompt_file.empty()) {
    std::ifstream in(args.prompt_file, std::ios::binary);
    if (!in)
      throw Error(ErrorKind::not_found,
                  fmt::format("{}: cannot open the prompt file", args.prompt_file));
    prompt.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  const auto model = Model::load(args.model);
  const Tokenizer& tokenizer = model->tokenizer();
  if (args.chat) {
    std::vector<ChatMessage> messages;
    if (!args.system.empty()) messages.push_back({"system", args.system});
    messages.push_back({"user", prompt});
    const std::string& tmpl = model->chat_template();
    const ChatTemplate kind = resolve_chat_template(
        tmpl.empty() ? std::nullopt : std::optional<std::string>(tmpl), args.chat_template);
    prompt = apply_chat_template(kind, messages, /*add_generation_prompt=*/true);
  }
  TokenizeOptions to;
  to.add_special = true;
  to.parse_special = true;
  const std::vector<TokenId> ids = tokenizer.tokenize(prompt, to);

  ContextOptions co;
  co.n_ctx = args.ctx;
  co.n_batch = args.batch;
  co.n_threads = args.threads;
  Context context(model, co);
  Generator generator(context, tokenizer);
  GenerateOptions go;
  go.sampling = args.sampling;
  go.max_tokens = args.n_predict;
  go.stop_strings = args.stop;
  const GenerateResult result = generator.generate(ids, go, [](std::string_view text) {
    std::fwrite(text.data(), 1, text.size(), stdout);
    std::fflush(stdout);
    return true;
  });
  std::fputc('\n', stdout);
  const auto& t = result.timings;
  fmt::print(stderr,
             "\nthinkmesh: prompt {} tokens in {:.3f} s ({:.1f} tokens/s); generated {} tokens "
             "in {:.3f} s ({:.1f} tokens/s); stop: {}; {} threads\n",
             t.prompt_tokens, t.prompt_seconds, t.prompt_tokens_per_second(), t.generated_tokens,
             t.generate_seconds, t.generate_tokens_per_second(), to_string(result.stop_reason),
             context.n_threads());
  constexpr double kMiB = 1024.0 * 1024.0;
  fmt::print(stderr,
             "thinkmesh: memory: model file {:.2f} MiB (mapped), KV cache {:.2f} MiB, "
             "resident {:.2f} MiB\n",
             static_cast<double>(model->info().file_bytes) / kMiB,
             static_cast<double>(context.kv_bytes()) / kMiB,
             static_cast<double>(resident_bytes()) / kMiB);
}

}  // namespace

void register_run(CLI::App& app) {
  auto args = std::make_shared<RunArgs>();
  CLI::App* cmd = app.add_subcommand("run", "Generate text from a prompt (streams to stdout)");
  cmd->add_option("-m,--model", args->model, "GGUF model")->required();
  auto* p = cmd->add_option("-p,--prompt", args->prompt, "prompt text (default: empty, BOS only)");
  cmd->add_option("-f,--file", args->prompt_file, "read the prompt from a file")->excludes(p);
  cmd->add_option("-n,--n-predict", args->n_predict,
                  "tokens to generate (default 128; -1: until EOS)");
  cmd->add_option("--temp", args->sampling.temperature, "temperature (default 0.8; 0: greedy)");
  cmd->add_option("--top-k", args->sampling.top_k, "top-k (default 40; 0: off)");
  cmd->add_option("--top-p", args->sampling.top_p, "top-p (default 0.95; 1: off)");
  cmd->add_option("--min-p", args->sampling.min_p, "min-p (default 0.05; 0: off)");
  cmd->add_option("--repeat-penalty", args->sampling.repeat_penalty,
                  "repetition penalty (default 1: off)");
  cmd->add_option("--presence-penalty", args->sampling.presence_penalty,
                  "presence penalty (default 0)");
  cmd->add_option("--frequency-penalty", args->sampling.frequency_penalty,
                  "frequency penalty (default 0)");
  cmd->add_option("--seed", args->sampling.seed, "random seed (default: random)");
  cmd->add_option("--stop", args->stop, "stop string (repeatable)");
  cmd->add_option("-t,--threads", args->threads, "threads (default: all)");
  cmd->add_option("-c,--ctx", args->ctx, "context size (default: min(training context, 4096))");
  cmd->add_option("-b,--batch", args->batch, "prompt batch size (default 512)");
  cmd->add_flag("--chat", args->chat, "wrap the prompt in the model's chat template");
  cmd->add_option("--chat-template", args->chat_template,
                  "chat template override: " + supported_chat_template_names());
  cmd->add_option("--system", args->system, "system message (with --chat)");
  cmd->callback([args] { run(*args); });
}

}  // namespace thinkmesh::cli
