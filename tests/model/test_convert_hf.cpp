// `convert` of Hugging Face folders that this test writes from the synthetic GGUF models
// (config.json, model.safetensors or two shards + index, the family's real tokenizer files),
// with llama.cpp's Q/K permutation undone for Llama: converting back must give the source
// model's metadata, tensors, logits and tokenizer (golden ids of its family).
#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "hf_folder_writer.h"
#include "support/fixtures.h"
#include "thinkmesh/batch.h"
#include "thinkmesh/context.h"
#include "thinkmesh/convert.h"
#include "thinkmesh/error.h"
#include "thinkmesh/gguf.h"
#include "thinkmesh/model.h"
#include "thinkmesh/tokenizer.h"

namespace thinkmesh {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

fs::path temp_dir(const std::string& name) {
  const fs::path dir = fs::temp_directory_path() / ("thinkmesh-convert-hf-" + name);
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

std::vector<std::vector<float>> all_logits(const std::string& path,
                                           const std::vector<TokenId>& ids) {
  const auto model = Model::load(path);
  ContextOptions options;
  options.n_ctx = 64;
  options.n_threads = 2;
  Context ctx(model, options);
  Batch batch;
  for (size_t i = 0; i < ids.size(); ++i) batch.add(ids[i], static_cast<int32_t>(i), 0, true);
  ctx.decode(batch);
  std::vector<std::vector<float>> out;
  for (size_t i = 0; i < ids.size(); ++i) {
    const auto l = ctx.logits(static_cast<int32_t>(i));
    out.emplace_back(l.begin(), l.end());
  }
  return out;
}

void expect_same_logits(const std::string& expected_model, const std::string& converted,
                        const std::vector<TokenId>& ids) {
  const auto a = all_logits(expected_model, ids);
  const auto b = all_logits(converted, ids);
  ASSERT_EQ(a.size(), b.size());
  size_t differing = 0;
  for (size_t p = 0; p < a.size(); ++p) {
    ASSERT_EQ(a[p].size(), b[p].size());
    differing += std::memcmp(a[p].data(), b[p].data(), a[p].size() * 4) != 0;
  }
  EXPECT_EQ(differing, 0u) << "positions whose logits are not bit-identical";
  std::cout << "  " << ids.size() << " positions × " << a[0].size()
            << " logits: " << (differing == 0 ? "bit-identical" : "DIFFERENT") << "\n";
}

// The model with every tensor dequantized to F32 and general.file_type 0: what a lossless
// round trip through F32 safetensors must give back.
void write_f32_reference(const gguf::File& src, const std::string& path) {
  gguf::Writer w;
  for (const auto& kv : src.metadata()) w.set(kv.key, kv.value);
  w.set("general.file_type", gguf::Value::u32(0));
  for (const auto& t : src.tensors()) {
    w.add_tensor(t.name, TensorType::F32, t.ne,
                 test::encode_values(test::tensor_values(src, t), "F32"));
  }
  w.write(path);
}

// config.json + safetensors (1 or 2 shards) of a llama/qwen2 GGUF; 2-D weights in `dtype`,
// 1-D ones F32 (so that F16 round trips are exact).
void write_decoder_folder(const gguf::File& src, const fs::path& dir, const std::string& hf_arch,
                          const std::string& dtype, int shards, json extra_config) {
  const std::string a = src.get_string("general.architecture");
  const int64_t n_head = src.get_int(a + ".attention.head_count");
  const int64_t n_head_kv = src.get_int_or(a + ".attention.head_count_kv", n_head);
  json config = {
      {"architectures", {hf_arch}},
      {"hidden_size", src.get_int(a + ".embedding_length")},
      {"intermediate_size", src.get_int(a + ".feed_forward_length")},
      {"num_hidden_layers", src.get_int(a + ".block_count")},
      {"num_attention_heads", n_head},
      {"num_key_value_heads", n_head_kv},
      {"max_position_embeddings", src.get_int(a + ".context_length")},
      {"rope_theta", src.get_float(a + ".rope.freq_base")},
      {"rms_norm_eps", static_cast<double>(static_cast<float>(
                           src.get_float(a + ".attention.layer_norm_rms_epsilon")))},
      {"vocab_size", src.find_tensor("token_embd.weight")->ne[1]},
      {"tie_word_embeddings", src.find_tensor("output.weight") == nullptr},
      {"torch_dtype", dtype == "F16" ? "float16" : "float32"},
  };
  config.update(extra_config);
  std::ofstream(dir / "config.json") << config.dump(2);

  std::vector<test::StEntry> entries;
  for (const auto& t : src.tensors()) {
    std::vector<float> v = test::tensor_values(src, t);
    const bool q = t.name.find(".attn_q.") != std::string::npos;
    const bool k = t.name.find(".attn_k.") != std::string::npos;
    if (a == "llama" && (q || k)) {
      const int64_t rows = t.ne.size() > 1 ? t.ne[1] : t.ne[0];
      const int64_t cols = t.ne.size() > 1 ? t.ne[0] : 1;
      v = test::unpermute_rows(v, rows, cols, q ? n_head : n_head_kv);
    }
    const std::string dt = t.ne.size() == 1 ? "F32" : dtype;
    entries.push_back({test::hf_name(t.name, false), dt,
                       std::vector<int64_t>(t.ne.rbegin(), t.ne.rend()),
                       test::encode_values(v, dt)});
  }
  std::sort(entries.begin(), entries.end(),
            [](const auto& x, const auto& y) { return x.name < y.name; });
  if (shards == 1) {
    test::write_safetensors(dir / "model.safetensors", entries);
    return;
  }
  // Two shards: the first half of the names, then the rest (llama.cpp reads shards in file
  // name order, tensors by name, so the GGUF comes out the same as from one file).
  const size_t half = entries.size() / 2;
  const std::string names[2] = {"model-00001-of-00002.safetensors",
                                "model-00002-of-00002.safetensors"};
  json index = {{"metadata", {{"total_size", 0}}}, {"weight_map", json::object()}};
  for (int s = 0; s < 2; ++s) {
    std::vector<test::StEntry> part(entries.begin() + (s == 0 ? 0 : half),
                                    s == 0 ? entries.begin() + half : entries.end());
    for (const auto& e : part) index["weight_map"][e.name] = names[s];
    test::write_safetensors(dir / names[s], part);
  }
  std::ofstream(dir / "model.safetensors.index.json") << index.dump(2);
}

void copy_into(const fs::path& dir, const std::string& fixture_folder,
               std::initializer_list<const char*> files) {
  for (const char* f : files) {
    const fs::path to = dir / f;
    fs::create_directories(to.parent_path());
    fs::copy_file(test::fixture(fixture_folder + "/" + f), to,
                  fs::copy_options::overwrite_existing);
  }
}

// tokenize.jsonl lines of `vocab`, tokenized by `file`'s tokenizer.
void expect_golden_tokens(const std::string& file, const std::string& vocab) {
  const auto g = gguf::File::open(file);
  const auto tok = Tokenizer::from_gguf(g);
  std::ifstream in(test::fixture("fixtures/golden/tokenize.jsonl"));
  size_t checked = 0, wrong = 0;
  for (std::string line; std::getline(in, line);) {
    const json j = json::parse(line);
    if (j["vocab"] != vocab) continue;
    TokenizeOptions o;
    o.add_special = j["add_special"].get<bool>();
    o.parse_special = j["parse_special"].get<bool>();
    const auto ids = tok->tokenize(j["text"].get<std::string>(), o);
    const auto want = j["ids"].get<std::vector<TokenId>>();
    ++checked;
    if (ids != want) {
      ++wrong;
      ADD_FAILURE() << vocab << ": " << j["text"].dump() << " add_special=" << o.add_special;
    }
  }
  EXPECT_GT(checked, 20u);
  std::cout << "  golden tokenization (" << vocab << "): " << checked - wrong << "/" << checked
            << "\n";
}

// Every key of `expected` but those in `allowed` must be in `converted` with the same value.
void expect_same_metadata(const std::string& expected, const std::string& converted,
                          const std::set<std::string>& allowed) {
  const auto a = gguf::File::open(expected);
  const auto b = gguf::File::open(converted);
  for (const auto& d : test::metadata_differences(a, b)) {
    const std::string key = d.substr(0, d.find(' '));
    std::cout << "  metadata difference: " << d << "\n";
    EXPECT_TRUE(allowed.count(key)) << d;
  }
}

void expect_same_tensors(const std::string& expected, const std::string& converted) {
  const auto a = gguf::File::open(expected);
  const auto b = gguf::File::open(converted);
  EXPECT_EQ(a.tensors().size(), b.tensors().size());
  for (const auto& t : a.tensors()) {
    const auto* u = b.find_tensor(t.name);
    ASSERT_NE(u, nullptr) << t.name;
    EXPECT_EQ(t.type, u->type) << t.name;
    EXPECT_EQ(t.ne, u->ne) << t.name;
    const auto x = a.tensor_data(t), y = b.tensor_data(*u);
    EXPECT_TRUE(x.size() == y.size() && std::memcmp(x.data(), y.data(), x.size()) == 0) << t.name;
  }
}

std::vector<TokenId> prompt_ids(const std::string& model_file, const std::string& text) {
  const auto g = gguf::File::open(model_file);
  return Tokenizer::from_gguf(g)->tokenize(text, {});
}

TEST(ConvertHf, Qwen2RoundTripsOneFileAndTwoShards) {
  const std::string source = "fixtures/models/tiny-qwen2-Q8_0.gguf";
  THINKMESH_REQUIRE_FIXTURE(source);
  THINKMESH_REQUIRE_FIXTURE("models/tokenizers/qwen2/tokenizer.json");
  const fs::path dir = temp_dir("qwen2");
  const auto src = gguf::File::open(test::fixture(source).string());
  const std::string reference = (dir / "reference-f32.gguf").string();
  write_f32_reference(src, reference);
  convert::ConvertOptions options;
  options.type = TensorType::F32;
  options.name = src.get_string("general.name");
  std::string outputs[2];
  for (int shards = 1; shards <= 2; ++shards) {
    const fs::path folder = dir / ("hf" + std::to_string(shards));
    fs::create_directories(folder);
    // Real Qwen2.5 repos put bos_token_id in config.json; the fixture's bos came from there.
    write_decoder_folder(src, folder, "Qwen2ForCausalLM", "F32", shards,
                         {{"bos_token_id", 151643}, {"eos_token_id", 151643}});
    copy_into(folder, "models/tokenizers/qwen2", {"tokenizer.json", "tokenizer_config.json"});
    outputs[shards - 1] = (dir / ("converted" + std::to_string(shards) + ".gguf")).string();
    const auto r = convert::convert_hf(folder.string(), outputs[shards - 1], options);
    EXPECT_EQ(r.architecture, "qwen2");
    EXPECT_EQ(r.n_vocab, 151936u);
  }
  EXPECT_EQ(test::read_file(outputs[0]), test::read_file(outputs[1])) << "one file vs two shards";
  expect_same_metadata(reference, outputs[0], {});
  expect_same_tensors(reference, outputs[0]);
  expect_same_logits(reference, outputs[0], prompt_ids(reference, "The capital of France is"));
  expect_golden_tokens(outputs[0], "qwen2");
  fs::remove_all(dir);
}

TEST(ConvertHf, Llama3UndoesThePermutationAndKeepsTiedEmbeddings) {
  const std::string source = "fixtures/models/tiny-llama3-Q8_0.gguf";
  THINKMESH_REQUIRE_FIXTURE(source);
  THINKMESH_REQUIRE_FIXTURE("models/tokenizers/llama3/tokenizer.json");
  const fs::path dir = temp_dir("llama3");
  const auto src = gguf::File::open(test::fixture(source).string());
  const std::string reference = (dir / "reference-f32.gguf").string();
  write_f32_reference(src, reference);
  const fs::path folder = dir / "hf";
  fs::create_directories(folder);
  write_decoder_folder(src, folder, "LlamaForCausalLM", "F32", 1,
                       {{"bos_token_id", 128000}, {"eos_token_id", 128001}});
  // Its tokenizer.model is a tiktoken file, not SentencePiece: tokenizer.json must be used.
  copy_into(folder, "models/tokenizers/llama3",
            {"tokenizer.json", "tokenizer_config.json", "tokenizer.model"});
  convert::ConvertOptions options;
  options.type = TensorType::F32;
  options.name = src.get_string("general.name");
  const std::string out = (dir / "converted.gguf").string();
  convert::convert_hf(folder.string(), out, options);
  EXPECT_EQ(gguf::File::open(out).find_tensor("output.weight"), nullptr);
  expect_same_metadata(reference, out, {});
  expect_same_tensors(reference, out);
  expect_same_logits(reference, out, prompt_ids(reference, "The capital of France is"));
  expect_golden_tokens(out, "llama3");
  fs::remove_all(dir);
}

TEST(ConvertHf, LlamaSentencePieceF16IsLossless) {
  const std::string source = "fixtures/models/tiny-llama-spm-F16.gguf";
  THINKMESH_REQUIRE_FIXTURE(source);
  THINKMESH_REQUIRE_FIXTURE("models/tokenizers/llama2/tokenizer.model");
  const fs::path dir = temp_dir("llama-spm");
  const auto src = gguf::File::open(test::fixture(source).string());
  const fs::path folder = dir / "hf";
  fs::create_directories(folder);
  write_decoder_folder(src, folder, "LlamaForCausalLM", "F16", 2,
                       {{"bos_token_id", 1}, {"eos_token_id", 2}});
  copy_into(folder, "models/tokenizers/llama2", {"tokenizer.model"});
  std::ofstream(folder / "tokenizer_config.json")
      << R"({"add_bos_token": true, "add_eos_token": false})";
  convert::ConvertOptions options;  // default type: F16
  options.name = src.get_string("general.name");
  const std::string out = (dir / "converted.gguf").string();
  const auto r = convert::convert_hf(folder.string(), out, options);
  EXPECT_EQ(r.type, TensorType::F16);
  // The fixture's unknown_token_id came from a tokenizer.json this folder does not have;
  // llama.cpp (and thinkmesh) default it to 0 for SentencePiece.
  expect_same_metadata(test::fixture(source).string(), out, {"tokenizer.ggml.unknown_token_id"});
  expect_same_tensors(test::fixture(source).string(), out);
  expect_same_logits(test::fixture(source).string(), out,
                     prompt_ids(out, "The capital of France is"));
  expect_golden_tokens(out, "llama-spm");

  // Llama 3.1 rope scaling adds rope_freqs.weight (F32, head_dim / 2 divisors), first.
  json config = json::parse(test::read_file(folder / "config.json"));
  config["rope_scaling"] = {{"rope_type", "llama3"},
                            {"factor", 8.0},
                            {"low_freq_factor", 1.0},
                            {"high_freq_factor", 4.0},
                            {"original_max_position_embeddings", 8192}};
  std::ofstream(folder / "config.json") << config.dump();
  convert::convert_hf(folder.string(), out, options);
  const auto scaled = gguf::File::open(out);
  ASSERT_EQ(scaled.tensors().size(), src.tensors().size() + 1);
  const auto& freqs = scaled.tensors()[0];
  EXPECT_EQ(freqs.name, "rope_freqs.weight");
  EXPECT_EQ(freqs.type, TensorType::F32);
  const int64_t head_dim = 256 / 8;
  ASSERT_EQ(freqs.ne, (std::vector<int64_t>{head_dim / 2}));
  const auto values = test::tensor_values(scaled, freqs);
  for (int64_t i = 0; i < head_dim / 2; ++i) {
    const double wavelen = 2 * M_PI * std::pow(10000.0, 2.0 * i / head_dim);
    const double smooth = (8192 / wavelen - 1) / 3;
    const double want = wavelen < 8192 / 4.0 ? 1
                        : wavelen > 8192     ? 8
                                             : 1 / ((1 - smooth) / 8 + smooth);
    EXPECT_NEAR(values[i], want, 1e-5 * want) << i;
  }
  fs::remove_all(dir);
}

TEST(ConvertHf, BertMiniLmTensorsAndMetadataAreIdentical) {
  const std::string source = "fixtures/models/minilm-shape-F16.gguf";
  const std::string tok = "models/all-MiniLM-L6-v2-tokenizer";
  THINKMESH_REQUIRE_FIXTURE(source);
  THINKMESH_REQUIRE_FIXTURE(tok + "/tokenizer.json");
  const fs::path dir = temp_dir("bert");
  const auto src = gguf::File::open(test::fixture(source).string());
  const fs::path folder = dir / "hf";
  fs::create_directories(folder);
  copy_into(folder, tok,
            {"config.json", "tokenizer.json", "tokenizer_config.json", "modules.json",
             "1_Pooling/config.json"});
  std::vector<test::StEntry> entries;
  for (const auto& t : src.tensors()) {
    const auto bytes = src.tensor_data(t);
    entries.push_back({test::hf_name(t.name, true), std::string(name(t.type)),
                       std::vector<int64_t>(t.ne.rbegin(), t.ne.rend()),
                       std::vector<uint8_t>(bytes.begin(), bytes.end())});
  }
  // Extra tensors a real BertModel checkpoint carries, which llama.cpp drops.
  entries.push_back({"embeddings.position_ids", "F32", {1, 4}, std::vector<uint8_t>(16, 0)});
  entries.push_back({"pooler.dense.weight", "F32", {2, 2}, std::vector<uint8_t>(16, 0)});
  std::sort(entries.begin(), entries.end(),
            [](const auto& x, const auto& y) { return x.name < y.name; });
  test::write_safetensors(folder / "model.safetensors", entries);
  convert::ConvertOptions options;
  options.type = TensorType::F16;
  options.name = src.get_string("general.name");
  const std::string out = (dir / "converted.gguf").string();
  const auto r = convert::convert_hf(folder.string(), out, options);
  EXPECT_EQ(r.architecture, "bert");
  expect_same_metadata(test::fixture(source).string(), out, {});
  expect_same_tensors(test::fixture(source).string(), out);
  expect_golden_tokens(out, "bert-minilm");
  fs::remove_all(dir);
}

TEST(ConvertHf, UnsupportedArchitectureListsTheSupportedOnes) {
  const fs::path dir = temp_dir("unsupported");
  std::ofstream(dir / "config.json") << R"({"architectures": ["GPT2LMHeadModel"], "n_layer": 2})";
  try {
    convert::convert_hf(dir.string(), (dir / "o.gguf").string());
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::unsupported);
    const std::string m = e.what();
    for (const char* s : {"GPT2LMHeadModel", "LlamaForCausalLM", "Qwen2ForCausalLM", "BertModel"}) {
      EXPECT_NE(m.find(s), std::string::npos) << m;
    }
  }
  // Through the CLI: exit status 1 and the same message.
  const std::string cmd = test::thinkmesh_binary().string() + " convert '" + dir.string() +
                          "' -o '" + (dir / "o.gguf").string() + "' 2>&1";
  std::unique_ptr<FILE, int (*)(FILE*)> pipe(popen(cmd.c_str(), "r"), pclose);
  std::string text;
  std::array<char, 4096> buf{};
  for (size_t n; (n = fread(buf.data(), 1, buf.size(), pipe.get())) > 0;)
    text.append(buf.data(), n);
  const int status = pclose(pipe.release());
  EXPECT_NE(status, 0);
  EXPECT_NE(text.find("supported: LlamaForCausalLM"), std::string::npos) << text;
  EXPECT_FALSE(fs::exists(dir / "o.gguf"));
  fs::remove_all(dir);
}

}  // namespace
}  // namespace thinkmesh
