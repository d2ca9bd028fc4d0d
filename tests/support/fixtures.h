// Locating the shared fixtures (models, goldens) from tests.
#pragma once

#include <filesystem>
#include <string>

#include <gtest/gtest.h>

namespace thinkmesh::test {

// $THINKMESH_FIXTURES, or ../shared beside the source tree.
std::filesystem::path fixtures_dir();
// A path inside the fixtures folder.
std::filesystem::path fixture(const std::string& relative);
// True when running under CI (CI=true), where missing fixtures are a failure, not a skip.
bool running_in_ci();
// The built `thinkmesh` executable (for CLI tests).
std::filesystem::path thinkmesh_binary();
// False (with the reason) when $THINKMESH_ISA names a kernel level this CPU cannot run; CTest
// runs the golden suites once per level and such a run skips.
bool requested_isa_supported(std::string* why);
// Reads a whole file (binary).
std::string read_file(const std::filesystem::path& path);

}  // namespace thinkmesh::test

// Skips the current test (or fails it under CI) when `relative` is not in the fixtures folder.
#define THINKMESH_REQUIRE_FIXTURE(relative)                               \
  do {                                                                    \
    const auto tm_fixture_path__ = ::thinkmesh::test::fixture(relative);  \
    if (!std::filesystem::exists(tm_fixture_path__)) {                    \
      if (::thinkmesh::test::running_in_ci()) {                           \
        FAIL() << "fixture missing under CI: " << tm_fixture_path__       \
               << " (set THINKMESH_FIXTURES to the shared folder)";       \
      } else {                                                            \
        GTEST_SKIP() << "fixture not found: " << tm_fixture_path__        \
                     << " (set THINKMESH_FIXTURES to the shared folder)"; \
      }                                                                   \
    }                                                                     \
  } while (0)

// Skips the current test when $THINKMESH_ISA asks for a kernel level this CPU lacks.
#define THINKMESH_SKIP_UNSUPPORTED_ISA()                          \
  do {                                                            \
    std::string tm_why__;                                         \
    if (!::thinkmesh::test::requested_isa_supported(&tm_why__)) { \
      GTEST_SKIP() << "skipped at kernel level: " << tm_why__;    \
    }                                                             \
  } while (0)
