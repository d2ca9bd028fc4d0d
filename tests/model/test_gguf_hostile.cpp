// The GGUF reader on damaged real files: truncated at every byte of the header and at sampled
// offsets of the data, every count/length/type/offset field overwritten with hostile values,
// and hand-made structural faults. Each attempt must end in a thinkmesh::Error whose message
// says what is wrong and where ("invalid GGUF file '<name>': <problem> (at byte offset N)"),
// or -- where the damage still leaves a valid file -- in a File whose tensors lie inside it.
// Never a crash, a hang or an allocation the file size does not justify (the sanitizer build
// runs this too).
#include <gtest/gtest.h>

#include <cstring>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "support/fixtures.h"
#include "thinkmesh/error.h"
#include "thinkmesh/gguf.h"

namespace thinkmesh::gguf {
namespace {

using Bytes = std::vector<uint8_t>;

Bytes load(const std::string& relative) {
  const std::string data = test::read_file(test::fixture(relative));
  return Bytes(data.begin(), data.end());
}

// Parses `bytes`; returns "" when it parsed (after checking every tensor lies inside the
// buffer) or the error message.
std::string try_parse(const Bytes& bytes) {
  try {
    const File f = File::parse(std::span<const uint8_t>(bytes), "damaged.gguf");
    for (const auto& t : f.tensors()) {
      const auto data = f.tensor_data(t);
      EXPECT_GE(data.data(), bytes.data());
      EXPECT_LE(data.data() + data.size(), bytes.data() + bytes.size());
    }
    return "";
  } catch (const Error& e) {
    return e.what();
  }
}

void expect_clear_error(const std::string& message, const std::string& context) {
  EXPECT_NE(message.find("invalid GGUF file 'damaged.gguf'"), std::string::npos)
      << context << ": " << message;
  EXPECT_NE(message.find("(at byte offset "), std::string::npos) << context << ": " << message;
}

// Where each field of a GGUF header lives, found by walking it as the format describes.
struct Field {
  size_t offset;
  size_t size;  // 4 or 8
  std::string what;
};

class HeaderWalker {
 public:
  explicit HeaderWalker(const Bytes& b) : b_(b) {}

  std::vector<Field> walk() {
    pos_ = 4;
    field(4, "version");
    const uint64_t n_tensors = field(8, "n_tensors");
    const uint64_t n_kv = field(8, "n_kv");
    for (uint64_t i = 0; i < n_kv; ++i) {
      string("key length");
      value(static_cast<uint32_t>(field(4, "value type")));
    }
    for (uint64_t i = 0; i < n_tensors; ++i) {
      string("tensor name length");
      const uint64_t n_dims = field(4, "n_dims");
      for (uint64_t d = 0; d < n_dims; ++d) field(8, "ne");
      field(4, "tensor type");
      field(8, "tensor offset");
    }
    return fields_;
  }

 private:
  uint64_t field(size_t size, const std::string& what) {
    uint64_t v = 0;
    std::memcpy(&v, b_.data() + pos_, size);
    fields_.push_back({pos_, size, what});
    pos_ += size;
    return v;
  }
  void string(const std::string& what) { pos_ += field(8, what); }
  void value(uint32_t type) {
    static constexpr size_t kSizes[] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};
    if (type == 8) {
      string("string length");
    } else if (type == 9) {
      const auto element = static_cast<uint32_t>(field(4, "array element type"));
      const uint64_t count = field(8, "array count");
      for (uint64_t i = 0; i < count; ++i) {
        if (element == 8 || element == 9) {
          value(element);
        } else {
          pos_ += kSizes[element];
        }
      }
    } else {
      pos_ += kSizes[type];
    }
  }

