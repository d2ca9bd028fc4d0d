// `thinkmesh chat`: an interactive conversation that stays in the KV cache.
//
//   thinkmesh chat -m model.gguf [--system TEXT] [--chat-template NAME] [sampling options]
//
// Each line read from stdin is a user turn; the reply streams to stdout. The whole
// conversation is re-rendered with the chat template each turn, and the Generator decodes only
// the tokens the cache does not already hold. Commands: /reset (forget the conversation),
// /exit (or end of input).
#include <cstdio>
#include <iostream>
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

struct ChatArgs {
  std::string model;
  std::string system;
  std::string chat_template;
  int32_t n_predict = 512;
  int32_t threads = 0;
  int32_t ctx = 0;
  SamplerOptions sampling;
};

void run_chat(const ChatArgs& args) {
  const auto model = Model::load(args.model);
  const Tokenizer& tokenizer = model->tokenizer();
  const std::string& tmpl = model->chat_template();
  const ChatTemplate kind = resolve_chat_template(
      tmpl.empty() ? std::nullopt : std::optional<std::string>(tmpl), args.chat_template);
  ContextOptions co;
  co.n_ctx = args.ctx;
  co.n_threads = args.threads;
  Context context(model, co);
  Generator generator(context, tokenizer);
  GenerateOptions go;
  go.sampling = args.sampling;
  go.max_tokens = args.n_predict;

  std::vector<ChatMessage> messages;
  if (!args.system.empty()) messages.push_back({"system", args.system});
  fmt::print(stderr, "thinkmesh chat: {} ({} template). /reset forgets, /exit quits.\n",
             model->info().name, name(kind));
  std::string line;
  while (true) {
    fmt::print(stderr, "> ");
    if (!std::getline(std::cin, line) || line == "/exit") break;
    if (line == "/reset") {
      messages.resize(args.system.empty() ? 0 : 1);
      generator.clear();
      continue;
    }
    if (line.empty()) continue;
    messages.push_back({"user", line});
    const std::string prompt = apply_chat_template(kind, messages, /*add_generation_prompt=*/true);
    TokenizeOptions to;
    to.add_special = true;
    to.parse_special = true;
    const auto ids = tokenizer.tokenize(prompt, to);
    GenerateResult r;
    try {
      r = generator.generate(ids, go, [](std::string_view text) {
        std::fwrite(text.data(), 1, text.size(), stdout);
        std::fflush(stdout);
        return true;
      });
    } catch (const Error& e) {
      if (e.kind() != ErrorKind::out_of_range) throw;
      fmt::print(stderr, "\nthinkmesh chat: {}; the conversation was reset\n", e.what());
      messages.resize(args.system.empty() ? 0 : 1);
      generator.clear();
      continue;
    }
    std::fputc('\n', stdout);
    messages.push_back({"assistant", r.text});
    fmt::print(stderr, "[{} tokens, {:.1f} tokens/s, stop: {}]\n", r.timings.generated_tokens,
               r.timings.generate_tokens_per_second(), to_string(r.stop_reason));
  }
}

}  // namespace

void register_chat(CLI::App& app) {
  auto args = std::make_shared<ChatArgs>();
  CLI::App* cmd =
      app.add_subcommand("chat", "Interactive chat; the conversation stays in the KV cache");
  cmd->add_option("-m,--model", args->model, "GGUF model")->required();
  cmd->add_option("--system", args->system, "system message");
  cmd->add_option("--chat-template", args->chat_template,
                  "chat template override: " + supported_chat_template_names());
  cmd->add_option("-n,--n-predict", args->n_predict, "max tokens per reply (default 512)");
  cmd->add_option("--temp", args->sampling.temperature, "temperature (default 0.8; 0: greedy)");
  cmd->add_option("--top-k", args->sampling.top_k, "top-k (default 40)");
  cmd->add_option("--top-p", args->sampling.top_p, "top-p (default 0.95)");
  cmd->add_option("--min-p", args->sampling.min_p, "min-p (default 0.05)");
  cmd->add_option("--repeat-penalty", args->sampling.repeat_penalty,
                  "repetition penalty (default 1)");
  cmd->add_option("--seed", args->sampling.seed, "random seed (default: random)");
  cmd->add_option("-t,--threads", args->threads, "threads (default: all)");
  cmd->add_option("-c,--ctx", args->ctx, "context size (default: min(training context, 4096))");
  cmd->callback([args] { run_chat(*args); });
}

}  // namespace thinkmesh::cli
