#include "fixtures.h"

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "kernels/isa.h"

namespace thinkmesh::test {

bool requested_isa_supported(std::string* why) {
  const char* env = std::getenv("THINKMESH_ISA");
  if (env == nullptr || *env == '\0') return true;
  const auto isa = kernels::parse_isa(env);
  if (!isa) return true;  // an unknown name: let the library's error show
  return kernels::isa_supported(*isa, why);
}

std::filesystem::path fixtures_dir() {
  if (const char* env = std::getenv("THINKMESH_FIXTURES"); env && *env) return env;
  return std::filesystem::path(THINKMESH_SOURCE_DIR) / ".." / "shared";
}

std::filesystem::path fixture(const std::string& relative) {
  return fixtures_dir() / relative;
}

bool running_in_ci() {
  const char* ci = std::getenv("CI");
  return ci && (std::string(ci) == "true" || std::string(ci) == "1");
}

std::filesystem::path thinkmesh_binary() {
  return std::filesystem::path(THINKMESH_BINARY_DIR) / "bin" / "thinkmesh";
}

std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + path.string());
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace thinkmesh::test
