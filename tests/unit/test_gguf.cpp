// GGUF reader and writer on files built in memory: every value type, nested arrays, getters,
// tensor layout and the byte layout of a hand-computed file.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <limits>
#include <tuple>
#include <unistd.h>
#include <string>
#include <vector>

#include "support/sha256.h"
#include "test_gguf_helpers.h"
#include "thinkmesh/error.h"
#include "thinkmesh/gguf.h"

namespace thinkmesh::gguf {
namespace {

using testing::ByteBuilder;
using testing::Bytes;
using testing::parse;
using testing::pattern_bytes;

TEST(GgufWriter, HandComputedLayout) {
  // One u32 KV and one F32 [2] tensor, laid out by hand from the format description.
  Writer w;
  w.set("a", Value::u32(7));
  const Bytes data = {1, 2, 3, 4, 5, 6, 7, 8};
  w.add_tensor("t", TensorType::F32, {2}, data);
  ByteBuilder expected;
  expected.header(3, 1, 1);
  expected.str("a").put<uint32_t>(4).put<uint32_t>(7);                    // 24 + 17 = 41
  expected.str("t").put<uint32_t>(1).put<uint64_t>(2).put<uint32_t>(0).put<uint64_t>(0);  // 74
  expected.bytes.resize(96, 0);  // padding to the 32-byte aligned data section
  expected.bytes.insert(expected.bytes.end(), data.begin(), data.end());
  expected.bytes.resize(128, 0);  // the tensor's data padded to the alignment
  EXPECT_EQ(w.to_bytes(), expected.bytes);
}

TEST(GgufWriter, NoTensorsMeansNoPadding) {
  // gguf-py stops after the KVs when there is no tensor (llama.cpp's vocab-only files).
  Writer w;
  w.set("a", Value::u8(1));
  EXPECT_EQ(w.to_bytes().size(), 24u + 8 + 1 + 4 + 1);
  const Bytes bytes = w.to_bytes();
  const File f = parse(bytes);
  EXPECT_EQ(f.data_offset(), 64u);  // aligned, past the end: nothing lives there
  EXPECT_TRUE(f.tensors().empty());
}

TEST(GgufRoundTrip, EveryValueType) {
  Writer w(2);
  w.set("u8", Value(ValueType::u8, uint8_t{200}));
  w.set("i8", Value(ValueType::i8, int8_t{-100}));
  w.set("u16", Value(ValueType::u16, uint16_t{60000}));
  w.set("i16", Value(ValueType::i16, int16_t{-30000}));
  w.set("u32", Value::u32(4000000000u));
  w.set("i32", Value::i32(-2000000000));
  w.set("f32", Value::f32(0.15625f));
  w.set("bool", Value::boolean(false));
  w.set("str", Value::string(std::string("with\0nul", 8)));
  w.set("u64", Value::u64(std::numeric_limits<uint64_t>::max()));
  w.set("i64", Value(ValueType::i64, std::numeric_limits<int64_t>::min()));
  w.set("f64", Value(ValueType::f64, -1.0e300));
  w.set("empty", Value::array(ValueType::f64, {}));
  w.set("nested",
        Value::array(ValueType::array,
                     {Value::array(ValueType::array, {Value::string_array({"x", "y"})}),
                      Value::array(ValueType::array, {})}));
  const Bytes bytes = w.to_bytes();
  const File f = parse(bytes);
  EXPECT_EQ(f.version(), 2u);
  ASSERT_EQ(f.metadata().size(), 14u);
  EXPECT_EQ(f.metadata()[0].key, "u8");  // insertion order kept
  EXPECT_EQ(f.metadata()[13].key, "nested");

  EXPECT_EQ(f.find("u8")->type(), ValueType::u8);
  EXPECT_EQ(f.get_int("u8"), 200);
  EXPECT_EQ(f.get_int("i8"), -100);
  EXPECT_EQ(f.get_int("u16"), 60000);
  EXPECT_EQ(f.get_int("i16"), -30000);
  EXPECT_EQ(f.get_int("u32"), 4000000000);
  EXPECT_EQ(f.get_int("i32"), -2000000000);
  EXPECT_EQ(f.get_float("f32"), 0.15625);
  EXPECT_FALSE(f.get_bool_or("bool", true));
  EXPECT_EQ(f.get_string("str"), std::string("with\0nul", 8));
  EXPECT_EQ(std::get<uint64_t>(f.find("u64")->storage()), std::numeric_limits<uint64_t>::max());
  EXPECT_EQ(f.get_int("i64"), std::numeric_limits<int64_t>::min());
  EXPECT_EQ(f.get_float("f64"), -1.0e300);
  EXPECT_EQ(f.find("empty")->as_array().element_type, ValueType::f64);
  EXPECT_TRUE(f.find("empty")->as_array().items.empty());

  const auto& nested = f.find("nested")->as_array();
  ASSERT_EQ(nested.element_type, ValueType::array);
  ASSERT_EQ(nested.items.size(), 2u);
  const auto& inner = nested.items[0].as_array();
  EXPECT_EQ(inner.element_type, ValueType::array);
  ASSERT_EQ(inner.items.size(), 1u);
  EXPECT_EQ(inner.items[0].as_array().items[1].as_string(), "y");
  EXPECT_TRUE(nested.items[1].as_array().items.empty());

  // Writing what was read reproduces the bytes.
  Writer again(f.version());
  for (const auto& kv : f.metadata()) again.set(kv.key, kv.value);
  EXPECT_EQ(again.to_bytes(), bytes);
}

TEST(GgufRoundTrip, TensorsLaidOutInInsertionOrder) {
  const Bytes bytes = testing::sample_file();
  const File f = parse(bytes);
  EXPECT_EQ(f.version(), 3u);
  EXPECT_EQ(f.alignment(), 32u);
  EXPECT_EQ(f.data_offset() % 32, 0u);
  ASSERT_EQ(f.tensors().size(), 3u);
  const TensorInfo& a = f.tensors()[0];
  const TensorInfo& b = f.tensors()[1];
  const TensorInfo& c = f.tensors()[2];
  EXPECT_EQ(a.name, "tensor_aa");
  EXPECT_EQ(a.offset, 0u);
  EXPECT_EQ(a.nbytes, 32u);
  EXPECT_EQ(b.type, TensorType::Q8_0);
  EXPECT_EQ(b.ne, (std::vector<int64_t>{32, 2}));
  EXPECT_EQ(b.offset, 32u);
  EXPECT_EQ(b.nbytes, 68u);  // 2 blocks of 34 bytes
  EXPECT_EQ(b.n_rows(), 2);
  EXPECT_EQ(c.offset, 128u);  // 32 + 68 padded to 96
  EXPECT_EQ(c.nbytes, 24u);
  EXPECT_EQ(c.n_elements(), 12);
  EXPECT_EQ(f.file_size(), f.data_offset() + 160);  // the last tensor padded too

  const auto data = f.tensor_data(*f.find_tensor("tensor_bb"));
  const Bytes expected = pattern_bytes(68, 2);
  EXPECT_TRUE(std::equal(data.begin(), data.end(), expected.begin(), expected.end()));
  EXPECT_EQ(f.find_tensor("nope"), nullptr);

  Writer again;
  for (const auto& kv : f.metadata()) again.set(kv.key, kv.value);
  for (const auto& t : f.tensors()) again.add_tensor(t.name, t.type, t.ne, f.tensor_data(t));
  EXPECT_EQ(again.to_bytes(), bytes);
}

TEST(GgufRoundTrip, CustomAlignment) {
  Writer w(3, 64);
  w.add_tensor("x", TensorType::F32, {3}, pattern_bytes(12, 0));
  w.add_tensor("y", TensorType::F32, {3}, pattern_bytes(12, 1));
  const Bytes bytes = w.to_bytes();
  const File f = parse(bytes);
  EXPECT_EQ(f.alignment(), 64u);
  EXPECT_EQ(f.get_int("general.alignment"), 64);
  EXPECT_EQ(f.find("general.alignment")->type(), ValueType::u32);
  EXPECT_EQ(f.data_offset() % 64, 0u);
  EXPECT_EQ(f.tensors()[1].offset, 64u);
  EXPECT_EQ(bytes.size() % 64, 0u);

  // Removing the key returns to the default.
  Writer v(3, 64);
  v.remove("general.alignment");
  v.add_tensor("x", TensorType::F32, {3}, pattern_bytes(12, 0));
  v.add_tensor("y", TensorType::F32, {3}, pattern_bytes(12, 1));
  const Bytes default_bytes = v.to_bytes();
  EXPECT_EQ(parse(default_bytes).tensors()[1].offset, 32u);
}

TEST(GgufWriter, SetReplacesInPlaceAndRejectsBadInput) {
  Writer w;
  w.set("a", Value::u32(1));
  w.set("b", Value::u32(2));
  w.set("a", Value::string("again"));
  const Bytes bytes = w.to_bytes();
  const File f = parse(bytes);
  ASSERT_EQ(f.metadata().size(), 2u);
  EXPECT_EQ(f.metadata()[0].key, "a");
  EXPECT_EQ(f.get_string("a"), "again");

  auto kind_of = [](auto&& call) {
    try {
      call();
    } catch (const Error& e) {
      return e.kind();
    }
    return ErrorKind::internal;
  };
  EXPECT_EQ(kind_of([&] { w.set("general.alignment", Value::u32(48)); }),
            ErrorKind::invalid_argument);
  EXPECT_EQ(kind_of([&] { w.set("bad", Value(ValueType::u32, std::string("x"))); }),
            ErrorKind::invalid_argument);
  EXPECT_EQ(kind_of([&] {
              w.set("mixed", Value::array(ValueType::u32, {Value::u32(1), Value::i32(2)}));
            }),
            ErrorKind::invalid_argument);
  EXPECT_EQ(kind_of([&] { w.add_tensor("t", TensorType::F32, {4}, Bytes(15)); }),
            ErrorKind::invalid_argument);
  EXPECT_EQ(kind_of([&] { w.add_tensor("t", TensorType::Q4_0, {16}, Bytes(9)); }),
            ErrorKind::invalid_argument);
  EXPECT_EQ(kind_of([&] { w.add_tensor("t", TensorType::F32, {}, Bytes()); }),
            ErrorKind::invalid_argument);
  EXPECT_EQ(kind_of([&] { w.add_tensor("t", TensorType::F32, {1, 1, 1, 1, 1}, Bytes(4)); }),
            ErrorKind::invalid_argument);
  w.add_tensor("t", TensorType::F32, {1}, Bytes(4));
  EXPECT_EQ(kind_of([&] { w.add_tensor("t", TensorType::F32, {1}, Bytes(4)); }),
            ErrorKind::invalid_argument);
  EXPECT_EQ(kind_of([] { Writer bad(1); }), ErrorKind::invalid_argument);
  EXPECT_EQ(kind_of([] { Writer bad(3, 24); }), ErrorKind::invalid_argument);
}

TEST(GgufWriter, WritesAtomicallyToDisk) {
  const auto dir = std::filesystem::temp_directory_path() /
                   ("thinkmesh-gguf-test-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const auto path = (dir / "out.gguf").string();
  Writer w;
  w.set("general.name", Value::string("disk"));
  w.add_tensor("x", TensorType::F32, {5}, pattern_bytes(20, 9));
  w.write(path);
  w.write(path);  // replacing an existing file works too
  std::vector<std::string> names;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    names.push_back(entry.path().filename().string());
  }
  EXPECT_EQ(names, std::vector<std::string>{"out.gguf"});  // no temporary left behind
  const File f = File::open(path);
  EXPECT_EQ(f.path(), path);
  EXPECT_EQ(f.get_string("general.name"), "disk");
  const Bytes expected = w.to_bytes();
  EXPECT_TRUE(std::equal(f.bytes().begin(), f.bytes().end(), expected.begin(), expected.end()));
  EXPECT_THROW(w.write((dir / "missing-dir" / "x.gguf").string()), Error);
  std::filesystem::remove_all(dir);
}

TEST(GgufFile, OpenMissingFileIsNotFound) {
  try {
    (void)File::open("/nonexistent/thinkmesh/model.gguf");
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::not_found);
  }
}

TEST(GgufFile, TypedGettersNameTheKey) {
  const Bytes bytes = testing::sample_file();
  const File f = parse(bytes);
  EXPECT_EQ(f.get_int("test.u32"), 7);
  EXPECT_EQ(f.get_float("test.u32"), 7.0);  // integers read as numbers
  EXPECT_EQ(f.get_string_or("absent", "fallback"), "fallback");
  EXPECT_EQ(f.get_int_or("absent", -5), -5);
  EXPECT_EQ(f.get_float_or("absent", 2.5), 2.5);
  EXPECT_TRUE(f.get_bool_or("test.flag", false));
  EXPECT_EQ(f.get_string_array("test.words"), (std::vector<std::string>{"alpha", "beta", "gamma"}));

  auto error_of = [](auto&& call) -> std::pair<ErrorKind, std::string> {
    try {
      call();
    } catch (const Error& e) {
      return {e.kind(), e.what()};
    }
    return {ErrorKind::internal, "no error"};
  };
  auto [kind, message] = error_of([&] { (void)f.get_string("test.missing"); });
  EXPECT_EQ(kind, ErrorKind::not_found);
  EXPECT_NE(message.find("test.missing"), std::string::npos) << message;
  std::tie(kind, message) = error_of([&] { (void)f.get_string("test.u32"); });
  EXPECT_EQ(kind, ErrorKind::invalid_file);
  EXPECT_NE(message.find("test.u32"), std::string::npos) << message;
  EXPECT_NE(message.find("uint32"), std::string::npos) << message;
  std::tie(kind, message) = error_of([&] { (void)f.get_int_array("test.nest"); });
  EXPECT_EQ(kind, ErrorKind::invalid_file);
  EXPECT_NE(message.find("test.nest"), std::string::npos) << message;
  std::tie(kind, message) = error_of([&] { (void)f.get_float_array("test.words"); });
  EXPECT_EQ(kind, ErrorKind::invalid_file);
  std::tie(kind, message) = error_of([&] { (void)f.get_bool_or("test.str", false); });
  EXPECT_EQ(kind, ErrorKind::invalid_file);
}

TEST(GgufValue, Accessors) {
  EXPECT_TRUE(Value::u32(1).is_integer());
  EXPECT_FALSE(Value::f32(1).is_integer());
  EXPECT_EQ(Value(ValueType::i16, int16_t{-7}).as_int(), -7);
  EXPECT_EQ(Value::u64(uint64_t{1} << 63 >> 1).as_int(), int64_t{1} << 62);
  EXPECT_THROW((void)Value::u64(uint64_t{1} << 63).as_int(), Error);  // beyond int64
  EXPECT_THROW((void)Value::f32(1).as_int(), Error);
  EXPECT_THROW((void)Value::string("1").as_double(), Error);
  EXPECT_THROW((void)Value::u32(1).as_bool(), Error);
  EXPECT_THROW((void)Value::u32(1).as_array(), Error);
  EXPECT_EQ(Value::i32(-3).as_double(), -3.0);
  EXPECT_EQ(Value::f32_array({1.5f, 2.5f}).as_array().items[1].as_double(), 2.5);
  try {
    (void)Value::boolean(true).as_string();
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::invalid_file);
    EXPECT_NE(std::string(e.what()).find("bool"), std::string::npos) << e.what();
  }
  EXPECT_EQ(to_string(ValueType::f32), "float32");
  EXPECT_EQ(to_string(ValueType::u64), "uint64");
}

