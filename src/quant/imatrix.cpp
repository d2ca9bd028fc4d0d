// The legacy imatrix.dat format of llama.cpp c392e50 (examples/imatrix/imatrix.cpp,
// save_imatrix / load_imatrix): reading with every count checked against the bytes left,
// writing, and the collector that llama-imatrix's collect_imatrix corresponds to.
#include "thinkmesh/imatrix.h"

#include <unistd.h>

#include <bit>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "thinkmesh/error.h"

namespace thinkmesh {
namespace {

constexpr int32_t kMaxNameLength = 4096;  // tensor names are short; longer means garbage

class Reader {
 public:
  Reader(std::span<const uint8_t> bytes, const std::string& name) : bytes_(bytes), name_(name) {}

  size_t offset() const { return pos_; }
  size_t left() const { return bytes_.size() - pos_; }

  int32_t i32(const char* what) {
    need(4, what);
    uint32_t v;
    std::memcpy(&v, bytes_.data() + pos_, 4);
    if constexpr (std::endian::native == std::endian::big) v = __builtin_bswap32(v);
    pos_ += 4;
    return static_cast<int32_t>(v);
  }
  float f32(const char* what) { return std::bit_cast<float>(i32(what)); }
  std::string str(size_t n, const char* what) {
    need(n, what);
    std::string s(reinterpret_cast<const char*>(bytes_.data() + pos_), n);
    pos_ += n;
    return s;
  }
  [[noreturn]] void fail(const std::string& message, size_t at) const {
    throw Error(ErrorKind::invalid_file,
                name_ + ": imatrix: " + message + " (at byte " + std::to_string(at) + ")");
  }

 private:
  void need(size_t n, const char* what) const {
    if (left() < n)
      fail(std::string("truncated while reading ") + what + ": " + std::to_string(n) +
               " bytes needed, " + std::to_string(left()) + " left",
           pos_);
  }
  std::span<const uint8_t> bytes_;
  const std::string& name_;
  size_t pos_ = 0;
};

void put_i32(std::vector<uint8_t>& out, int32_t v) {
  const auto u = static_cast<uint32_t>(v);
  for (int shift = 0; shift < 32; shift += 8) out.push_back(static_cast<uint8_t>(u >> shift));
}

}  // namespace

ImportanceMatrix ImportanceMatrix::parse(std::span<const uint8_t> bytes,
                                         const std::string& display_name) {
  Reader in(bytes, display_name);
  ImportanceMatrix m;
  const int32_t n_entries = in.i32("the entry count");
  // Each entry takes at least 16 bytes (name length, a 1-byte name, ncall, nval, one value).
  if (n_entries < 1) in.fail("entry count " + std::to_string(n_entries) + " (must be >= 1)", 0);
  if (static_cast<uint64_t>(n_entries) > in.left() / 16)
    in.fail("entry count " + std::to_string(n_entries) + " cannot fit in the " +
                std::to_string(in.left()) + " bytes that follow",
            0);
  for (int32_t e = 0; e < n_entries; ++e) {
    const std::string which = "entry " + std::to_string(e);
    const size_t at = in.offset();
    const int32_t len = in.i32("a name length");
    if (len < 1 || len > kMaxNameLength)
      in.fail(which + ": name length " + std::to_string(len) + " (must be 1.." +
                  std::to_string(kMaxNameLength) + ")",
              at);
    std::string name = in.str(static_cast<size_t>(len), "a name");
    if (name.find('\0') != std::string::npos) in.fail(which + ": the name contains a NUL byte", at);
    const std::string where = which + " '" + name + "'";
    Entry entry;
    entry.ncall = in.i32("ncall");
    if (entry.ncall < 0) in.fail(where + ": ncall " + std::to_string(entry.ncall) + " < 0", at);
    const size_t nval_at = in.offset();
    const int32_t nval = in.i32("nval");
    if (nval < 1 || static_cast<uint64_t>(nval) > in.left() / 4)
      in.fail(where + ": " + std::to_string(nval) + " values claimed, " +
                  std::to_string(in.left() / 4) + " fit in the rest of the file",
              nval_at);
    entry.values.resize(static_cast<size_t>(nval));
    for (int32_t i = 0; i < nval; ++i) {
      const size_t vat = in.offset();
      const float v = in.f32("a value");
      if (!std::isfinite(v) || v < 0)
        in.fail(where + ": value " + std::to_string(i) + " is " + std::to_string(v) +
                    " (must be finite and >= 0)",
                vat);
      entry.values[static_cast<size_t>(i)] = v;
    }
    if (m.entries_.count(name)) in.fail(where + ": duplicate entry", at);
    m.entries_.emplace(std::move(name), std::move(entry));
  }
  // Optional trailer: the chunk count and the dataset's name.
  if (in.left() > 0) {
    const size_t at = in.offset();
    m.last_call = in.i32("the trailer's chunk count");
    if (m.last_call < 0)
      in.fail("trailer: chunk count " + std::to_string(m.last_call) + " < 0", at);
    if (in.left() > 0) {
      const size_t dat = in.offset();
      const int32_t len = in.i32("the dataset name length");
      if (len < 0 || static_cast<size_t>(len) > in.left())
        in.fail("trailer: dataset name length " + std::to_string(len) + " with " +
                    std::to_string(in.left()) + " bytes left",
                dat);
      m.dataset = in.str(static_cast<size_t>(len), "the dataset name");
    }
    if (in.left() > 0)
      in.fail(std::to_string(in.left()) + " unexpected bytes after the trailer", in.offset());
  }
  return m;
}

ImportanceMatrix ImportanceMatrix::read(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec))
    throw Error(ErrorKind::not_found, path + ": imatrix file not found");
  std::ifstream f(path, std::ios::binary);
  if (!f) throw Error(ErrorKind::io, path + ": cannot open the imatrix file");
  const std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(f)),
                                   std::istreambuf_iterator<char>());
  if (f.bad()) throw Error(ErrorKind::io, path + ": read error");
  return parse(bytes, path);
}

