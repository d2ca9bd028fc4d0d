// `thinkmesh tokenize` end to end: --json prints exactly one JSON array equal to the library's
// ids; --no-bos drops the special tokens; --parse-special maps control text to its id; bad
// input exits non-zero with a message.
#include <gtest/gtest.h>

#include <array>
#include <cstdio>
#include <memory>

#include <nlohmann/json.hpp>

#include "support/fixtures.h"
#include "thinkmesh/gguf.h"
#include "thinkmesh/tokenizer.h"

namespace thinkmesh {
namespace {

struct CliResult {
  int status;
  std::string out;  // stdout (stderr goes to the test log)
};

CliResult run(const std::string& args) {
  const std::string cmd = test::thinkmesh_binary().string() + " " + args;
  std::unique_ptr<FILE, int (*)(FILE*)> pipe(popen(cmd.c_str(), "r"), pclose);
  CliResult r{-1, ""};
  std::array<char, 4096> buf{};
  for (size_t n; (n = fread(buf.data(), 1, buf.size(), pipe.get())) > 0;)
    r.out.append(buf.data(), n);
  r.status = pclose(pipe.release());
  return r;
}

// Single-quoted for the shell.
std::string quoted(const std::string& s) {
  std::string out = "'";
  for (const char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

TEST(CliTokenize, JsonIsOneArrayOfTheLibraryIds) {
  const std::string model = "fixtures/models/tiny-qwen2-Q8_0.gguf";
  THINKMESH_REQUIRE_FIXTURE(model);
  const std::string path = test::fixture(model).string();
  const auto tok = Tokenizer::from_gguf(gguf::File::open(path));
  const std::string text = "Hello <|im_start|>user 123 don't";
  for (const bool special : {false, true}) {
    const CliResult r = run("tokenize -m " + quoted(path) + " --json " +
                            (special ? "--parse-special " : "") + quoted(text));
    ASSERT_EQ(r.status, 0);
    const auto j = nlohmann::json::parse(r.out);  // throws unless the whole stdout is JSON
    ASSERT_TRUE(j.is_array());
    TokenizeOptions o;
    o.parse_special = special;
    EXPECT_EQ(j.get<std::vector<TokenId>>(), tok->tokenize(text, o));
  }
}

TEST(CliTokenize, NoBosDropsSpecialTokens) {
  const std::string model = "fixtures/models/minilm-shape-F16.gguf";
  THINKMESH_REQUIRE_FIXTURE(model);
  const std::string path = test::fixture(model).string();
  const auto with = nlohmann::json::parse(run("tokenize -m " + quoted(path) + " --json hello").out);
  const auto without =
      nlohmann::json::parse(run("tokenize -m " + quoted(path) + " --json --no-bos hello").out);
  ASSERT_EQ(with.size(), without.size() + 2);  // [CLS] hello [SEP]
  EXPECT_EQ(with[1], without[0]);
}

TEST(CliTokenize, TextModeListsIdAndPiece) {
  const std::string model = "models/stories260K/stories260K.gguf";
  THINKMESH_REQUIRE_FIXTURE(model);
  const CliResult r = run("tokenize -m " + quoted(test::fixture(model).string()) + " 'Once upon'");
  ASSERT_EQ(r.status, 0);
  EXPECT_EQ(r.out.rfind("1\t\"<s>\"\n", 0), 0u) << r.out;  // BOS first, with its piece
}

TEST(CliTokenize, BadInputExitsNonZero) {
  EXPECT_NE(run("tokenize -m /nonexistent/model.gguf hello 2>/dev/null").status, 0);
  EXPECT_NE(
      run("tokenize -m " + quoted(test::thinkmesh_binary().string()) + " hi 2>/dev/null").status,
      0);
  EXPECT_NE(run("tokenize 2>/dev/null").status, 0);
}

}  // namespace
}  // namespace thinkmesh
