// thinkmesh — run language models on local hardware. See `thinkmesh --help`.
#include <cstdio>
#include <exception>

#include <fmt/core.h>
#include <CLI/CLI.hpp>

#include "commands.h"
#include "thinkmesh/error.h"

int main(int argc, char** argv) {
  CLI::App app{"thinkmesh: run language models on your own hardware"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "thinkmesh 0.1.0");

  // Subcommands (one cmd_<name>.cpp each):
  thinkmesh::cli::register_inspect(app);
  thinkmesh::cli::register_tokenize(app);
  thinkmesh::cli::register_logits(app);
  thinkmesh::cli::register_run(app);
  thinkmesh::cli::register_bench(app);
  thinkmesh::cli::register_chat(app);
  thinkmesh::cli::register_embed(app);
  thinkmesh::cli::register_convert_wordvec(app);
  thinkmesh::cli::register_synth(app);
  thinkmesh::cli::register_quantize(app);
  thinkmesh::cli::register_calibrate(app);
  thinkmesh::cli::register_convert(app);
  thinkmesh::cli::register_eval(app);
  thinkmesh::cli::register_prune(app);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const thinkmesh::Error& e) {
    fmt::print(stderr, "thinkmesh: error: {}\n", e.what());
    return 1;
  } catch (const std::exception& e) {
    fmt::print(stderr, "thinkmesh: error: {}\n", e.what());
    return 1;
  }
  return 0;
}