std::vector<uint8_t> ImportanceMatrix::to_bytes() const {
  if (entries_.empty())
    throw Error(ErrorKind::invalid_argument, "an importance matrix needs at least one entry");
  std::vector<uint8_t> out;
  put_i32(out, static_cast<int32_t>(entries_.size()));
  for (const auto& [name, e] : entries_) {
    put_i32(out, static_cast<int32_t>(name.size()));
    for (char c : name) out.push_back(static_cast<uint8_t>(c));
    put_i32(out, e.ncall);
    put_i32(out, static_cast<int32_t>(e.values.size()));
    for (float v : e.values) put_i32(out, std::bit_cast<int32_t>(v));
  }
  put_i32(out, last_call);
  put_i32(out, static_cast<int32_t>(dataset.size()));
  for (char c : dataset) out.push_back(static_cast<uint8_t>(c));
  return out;
}

void ImportanceMatrix::write(const std::string& path) const {
  const std::vector<uint8_t> bytes = to_bytes();
  const std::string tmp = path + ".tmp-" + std::to_string(::getpid());
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    if (!f) throw Error(ErrorKind::io, tmp + ": cannot create");
    f.write(reinterpret_cast<const char*>(bytes.data()),
            static_cast<std::streamsize>(bytes.size()));
    f.flush();
    if (!f) {
      std::filesystem::remove(tmp);
      throw Error(ErrorKind::io, tmp + ": write failed");
    }
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) {
    std::filesystem::remove(tmp);
    throw Error(ErrorKind::io, path + ": cannot rename the temporary file: " + ec.message());
  }
}

void ImportanceMatrix::set(std::string name, Entry entry) {
  entries_[std::move(name)] = std::move(entry);
}

const ImportanceMatrix::Entry* ImportanceMatrix::find(std::string_view name) const {
  const auto it = entries_.find(name);
  return it == entries_.end() ? nullptr : &it->second;
}

std::vector<float> ImportanceMatrix::importance(const Entry& entry) {
  std::vector<float> w = entry.values;
  if (entry.ncall > 0)
    for (float& v : w) v /= static_cast<float>(entry.ncall);
  return w;
}

void ImatrixCollector::observe(const std::string& weight, const float* x, int64_t n_tokens,
                               int64_t n_cols) {
  if (n_tokens < min_tokens_) return;
  if (weight.rfind("blk.", 0) != 0 && !(include_output_ && weight == "output.weight")) return;
  Stats& s = stats_[weight];
  if (s.sum_x2.empty()) {
    s.sum_x2.assign(static_cast<size_t>(n_cols), 0.0);
  } else if (s.sum_x2.size() != static_cast<size_t>(n_cols)) {
    throw Error(ErrorKind::invalid_argument, "imatrix: " + weight + " seen with " +
                                                 std::to_string(n_cols) + " columns after " +
                                                 std::to_string(s.sum_x2.size()));
  }
  ++s.ncall;
  s.rows += n_tokens;
  for (int64_t t = 0; t < n_tokens; ++t) {
    const float* row = x + t * n_cols;
    for (int64_t j = 0; j < n_cols; ++j)
      s.sum_x2[static_cast<size_t>(j)] += static_cast<double>(row[j]) * row[j];
  }
  for (double v : s.sum_x2)
    if (!std::isfinite(v))
      throw Error(ErrorKind::invalid_file,
                  "imatrix: non-finite sum of squares in the input of " + weight);
}

ImportanceMatrix ImatrixCollector::result(const std::string& dataset) const {
  ImportanceMatrix m;
  for (const auto& [name, s] : stats_) {
    if (s.rows == 0) continue;
    ImportanceMatrix::Entry e;
    e.ncall = s.ncall;
    e.values.resize(s.sum_x2.size());
    for (size_t j = 0; j < s.sum_x2.size(); ++j)
      e.values[j] = static_cast<float>(s.sum_x2[j] / static_cast<double>(s.rows)) *
                    static_cast<float>(s.ncall);
    m.set(name, std::move(e));
  }
  m.last_call = max_calls();
  m.dataset = dataset;
  return m;
}

int32_t ImatrixCollector::max_calls() const {
  int32_t n = 0;
  for (const auto& [name, s] : stats_) n = std::max(n, s.ncall);
  return n;
}

}  // namespace thinkmesh
