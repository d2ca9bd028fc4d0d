// The safetensors reader on files built here: a valid one parses, and each kind of hostile
// header (truncated, bad JSON, bad dtype, shape × dtype size ≠ data_offsets, offsets outside
// the file, overlaps) gives Error(invalid_file) naming the problem and an offset.
#include <cstring>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "convert/convert_internal.h"
#include "convert/hf_internal.h"
#include "convert/safetensors.h"
#include "thinkmesh/error.h"

namespace thinkmesh::convert {
namespace {

// 8-byte length | header | data.
std::vector<uint8_t> make_file(const std::string& header, size_t data_bytes) {
  // Sized once (GCC 12 warns, wrongly, about vector::insert here).
  std::vector<uint8_t> out(8 + header.size() + data_bytes);
  const uint64_t n = header.size();
  for (size_t i = 0; i < 8; ++i) out[i] = static_cast<uint8_t>(n >> (8 * i));
  std::memcpy(out.data() + 8, header.data(), header.size());
  for (size_t i = 0; i < data_bytes; ++i) out[8 + header.size() + i] = static_cast<uint8_t>(i);
  return out;
}

std::string error_of(const std::vector<uint8_t>& bytes) {
  try {
    SafetensorsFile::parse(bytes, "hostile.safetensors");
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::invalid_file) << e.what();
    return e.what();
  }
  return "";
}

TEST(Safetensors, ParsesTensorsSortedByNameWithMetadata) {
  const std::string header = R"({"b":{"dtype":"F16","shape":[2,3],"data_offsets":[8,20]},)"
                             R"("a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                             R"("__metadata__":{"format":"pt"}})";
  const auto bytes = make_file(header, 20);
  const auto file = SafetensorsFile::parse(bytes, "ok.safetensors");
  ASSERT_EQ(file.tensors().size(), 2u);
  EXPECT_EQ(file.tensors()[0].name, "a");
  EXPECT_EQ(file.tensors()[1].name, "b");
  const StTensor* b = file.find("b");
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(b->dtype, StDtype::F16);
  EXPECT_EQ(b->shape, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(b->n_elements(), 6);
  EXPECT_EQ(b->data.size(), 12u);
  EXPECT_EQ(b->data.data(), bytes.data() + 8 + header.size() + 8);
  EXPECT_EQ(file.metadata().at("format"), "pt");
  EXPECT_EQ(file.find("c"), nullptr);
}

TEST(Safetensors, ScalarAndEmptyTensorsAreValid) {
  const auto bytes = make_file(
      R"({"s":{"dtype":"F32","shape":[],"data_offsets":[0,4]},"e":{"dtype":"F16","shape":[0,5],"data_offsets":[4,4]}})",
      4);
  const auto file = SafetensorsFile::parse(bytes);
  EXPECT_EQ(file.find("s")->n_elements(), 1);
  EXPECT_EQ(file.find("e")->n_elements(), 0);
}

TEST(Safetensors, TruncatedFilesAreRejected) {
  EXPECT_NE(error_of({}).find("too short for the 8-byte header length"), std::string::npos);
  EXPECT_NE(error_of({1, 0, 0}).find("offset 0"), std::string::npos);
  // The header length promises more bytes than the file has.
  auto bytes = make_file(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})", 4);
  bytes.resize(20);
  EXPECT_NE(error_of(bytes).find("runs past the end of the file"), std::string::npos);
  // The data section is cut short: the tensor's end lies outside the file.
  bytes = make_file(R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})", 16);
  bytes.resize(bytes.size() - 3);
  const std::string e = error_of(bytes);
  EXPECT_NE(e.find("tensor 'a'"), std::string::npos) << e;
  EXPECT_NE(e.find("run past the end of the data"), std::string::npos) << e;
  EXPECT_NE(e.find("hostile.safetensors"), std::string::npos) << e;
}

