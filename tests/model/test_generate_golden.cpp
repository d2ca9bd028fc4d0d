// Greedy generation reproduces llama.cpp's (fixtures/golden/generate.jsonl, stories260K F32)
// token for token, through the library's Generator and through `thinkmesh run --temp 0`.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <fstream>
#include <memory>

#include <nlohmann/json.hpp>

#include "support/fixtures.h"
#include "thinkmesh/context.h"
#include "thinkmesh/generate.h"
#include "thinkmesh/model.h"

namespace thinkmesh {
namespace {

std::vector<nlohmann::json> golden_lines() {
  std::vector<nlohmann::json> out;
  std::ifstream in(test::fixture("fixtures/golden/generate.jsonl"));
  for (std::string line; std::getline(in, line);) {
    if (!line.empty()) out.push_back(nlohmann::json::parse(line));
  }
  return out;
}

TEST(GenerateGolden, GreedyIdsMatchLlamaCpp) {
  THINKMESH_SKIP_UNSUPPORTED_ISA();
  THINKMESH_REQUIRE_FIXTURE("fixtures/golden/generate.jsonl");
  const auto lines = golden_lines();
  ASSERT_FALSE(lines.empty());
  for (const auto& g : lines) {
    THINKMESH_REQUIRE_FIXTURE(g.at("model").get<std::string>());
    const auto model = Model::load(test::fixture(g["model"]).string());
    TokenizeOptions to;
    to.parse_special = true;
    const auto prompt = model->tokenizer().tokenize(g.at("prompt_text").get<std::string>(), to);
    ASSERT_EQ(prompt, g.at("prompt_ids").get<std::vector<TokenId>>()) << g["prompt_text"];
    ContextOptions co;
    co.n_ctx = g.at("n_ctx").get<int32_t>();
    co.n_threads = 2;
    Context ctx(model, co);
    Generator gen(ctx, model->tokenizer());
    GenerateOptions go;
    go.sampling.temperature = 0;
    go.max_tokens = g.at("n_predict").get<int32_t>();
    const GenerateResult r = gen.generate(prompt, go);
    EXPECT_EQ(r.tokens, g.at("ids").get<std::vector<TokenId>>()) << "prompt " << g["prompt_text"];
    EXPECT_EQ(r.text, g.at("text").get<std::string>());
  }
}

TEST(GenerateGolden, RunCommandPrintsTheGoldenText) {
  THINKMESH_SKIP_UNSUPPORTED_ISA();
  THINKMESH_REQUIRE_FIXTURE("fixtures/golden/generate.jsonl");
  const auto g = golden_lines().at(1);
  const std::string cmd = test::thinkmesh_binary().string() + " run -m '" +
                          test::fixture(g["model"]).string() + "' -p '" +
                          g["prompt_text"].get<std::string>() + "' --temp 0 -n " +
                          std::to_string(g["n_predict"].get<int>()) + " 2>/dev/null";
  std::unique_ptr<FILE, int (*)(FILE*)> pipe(popen(cmd.c_str(), "r"), pclose);
  std::string out;
  std::array<char, 4096> buf{};
  for (size_t n; (n = fread(buf.data(), 1, buf.size(), pipe.get())) > 0;) out.append(buf.data(), n);
  EXPECT_EQ(pclose(pipe.release()), 0);
  EXPECT_EQ(out, g["text"].get<std::string>() + "\n");  // the prompt is not echoed
}

TEST(ChatCommand, TwoTurnsThenEndOfInput) {
  THINKMESH_SKIP_UNSUPPORTED_ISA();
  const std::string model = "fixtures/models/tiny-qwen2-Q8_0.gguf";
  THINKMESH_REQUIRE_FIXTURE(model);
  const std::string cmd = "printf 'Hello\\nAgain\\n' | " + test::thinkmesh_binary().string() +
                          " chat -m '" + test::fixture(model).string() +
                          "' -n 4 --temp 0 -t 1 2>/dev/null";
  std::unique_ptr<FILE, int (*)(FILE*)> pipe(popen(cmd.c_str(), "r"), pclose);
  std::string out;
  std::array<char, 4096> buf{};
  for (size_t n; (n = fread(buf.data(), 1, buf.size(), pipe.get())) > 0;) out.append(buf.data(), n);
  EXPECT_EQ(pclose(pipe.release()), 0);
  EXPECT_EQ(std::count(out.begin(), out.end(), '\n'), 2) << out;  // one reply line per turn
}

}  // namespace
}  // namespace thinkmesh