TEST(GgufValue, DisplayStringSummarisesArrays) {
  EXPECT_EQ(Value::u32(42).to_display_string(), "42");
  EXPECT_EQ(Value(ValueType::i8, int8_t{-4}).to_display_string(), "-4");
  EXPECT_EQ(Value::f32(0.5f).to_display_string(), "0.5");
  EXPECT_EQ(Value::boolean(true).to_display_string(), "true");
  EXPECT_EQ(Value::string("a\"b\n").to_display_string(), "\"a\\\"b\\n\"");
  EXPECT_EQ(Value::string_array({"<unk>", "<s>", "</s>"}).to_display_string(2),
            "[array string \u00D73: \"<unk>\", \"<s>\", \u2026]");
  EXPECT_EQ(Value::i32_array({1, 2}).to_display_string(), "[array int32 \u00D72: 1, 2]");
  EXPECT_EQ(Value::array(ValueType::u8, {}).to_display_string(), "[array uint8 \u00D70]");
  EXPECT_EQ(Value::array(ValueType::array, {Value::i32_array({1})}).to_display_string(),
            "[array array \u00D71: [array int32 \u00D71: 1]]");
}

TEST(Sha256, KnownAnswers) {
  // FIPS 180-4 examples; the test support code hashes tensors with this.
  EXPECT_EQ(thinkmesh::test::sha256_hex(std::string_view("")),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(thinkmesh::test::sha256_hex(std::string_view("abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(thinkmesh::test::sha256_hex(std::string_view(
                "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq")),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}

}  // namespace
}  // namespace thinkmesh::gguf