TEST(Safetensors, HugeHeaderLengthIsRejectedBeforeReading) {
  std::vector<uint8_t> bytes(16, 0);
  bytes[7] = 0x7f;  // ~9e18
  EXPECT_NE(error_of(bytes).find("exceeds the"), std::string::npos);
}

TEST(Safetensors, BadJsonIsRejected) {
  EXPECT_NE(error_of(make_file("{\"a\":", 0)).find("not valid JSON"), std::string::npos);
  EXPECT_NE(error_of(make_file("[1,2,3]", 0)).find("not an object"), std::string::npos);
  EXPECT_NE(error_of(make_file(R"({"a":5})", 0)).find("entry is not an object"), std::string::npos);
  EXPECT_NE(error_of(make_file(R"({"__metadata__":{"k":1}})", 0)).find("__metadata__.k"),
            std::string::npos);
  const std::string e = error_of(make_file("{\"a\":\"\xff\xfe\"}", 0));
  EXPECT_NE(e.find("offset 8"), std::string::npos) << e;
}

TEST(Safetensors, BadDtypeOrShapeIsRejected) {
  EXPECT_NE(error_of(make_file(R"({"a":{"dtype":"F17","shape":[1],"data_offsets":[0,4]}})", 4))
                .find("unknown dtype 'F17'"),
            std::string::npos);
  EXPECT_NE(error_of(make_file(R"({"a":{"shape":[1],"data_offsets":[0,4]}})", 4)).find("dtype"),
            std::string::npos);
  EXPECT_NE(error_of(make_file(R"({"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}})", 4))
                .find("non-negative"),
            std::string::npos);
  EXPECT_NE(error_of(make_file(R"({"a":{"dtype":"F32","shape":[1.5],"data_offsets":[0,4]}})", 4))
                .find("non-negative"),
            std::string::npos);
  EXPECT_NE(
      error_of(
          make_file(
              R"({"a":{"dtype":"F32","shape":[4294967296,4294967296,16],"data_offsets":[0,4]}})",
              4))
          .find("overflows"),
      std::string::npos);
}

TEST(Safetensors, ShapeTimesDtypeMustMatchDataOffsets) {
  const std::string e =
      error_of(make_file(R"({"a":{"dtype":"F16","shape":[2,3],"data_offsets":[0,8]}})", 8));
  EXPECT_NE(e.find("needs 12 bytes"), std::string::npos) << e;
  EXPECT_NE(e.find("hold 8"), std::string::npos) << e;
}

TEST(Safetensors, OffsetsOutsideTheFileOrOverlappingAreRejected) {
  EXPECT_NE(error_of(make_file(R"({"a":{"dtype":"U8","shape":[4],"data_offsets":[8,4]}})", 8))
                .find("backwards"),
            std::string::npos);
  EXPECT_NE(
      error_of(
          make_file(
              R"({"a":{"dtype":"U8","shape":[4],"data_offsets":[18446744073709551611,18446744073709551615]}})",
              8))
          .find("run past the end of the data"),
      std::string::npos);
  EXPECT_NE(error_of(make_file(R"({"a":{"dtype":"U8","shape":[4],"data_offsets":[0]}})", 8))
                .find("data_offsets"),
            std::string::npos);
  const std::string e = error_of(make_file(
      R"({"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]},"b":{"dtype":"U8","shape":[4],"data_offsets":[2,6]}})",
      8));
  EXPECT_NE(e.find("overlap"), std::string::npos) << e;
}

