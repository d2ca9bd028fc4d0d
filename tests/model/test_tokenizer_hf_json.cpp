// The Hugging Face tokenizer.json path gives the same ids as the GGUF path for the same
// vocabulary: every golden text of that vocabulary, llama.cpp's test vectors, and the first
// 20 KB of eval/prose.txt, with and without special tokens.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "support/fixtures.h"
#include "thinkmesh/error.h"
#include "thinkmesh/gguf.h"
#include "thinkmesh/tokenizer.h"

namespace thinkmesh {
namespace {

struct Pair {
  std::string name;
  std::string tokenizer_json;  // relative to the fixtures folder
  std::string config_json;     // tokenizer_config.json, "" when none
  std::string gguf;            // a GGUF with the same vocabulary
  std::string golden_vocab;    // its name in tokenize.jsonl ("" when none)
};

void PrintTo(const Pair& p, std::ostream* os) {
  *os << p.name;
}

const std::vector<Pair> kPairs = {
    {"llama3", "models/tokenizers/llama3/tokenizer.json",
     "models/tokenizers/llama3/tokenizer_config.json", "fixtures/models/tiny-llama3-Q8_0.gguf",
     "llama3"},
    {"qwen2", "models/tokenizers/qwen2/tokenizer.json",
     "models/tokenizers/qwen2/tokenizer_config.json", "fixtures/models/tiny-qwen2-Q8_0.gguf",
     "qwen2"},
    {"minilm", "models/all-MiniLM-L6-v2-tokenizer/tokenizer.json",
     "models/all-MiniLM-L6-v2-tokenizer/tokenizer_config.json",
     "fixtures/models/minilm-shape-F16.gguf", "bert-minilm"},
};

std::vector<std::string> texts_for(const Pair& p) {
  std::vector<std::string> texts;
  std::ifstream golden(test::fixture("fixtures/golden/tokenize.jsonl"));
  for (std::string line; std::getline(golden, line);) {
    const auto j = nlohmann::json::parse(line);
    if (j.value("vocab", "") == p.golden_vocab) texts.push_back(j.at("text").get<std::string>());
  }
  std::ifstream prose(test::fixture("eval/prose.txt"), std::ios::binary);
  std::string data((std::istreambuf_iterator<char>(prose)), std::istreambuf_iterator<char>());
  texts.push_back(data.substr(0, 20000));
  texts.push_back(
      "Hello <|im_start|>user\nHi [CLS] <|begin_of_text|> 12345 don't ÉCOLE 你好 \xF0\x9F\x98\x81");
  return texts;
}

class HfJson : public ::testing::TestWithParam<Pair> {};

TEST_P(HfJson, SameIdsAsTheGgufVocabulary) {
  const Pair& p = GetParam();
  THINKMESH_REQUIRE_FIXTURE(p.tokenizer_json);
  THINKMESH_REQUIRE_FIXTURE(p.gguf);
  const auto from_json =
      Tokenizer::from_hf_json(test::fixture(p.tokenizer_json).string(),
                              p.config_json.empty() ? "" : test::fixture(p.config_json).string());
  const auto file = gguf::File::open(test::fixture(p.gguf).string());
  const auto from_gguf = Tokenizer::from_gguf(file);
  EXPECT_EQ(from_json->family(), from_gguf->family());
  const auto texts = texts_for(p);
  ASSERT_GT(texts.size(), 2u);
  size_t compared = 0;
  for (const auto& text : texts) {
    for (const bool add_special : {false, true}) {
      for (const bool parse_special : {false, true}) {
        TokenizeOptions o;
        o.add_special = add_special;
        o.parse_special = parse_special;
        EXPECT_EQ(from_json->tokenize(text, o), from_gguf->tokenize(text, o))
            << p.name << " add_special=" << add_special << " parse_special=" << parse_special
            << " text: " << nlohmann::json(text.substr(0, 200)).dump();
        ++compared;
      }
    }
  }
  EXPECT_EQ(compared, texts.size() * 4);
}

INSTANTIATE_TEST_SUITE_P(Vocabs, HfJson, ::testing::ValuesIn(kPairs),
                         [](const auto& p) { return p.param.name; });

TEST(HfJsonErrors, BadFilesGiveClearErrors) {
  const auto dir = std::filesystem::temp_directory_path() / "thinkmesh_hf_json_test";
  std::filesystem::create_directories(dir);
  auto write = [&](const std::string& name, const std::string& body) {
    std::ofstream(dir / name) << body;
    return (dir / name).string();
  };
  auto message = [](const std::string& path) -> std::string {
    try {
      Tokenizer::from_hf_json(path);
    } catch (const Error& e) {
      return e.what();
    }
    return "no error";
  };
  EXPECT_NE(message(write("bad.json", "{not json")).find("not valid JSON"), std::string::npos);
  EXPECT_NE(message(write("nomodel.json", "{}")).find("no \"model\""), std::string::npos);
  EXPECT_NE(message(write("unigram.json", R"({"model":{"type":"Unigram"}})")).find("Unigram"),
            std::string::npos);
  EXPECT_NE(message(write("weird.json", R"({"model":{"type":"WordPiece","vocab":{"a":"x"}}})"))
                .find("unexpected structure"),
            std::string::npos);
  EXPECT_NE(message((dir / "missing.json").string()).find("cannot open"), std::string::npos);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace thinkmesh
