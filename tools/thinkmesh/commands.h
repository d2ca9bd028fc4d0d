// Subcommands of the `thinkmesh` command. Each lives in cmd_<name>.cpp and registers itself
// on the CLI11 app; its callback throws thinkmesh::Error on failure, which main() turns into
// a message on stderr and a non-zero exit code.
#pragma once

#include <CLI/CLI.hpp>

namespace thinkmesh::cli {

void register_inspect(CLI::App& app);          // cmd_inspect.cpp
void register_tokenize(CLI::App& app);         // cmd_tokenize.cpp
void register_logits(CLI::App& app);           // cmd_logits.cpp
void register_run(CLI::App& app);              // cmd_run.cpp
void register_bench(CLI::App& app);            // cmd_bench.cpp
void register_chat(CLI::App& app);             // cmd_chat.cpp
void register_embed(CLI::App& app);            // cmd_embed.cpp (embed, similarity)
void register_convert_wordvec(CLI::App& app);  // cmd_convert_wordvec.cpp
void register_synth(CLI::App& app);            // cmd_synth.cpp
void register_quantize(CLI::App& app);         // cmd_quantize.cpp
void register_calibrate(CLI::App& app);        // cmd_calibrate.cpp
void register_convert(CLI::App& app);          // cmd_convert.cpp
void register_eval(CLI::App& app);             // cmd_eval.cpp
void register_prune(CLI::App& app);            // cmd_prune.cpp

}  // namespace thinkmesh::cli
