// Tokenizers against llama.cpp c392e50, on every vocabulary the fixtures hold:
//   (a) fixtures/golden/tokenize.jsonl — llama-tokenize output (parse_special = true),
//   (b) llama.cpp's own test vectors models/tokenizers/llama.cpp-vocab/*.inp / *.out
//       (tests/test-tokenizer-0.cpp: add_special = false, parse_special = false),
//   (c) detokenize(tokenize(text)) == text for the SentencePiece and BPE vocabularies,
//   (d) hostile input: invalid UTF-8 and 1 MB of random bytes give in-range ids,
// plus the BERT vocab.txt path giving the same ids as the GGUF one.
#include <gtest/gtest.h>

#include <cctype>
#include <fstream>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>

#include "support/fixtures.h"
#include "thinkmesh/error.h"
#include "thinkmesh/gguf.h"
#include "thinkmesh/tokenizer.h"
#include "tokenizer/families.h"
#include "tokenizer/vocab.h"

namespace thinkmesh {
namespace {

using test::fixture;

constexpr const char* kGolden = "fixtures/golden/tokenize.jsonl";
constexpr const char* kVocabDir = "models/tokenizers/llama.cpp-vocab";

// A tokenizer per (file, pre-tokenizer override), loaded once; a load failure is kept as text
// so each test reports it.
struct Loaded {
  std::unique_ptr<Tokenizer> tokenizer;
  std::string error;
};

const Loaded& load(const std::string& relative, const std::string& pre_override = "") {
  static std::map<std::string, Loaded> cache;
  const std::string key = relative + "|" + pre_override;
  auto it = cache.find(key);
  if (it != cache.end()) return it->second;
  Loaded loaded;
  try {
    const gguf::File file = gguf::File::open(fixture(relative).string());
    if (pre_override.empty()) {
      loaded.tokenizer = Tokenizer::from_gguf(file);
    } else {
      tokenizer::Vocab vocab = tokenizer::vocab_from_gguf(file);
      vocab.pre = pre_override;
      loaded.tokenizer = tokenizer::make_bpe_tokenizer(std::move(vocab));
    }
  } catch (const std::exception& e) {
    loaded.error = e.what();
  }
  return cache.emplace(key, std::move(loaded)).first->second;
}

// A parameter as a test name: letters and digits, '_' for the rest.
std::string test_name(std::string s) {
  for (char& c : s) c = std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
  return s;
}

std::string ids_to_string(const std::vector<TokenId>& ids) {
  std::string s = "[";
  for (size_t i = 0; i < ids.size(); ++i) s += (i ? ", " : "") + std::to_string(ids[i]);
  return s + "]";
}

struct GoldenLine {
  std::string vocab, vocab_file, text;
  bool add_special = false, parse_special = true;
  std::vector<TokenId> ids;
};

std::vector<GoldenLine> golden_lines() {
  std::vector<GoldenLine> lines;
  std::ifstream in(fixture(kGolden));
  for (std::string line; std::getline(in, line);) {
    if (line.empty()) continue;
    const auto j = nlohmann::json::parse(line);
    lines.push_back({j.at("vocab"), j.at("vocab_file"), j.at("text"), j.at("add_special"),
                     j.at("parse_special"), j.at("ids").get<std::vector<TokenId>>()});
  }
  return lines;
}

// ---- (a) tokenize.jsonl, one test per vocabulary ----

const std::vector<std::string> kGoldenVocabs = {"llama-spm", "qwen2", "llama3",
                                                "bert-minilm", "gpt-2", "phi-3"};

TEST(TokenizerGolden, EveryVocabularyInTheGoldenFileIsTested) {
  THINKMESH_REQUIRE_FIXTURE(kGolden);
  std::set<std::string> seen;
  for (const auto& l : golden_lines()) seen.insert(l.vocab);
  EXPECT_EQ(seen, std::set<std::string>(kGoldenVocabs.begin(), kGoldenVocabs.end()));
}

class GoldenVocab : public ::testing::TestWithParam<std::string> {};

TEST_P(GoldenVocab, MatchesLlamaTokenize) {
  THINKMESH_REQUIRE_FIXTURE(kGolden);
  size_t checked = 0, failed = 0;
  std::string first_failure;
  for (const auto& l : golden_lines()) {
    if (l.vocab != GetParam()) continue;
    THINKMESH_REQUIRE_FIXTURE(l.vocab_file);
    const Loaded& loaded = load(l.vocab_file);
    ASSERT_TRUE(loaded.tokenizer) << l.vocab_file << ": " << loaded.error;
    TokenizeOptions options;
    options.add_special = l.add_special;
    options.parse_special = l.parse_special;
    const auto ids = loaded.tokenizer->tokenize(l.text, options);
    ++checked;
    if (ids != l.ids && failed++ == 0) {
      first_failure = "text " + nlohmann::json(l.text).dump() +
                      " add_special=" + std::to_string(l.add_special) +
                      "\n  expected " + ids_to_string(l.ids) + "\n  got      " + ids_to_string(ids);
    }
  }
  EXPECT_GT(checked, 0u);
  EXPECT_EQ(failed, 0u) << failed << " of " << checked << " lines differ; first:\n" << first_failure;
}

INSTANTIATE_TEST_SUITE_P(Vocabs, GoldenVocab, ::testing::ValuesIn(kGoldenVocabs),
                         [](const auto& p) { return test_name(p.param); });

// ---- (b) llama.cpp's test vectors ----

struct VectorSet {
  std::string name;        // ggml-vocab-<name>.gguf.inp / .out
  std::string vocab_file;  // the GGUF holding that vocabulary
  std::string pre;         // pre-tokenizer override ("" = the file's)
};

void PrintTo(const VectorSet& set, std::ostream* os) { *os << set.name; }

// qwen2, llama-bpe and deepseek-r1-qwen have vectors but no vocab GGUF: the synthetic models
// carry the same vocabularies (deepseek-r1-qwen is Qwen2's with its own pre-tokenizer name).
const std::vector<VectorSet> kVectorSets = {
    {"llama-spm", std::string(kVocabDir) + "/ggml-vocab-llama-spm.gguf", ""},
    {"phi-3", std::string(kVocabDir) + "/ggml-vocab-phi-3.gguf", ""},
    {"bert-bge", std::string(kVocabDir) + "/ggml-vocab-bert-bge.gguf", ""},
    {"gpt-2", std::string(kVocabDir) + "/ggml-vocab-gpt-2.gguf", ""},
    {"qwen2", "fixtures/models/tiny-qwen2-Q8_0.gguf", ""},
    {"llama-bpe", "fixtures/models/tiny-llama3-Q8_0.gguf", ""},
    {"deepseek-r1-qwen", "fixtures/models/tiny-qwen2-Q8_0.gguf", "deepseek-r1-qwen"},
};

// The .inp cases are separated by "\n__ggml_vocab_test__\n"; .out has one line of
// space-separated ids per case (test-tokenizer-0.cpp's read_tests).
std::vector<std::pair<std::string, std::vector<TokenId>>> read_vectors(const std::string& name) {
  const std::string base = std::string(kVocabDir) + "/ggml-vocab-" + name + ".gguf";
  const std::string inp = test::read_file(fixture(base + ".inp"));
  const std::string sep = "\n__ggml_vocab_test__\n";
  std::vector<std::string> texts;
  for (size_t pos = 0; pos < inp.size();) {
    const size_t next = inp.find(sep, pos);
    if (next == std::string::npos) {
      texts.push_back(inp.substr(pos));
      break;
    }
    texts.push_back(inp.substr(pos, next - pos));
    pos = next + sep.size();
  }
  std::vector<std::vector<TokenId>> outs;
  std::ifstream out(fixture(base + ".out"));
  for (std::string line; std::getline(out, line);) {
    std::istringstream ss(line);
    std::vector<TokenId> ids;
    for (TokenId id; ss >> id;) ids.push_back(id);
    outs.push_back(ids);
  }
  std::vector<std::pair<std::string, std::vector<TokenId>>> cases;
  if (texts.size() != outs.size()) return cases;
  for (size_t i = 0; i < texts.size(); ++i) cases.emplace_back(texts[i], outs[i]);
  return cases;
}

TEST(TokenizerVectors, EveryVectorFileIsTested) {
  THINKMESH_REQUIRE_FIXTURE(kVocabDir);
  std::set<std::string> files, tested;
  for (const auto& entry : std::filesystem::directory_iterator(fixture(kVocabDir))) {
    const std::string name = entry.path().filename().string();
    if (name.ends_with(".gguf.inp")) files.insert(name.substr(11, name.size() - 11 - 9));
  }
  for (const auto& set : kVectorSets) tested.insert(set.name);
  EXPECT_EQ(files, tested);
}

class VectorFile : public ::testing::TestWithParam<VectorSet> {};

TEST_P(VectorFile, MatchesLlamaCppTestVectors) {
  const VectorSet& set = GetParam();
  THINKMESH_REQUIRE_FIXTURE(std::string(kVocabDir) + "/ggml-vocab-" + set.name + ".gguf.inp");
  THINKMESH_REQUIRE_FIXTURE(set.vocab_file);
  const auto cases = read_vectors(set.name);
  ASSERT_FALSE(cases.empty()) << set.name << ": .inp and .out do not pair up";
  const Loaded& loaded = load(set.vocab_file, set.pre);
  ASSERT_TRUE(loaded.tokenizer) << set.vocab_file << ": " << loaded.error;
  TokenizeOptions options;
  options.add_special = false;
  options.parse_special = false;
  size_t failed = 0;
  std::string first_failure;
  for (const auto& [text, expected] : cases) {
    const auto ids = loaded.tokenizer->tokenize(text, options);
    if (ids != expected && failed++ == 0) {
      first_failure = "text " + nlohmann::json(text).dump() + "\n  expected " +
                      ids_to_string(expected) + "\n  got      " + ids_to_string(ids);
    }
  }
  EXPECT_EQ(failed, 0u) << failed << " of " << cases.size() << " cases differ; first:\n"
                        << first_failure;
}

INSTANTIATE_TEST_SUITE_P(LlamaCpp, VectorFile, ::testing::ValuesIn(kVectorSets),
                         [](const auto& p) { return test_name(p.param.name); });

// ---- (c) round trip ----

// clean_up_tokenization_spaces (gpt-2, llama3) deletes the space in " ." " ," " ?" " !" " 's"
// " 'm" " 're" " 've" and around " ' ": llama.cpp does not round-trip such text either.
bool cleaned_by_detokenize(const std::string& text) {
  for (const char* p : {" .", " ,", " ?", " !", " 's", " 'm", " 're", " 've", " ' "}) {
    if (text.find(p) != std::string::npos) return true;
  }
  return false;
}

class RoundTrip : public ::testing::TestWithParam<std::string> {};

TEST_P(RoundTrip, DetokenizeInvertsTokenize) {
  THINKMESH_REQUIRE_FIXTURE(kGolden);
  std::set<std::string> texts;
  std::string vocab_file;
  for (const auto& l : golden_lines()) {
    if (l.vocab != GetParam()) continue;
    vocab_file = l.vocab_file;
    // Skip the special-token string: its tokens do not render as text.
    if (l.text.find("<s>") == std::string::npos) texts.insert(l.text);
  }
  ASSERT_FALSE(texts.empty());
  THINKMESH_REQUIRE_FIXTURE(vocab_file);
  const Loaded& loaded = load(vocab_file);
  ASSERT_TRUE(loaded.tokenizer) << vocab_file << ": " << loaded.error;
  const auto& tok = *loaded.tokenizer;
  const bool cleans = GetParam() == "gpt-2" || GetParam() == "llama3";
  size_t checked = 0;
  for (const auto& text : texts) {
    if (cleans && cleaned_by_detokenize(text)) continue;
    TokenizeOptions options;
    options.add_special = false;
    const auto ids = tok.tokenize(text, options);
    EXPECT_EQ(tok.detokenize(ids), text) << "ids " << ids_to_string(ids);
    ++checked;
  }
  EXPECT_GT(checked, 10u);
}

INSTANTIATE_TEST_SUITE_P(Vocabs, RoundTrip,
                         ::testing::Values("llama-spm", "phi-3", "qwen2", "llama3", "gpt-2"),
                         [](const auto& p) { return test_name(p.param); });

// ---- (d) hostile input ----

class HostileInput : public ::testing::TestWithParam<std::string> {};

TEST_P(HostileInput, InvalidUtf8AndRandomBytesGiveIdsInRange) {
  const std::string& vocab_file = GetParam();
  THINKMESH_REQUIRE_FIXTURE(vocab_file);
  const Loaded& loaded = load(vocab_file);
  ASSERT_TRUE(loaded.tokenizer) << vocab_file << ": " << loaded.error;
  const auto& tok = *loaded.tokenizer;

  std::vector<std::string> inputs = {
      "\xFF", "\xC3", "a\x80z", "\xE2\x82", "\xF0\x9F\x98", "\xED\xA0\x80", "\xF8\x88\x80\x80\x80",
      std::string("nul\0inside", 10), "\xC3\x28 \xA0\xA1 \xE2\x28\xA1 \xF0\x28\x8C\x28"};
  std::mt19937_64 rng(20250301);
  std::string random(1 << 20, '\0');
  for (char& c : random) c = static_cast<char>(rng() & 0xFF);
  inputs.push_back(random);

  for (const auto& input : inputs) {
    for (bool parse_special : {false, true}) {
      TokenizeOptions options;
      options.parse_special = parse_special;
      std::vector<TokenId> ids;
      ASSERT_NO_THROW(ids = tok.tokenize(input, options)) << "input of " << input.size() << " bytes";
      for (TokenId id : ids) {
        ASSERT_GE(id, 0);
        ASSERT_LT(static_cast<size_t>(id), tok.vocab_size());
      }
      EXPECT_NO_THROW(tok.detokenize(ids));
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Vocabs, HostileInput,
                         ::testing::Values("fixtures/models/tiny-llama-spm-F16.gguf",
                                           "fixtures/models/minilm-shape-F16.gguf",
                                           "fixtures/models/tiny-qwen2-Q8_0.gguf",
                                           "fixtures/models/tiny-llama3-Q8_0.gguf",
                                           std::string(kVocabDir) + "/ggml-vocab-phi-3.gguf"));

// ---- BERT vocab.txt ----

TEST(BertVocabTxt, SameIdsAsTheGgufVocabulary) {
  const std::string vocab_txt = "models/all-MiniLM-L6-v2-tokenizer/vocab.txt";
  const std::string gguf_file = "fixtures/models/minilm-shape-F16.gguf";
  THINKMESH_REQUIRE_FIXTURE(vocab_txt);
  THINKMESH_REQUIRE_FIXTURE(gguf_file);
  THINKMESH_REQUIRE_FIXTURE(kGolden);
  const auto from_txt = Tokenizer::from_bert_vocab(fixture(vocab_txt).string());
  const Loaded& loaded = load(gguf_file);
  ASSERT_TRUE(loaded.tokenizer) << loaded.error;
  ASSERT_EQ(from_txt->vocab_size(), loaded.tokenizer->vocab_size());
  for (TokenId id = 0; id < static_cast<TokenId>(from_txt->vocab_size()); ++id) {
    ASSERT_EQ(from_txt->token_text(id), loaded.tokenizer->token_text(id)) << "id " << id;
    ASSERT_EQ(from_txt->token_kind(id), loaded.tokenizer->token_kind(id)) << "id " << id;
  }
  size_t checked = 0;
  for (const auto& l : golden_lines()) {
    if (l.vocab != "bert-minilm") continue;
    TokenizeOptions options;
    options.add_special = l.add_special;
    options.parse_special = l.parse_special;
    EXPECT_EQ(from_txt->tokenize(l.text, options), l.ids) << nlohmann::json(l.text).dump();
    ++checked;
  }
  EXPECT_GT(checked, 0u);
}

}  // namespace
}  // namespace thinkmesh