TEST(ConvertCommon, ReadsBf16AndF16AndRejectsOtherDtypes) {
  // BF16 0x3F80 = 1.0, 0xC000 = -2.0; F16 0x3C00 = 1.0, 0xC000 = -2.0.
  const std::string header = R"({"b":{"dtype":"BF16","shape":[2],"data_offsets":[0,4]},)"
                             R"("h":{"dtype":"F16","shape":[2],"data_offsets":[4,8]},)"
                             R"("i":{"dtype":"I32","shape":[1],"data_offsets":[8,12]}})";
  auto bytes = make_file(header, 12);
  const uint8_t data[12] = {0x80, 0x3F, 0x00, 0xC0, 0x00, 0x3C, 0x00, 0xC0, 1, 0, 0, 0};
  std::memcpy(bytes.data() + 8 + header.size(), data, 12);
  const auto file = SafetensorsFile::parse(bytes, "types.safetensors");
  EXPECT_EQ(to_f32(*file.find("b"), "types.safetensors"), (std::vector<float>{1.0f, -2.0f}));
  EXPECT_EQ(to_f32(*file.find("h"), "types.safetensors"), (std::vector<float>{1.0f, -2.0f}));
  try {
    to_f32(*file.find("i"), "types.safetensors");
    ADD_FAILURE() << "I32 accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::unsupported);
    EXPECT_NE(std::string(e.what()).find("tensor 'i' has dtype I32"), std::string::npos)
        << e.what();
  }
}

TEST(ConvertCommon, StorageTypesAndSizeLabelsFollowLlamaCpp) {
  EXPECT_EQ(storage_type("blk.0.attn_q.weight", 2, TensorType::F16), TensorType::F16);
  EXPECT_EQ(storage_type("blk.0.attn_q.bias", 1, TensorType::F16), TensorType::F32);
  EXPECT_EQ(storage_type("blk.0.attn_norm.weight", 1, TensorType::BF16), TensorType::F32);
  EXPECT_EQ(storage_type("token_types.weight", 2, TensorType::F16), TensorType::F32);
  EXPECT_EQ(storage_type("position_embd.weight", 2, TensorType::F16), TensorType::F32);
  EXPECT_EQ(storage_type("token_embd.weight", 2, TensorType::BF16), TensorType::BF16);
  // gguf-py's labels of the fixtures (models.json) and a few others.
  EXPECT_EQ(size_label(19'532'032), "20M");
  EXPECT_EQ(size_label(16'908'928), "17M");
  EXPECT_EQ(size_label(22'565'376), "23M");
  EXPECT_EQ(size_label(292'800), "293K");
  EXPECT_EQ(size_label(494'032'768), "494M");
  EXPECT_EQ(size_label(7'241'732'096), "7.2B");
  EXPECT_EQ(size_label(260), "0.26K");
  EXPECT_EQ(file_type_id(TensorType::BF16), 32u);
}

// SentencePiece tokenizer.model reader (used by the converter) on hostile protobuf bytes.
TEST(SentencePieceModel, ParsesPiecesAndRejectsTruncation) {
  // pieces { piece: "ab" score: 0.5 type: 3 }
  std::vector<uint8_t> piece = {0x0a, 2, 'a', 'b', 0x15, 0, 0, 0, 0, 0x18, 3};
  const float half = 0.5f;
  std::memcpy(piece.data() + 5, &half, 4);
  std::vector<uint8_t> model = {0x0a, static_cast<uint8_t>(piece.size())};
  model.insert(model.end(), piece.begin(), piece.end());
  const auto pieces = parse_sentencepiece_model(model.data(), model.size(), "t.model");
  ASSERT_EQ(pieces.size(), 1u);
  EXPECT_EQ(pieces[0].piece, "ab");
  EXPECT_EQ(pieces[0].score, 0.5f);
  EXPECT_EQ(pieces[0].type, 3);
  for (size_t cut = 1; cut < model.size(); ++cut) {
    EXPECT_THROW(parse_sentencepiece_model(model.data(), cut, "t.model"), Error) << cut;
  }
  const std::vector<uint8_t> group = {0x0b};  // wire type 3 (groups) is not supported
  EXPECT_THROW(parse_sentencepiece_model(group.data(), group.size(), "t.model"), Error);
}

}  // namespace
}  // namespace thinkmesh::convert
