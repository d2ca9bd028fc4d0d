// `thinkmesh inspect --json` on every GGUF under the shared models/ and fixtures/models/
// folders: it must succeed and report what the file holds. Files described in
// fixtures/models/models.json are compared field by field (version, alignment, data offset,
// every metadata key's type and value, every tensor's name, type, shape, size and offset, and
// the sha256 of each tensor's bytes as the reader maps them); the others are compared with the
// reader's own view, so a formatting bug in the command cannot hide.
#include <gtest/gtest.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>

#include <nlohmann/json.hpp>

#include "support/fixtures.h"
#include "support/sha256.h"
#include "thinkmesh/gguf.h"

namespace thinkmesh {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

json inspect_json(const fs::path& file) {
  const std::string cmd =
      test::thinkmesh_binary().string() + " inspect --json '" + file.string() + "'";
  std::unique_ptr<FILE, int (*)(FILE*)> pipe(popen(cmd.c_str(), "r"), pclose);
  std::string out;
  std::array<char, 65536> buf{};
  for (size_t n; (n = fread(buf.data(), 1, buf.size(), pipe.get())) > 0;) out.append(buf.data(), n);
  const int status = pclose(pipe.release());
  EXPECT_EQ(status, 0) << cmd;
  return json::parse(out);
}

std::vector<fs::path> all_ggufs() {
  std::vector<fs::path> files;
  for (const char* dir : {"models", "fixtures/models"}) {
    const fs::path root = test::fixture(dir);
    if (!fs::exists(root)) continue;
    for (const auto& e : fs::recursive_directory_iterator(root)) {
      if (e.is_regular_file() && e.path().extension() == ".gguf") files.push_back(e.path());
    }
  }
  std::sort(files.begin(), files.end());
  return files;
}

// models.json's "type" of a value: "uint32", "array[string]", ...
std::string reference_type(const json& ours) {
  const std::string t = ours.at("type");
  return t == "array" ? "array[" + ours.at("element_type").get<std::string>() + "]" : t;
}

TEST(Inspect, EveryFixtureGgufMatchesModelsJson) {
  THINKMESH_REQUIRE_FIXTURE("fixtures/models/models.json");
  std::ifstream in(test::fixture("fixtures/models/models.json"));
  const json reference = json::parse(in);
  std::map<std::string, json> by_file;
  for (const auto& m : reference.at("models")) by_file[m.at("file")] = m;

  const auto files = all_ggufs();
  ASSERT_GE(files.size(), by_file.size());
  size_t compared_with_reference = 0;
  for (const auto& path : files) {
    SCOPED_TRACE(path.string());
    const json ours = inspect_json(path);
    const auto file = gguf::File::open(path.string());
    const std::string relative = fs::relative(path, test::fixtures_dir()).generic_string();
    const auto it = by_file.find(relative);
    if (it == by_file.end()) {
      // Not described: the command must agree with the reader.
      EXPECT_EQ(ours.at("tensors").size(), file.tensors().size());
      EXPECT_EQ(ours.at("metadata").size(), file.metadata().size());
      for (size_t i = 0; i < file.tensors().size(); ++i) {
        const auto& t = file.tensors()[i];
        EXPECT_EQ(ours["tensors"][i]["name"], t.name);
        EXPECT_EQ(ours["tensors"][i]["type"], std::string(name(t.type)));
        EXPECT_EQ(ours["tensors"][i]["ne"].get<std::vector<int64_t>>(), t.ne);
      }
      continue;
    }
    ++compared_with_reference;
    const json& ref = it->second;
    EXPECT_EQ(ours.at("version"), ref.at("gguf_version"));
    EXPECT_EQ(ours.at("alignment"), ref.at("alignment"));
    EXPECT_EQ(ours.at("data_offset"), ref.at("data_section_offset"));
    EXPECT_EQ(ours.at("file_size"), ref.at("size"));
    EXPECT_EQ(ours.at("metadata").size(), ref.at("n_kv").get<size_t>());
    for (const auto& [key, value] : ref.at("kv").items()) {
      SCOPED_TRACE(key);
      ASSERT_TRUE(ours["metadata"].contains(key));
      const json& mine = ours["metadata"][key];
      EXPECT_EQ(reference_type(mine), value.at("type"));
      if (value.contains("sha256") && value.contains("len")) {
        // A long string, given by its length and digest.
        const std::string text = mine.at("value").get<std::string>();
        EXPECT_EQ(text.size(), value["len"].get<size_t>());
        EXPECT_EQ(test::sha256_hex(std::string_view(text)), value["sha256"].get<std::string>());
      } else if (value.contains("value")) {
        if (value["value"].is_number_float()) {
          EXPECT_DOUBLE_EQ(mine.at("value").get<double>(), value["value"].get<double>());
        } else {
          EXPECT_EQ(mine.at("value"), value["value"]);
        }
      } else if (value.contains("n")) {
        EXPECT_EQ(mine.at("length"), value["n"]);
        const json& first = value.at("first");
        for (size_t i = 0; i < first.size() && i < mine.at("first").size(); ++i) {
          EXPECT_EQ(mine["first"][i], first[i]);
        }
      }
    }
    ASSERT_EQ(ours.at("tensors").size(), ref.at("n_tensors").get<size_t>());
    std::map<std::string, int> type_counts;
    for (size_t i = 0; i < ref.at("tensors").size(); ++i) {
      const json& rt = ref["tensors"][i];
      const json& mt = ours["tensors"][i];
      SCOPED_TRACE(rt.at("name").get<std::string>());
      EXPECT_EQ(mt.at("name"), rt.at("name"));
      EXPECT_EQ(mt.at("type"), rt.at("type"));
      EXPECT_EQ(mt.at("ne"), rt.at("ne"));
      EXPECT_EQ(mt.at("nbytes"), rt.at("n_bytes"));
      EXPECT_EQ(mt.at("offset"), rt.at("data_offset"));
      ++type_counts[mt.at("type")];
      const auto bytes = file.tensor_data(file.tensors()[i]);
      EXPECT_EQ(test::sha256_hex(
                    std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size())),
                rt.at("sha256").get<std::string>());
    }
    for (const auto& [type, count] : ref.at("type_counts").items()) {
      EXPECT_EQ(type_counts[type], count.get<int>()) << type;
    }
    // n_params is the element count over models.json's shapes; file_type echoes
    // general.file_type, and its name is the one the fixture's file name ends with
    // ("tiny-llama-spm-Q4_K_M.gguf" -> "Q4_K_M").
    uint64_t ref_params = 0;
    for (const auto& rt : ref.at("tensors")) {
      uint64_t n = 1;
      for (const auto& d : rt.at("ne")) n *= d.get<uint64_t>();
      ref_params += n;
    }
    EXPECT_EQ(ours.at("n_params").get<uint64_t>(), ref_params);
    if (ref.at("kv").contains("general.file_type")) {
      EXPECT_EQ(ours.at("file_type").at("id"), ref["kv"]["general.file_type"].at("value"));
      const std::string stem = path.stem().string();
      EXPECT_EQ(ours["file_type"].at("name"), stem.substr(stem.rfind('-') + 1));
    } else {
      EXPECT_TRUE(ours.at("file_type").is_null());
    }
  }
  EXPECT_EQ(compared_with_reference, by_file.size()) << "a file of models.json was not found";
}

}  // namespace
}  // namespace thinkmesh