  const Bytes& b_;
  size_t pos_ = 0;
  std::vector<Field> fields_;
};

class HostileGguf : public ::testing::TestWithParam<std::string> {};

TEST_P(HostileGguf, TruncatedAnywhereGivesAClearError) {
  THINKMESH_REQUIRE_FIXTURE(GetParam());
  const Bytes whole = load(GetParam());
  const File f = File::parse(std::span<const uint8_t>(whole));
  const size_t data_offset = f.data_offset();
  ASSERT_GT(whole.size(), data_offset);

  // Every byte of a header up to 64 KiB (stories260K's is 14 KB); 2024 offsets of a
  // larger one (the first 1024 and 1000 sampled: a 32000-token vocabulary makes each parse
  // long and every byte quadratic).
  std::vector<size_t> cuts;
  std::mt19937_64 rng(42);
  if (data_offset <= 65536) {
    for (size_t n = 0; n <= data_offset; ++n) cuts.push_back(n);
  } else {
    for (size_t n = 0; n < 1024; ++n) cuts.push_back(n);  // the fixed header and first keys
    for (int i = 0; i < 1000; ++i) cuts.push_back(rng() % (data_offset + 1));
  }
  for (int i = 0; i < 200; ++i) cuts.push_back(data_offset + rng() % (whole.size() - data_offset));
  cuts.push_back(whole.size() - 1);

  for (const size_t n : cuts) {
    const Bytes cut(whole.begin(), whole.begin() + static_cast<std::ptrdiff_t>(n));
    const std::string message = try_parse(cut);
    // Cutting inside the padding after the last tensor can leave a valid file; elsewhere the
    // cut must be noticed.
    const auto& last = f.tensors().back();
    if (n >= data_offset + last.offset + last.nbytes) continue;
    ASSERT_FALSE(message.empty()) << "truncated at " << n << " of " << whole.size() << " parsed";
    expect_clear_error(message, "truncated at " + std::to_string(n));
    if (HasFailure()) return;
  }
}

TEST_P(HostileGguf, HostileCountsLengthsTypesAndOffsets) {
  THINKMESH_REQUIRE_FIXTURE(GetParam());
  const Bytes original = load(GetParam());
  // Every field, except that of the lengths of array strings (one per token of a vocabulary)
  // the first 256 and every 61st are kept.
  std::vector<Field> fields;
  size_t n_element_lengths = 0;
  for (const Field& f : HeaderWalker(original).walk()) {
    if (f.what == "string length" && n_element_lengths++ >= 256 && n_element_lengths % 61 != 0) {
      continue;
    }
    fields.push_back(f);
  }
  ASSERT_GT(fields.size(), 50u);
  const uint64_t size = original.size();
  const std::vector<uint64_t> hostile64 = {0,          1,          size,  size + 1, 1ull << 31,
                                           1ull << 62, 1ull << 63, ~0ull, ~0ull - 7};
  const std::vector<uint64_t> hostile32 = {0, 13, 31, 255, 1000, 0x7FFFFFFF, 0xFFFFFFFF};
  size_t rejected = 0, accepted = 0;
  Bytes damaged = original;
  for (const Field& f : fields) {
    for (const uint64_t v : f.size == 8 ? hostile64 : hostile32) {
      std::memcpy(damaged.data() + f.offset, &v, f.size);
      const std::string message = try_parse(damaged);
      if (message.empty()) {
        ++accepted;  // e.g. a tensor type changed to another valid one of the same size
      } else {
        ++rejected;
        expect_clear_error(message,
                           f.what + " at " + std::to_string(f.offset) + " = " + std::to_string(v));
      }
      std::memcpy(damaged.data() + f.offset, original.data() + f.offset, f.size);
      if (HasFailure()) return;
    }
  }
  EXPECT_GT(rejected, accepted);
  RecordProperty("rejected", static_cast<int>(rejected));
}

INSTANTIATE_TEST_SUITE_P(Files, HostileGguf,
                         ::testing::Values("models/stories260K/stories260K.gguf",
                                           "fixtures/models/tiny-llama-spm-Q4_K_M.gguf"),
                         [](const auto& p) {
                           return p.param.find("stories") != std::string::npos
                                      ? "stories260K"
                                      : "tiny_llama_spm_Q4_K_M";
                         });

// Structural faults on a small valid file written by our Writer.
class StructuralFaults : public ::testing::Test {
 protected:
  void SetUp() override {
    Writer w;
    w.set("general.architecture", Value::string("llama"));
    const Bytes a(64 * 4, 1), b(64 * 4, 2);
    w.add_tensor("a", TensorType::F32, {64}, a);
    w.add_tensor("b", TensorType::F32, {64}, b);
    bytes_ = w.to_bytes();
    fields_ = HeaderWalker(bytes_).walk();
  }
  const Field& field(const std::string& what, int nth = 0) {
    for (const auto& f : fields_) {
      if (f.what == what && nth-- == 0) return f;
    }
    ADD_FAILURE() << "no field " << what;
    return fields_.front();
  }
  std::string with(const Field& f, uint64_t value) {
    Bytes copy = bytes_;
    std::memcpy(copy.data() + f.offset, &value, f.size);
    return try_parse(copy);
  }
  Bytes bytes_;
  std::vector<Field> fields_;
};

TEST_F(StructuralFaults, EachFaultIsNamed) {
  ASSERT_EQ(try_parse(bytes_), "");
  auto expect = [](const std::string& message, const std::string& needle) {
    EXPECT_NE(message.find(needle), std::string::npos)
        << "expected '" << needle << "' in: " << message;
    expect_clear_error(message, needle);
  };
  Bytes bad_magic = bytes_;
  bad_magic[0] = 'X';
  expect(try_parse(bad_magic), "magic");
  expect(with(field("version"), 1), "version");
  expect(with(field("version"), 4), "version");
  expect(with(field("tensor offset", 1), 0), "overlap");  // b on top of a
  expect(with(field("tensor offset", 1), 4), "align");    // not a multiple of 32
  expect(with(field("tensor type"), 4), "type");          // Q4_2: removed from ggml
  expect(with(field("tensor type"), 99), "type");
  expect(with(field("ne"), 1ull << 62), "tensor 'a'");  // far past the end
  expect(with(field("n_dims"), 9), "dimensions");
  expect(with(field("n_kv"), 1ull << 40), "metadata count");
  expect(with(field("n_tensors"), 1ull << 40), "tensor count");
  expect(with(field("value type"), 13), "unknown value type");
}

}  // namespace
}  // namespace thinkmesh::gguf
