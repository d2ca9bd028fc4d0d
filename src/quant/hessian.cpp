// Second-order calibration statistics (imatrix.h, HessianSet / HessianCollector): the GGUF file
// that holds them and the collector that builds them from the decoder's activation observer.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>

#include "thinkmesh/error.h"
#include "thinkmesh/gguf.h"
#include "thinkmesh/imatrix.h"

namespace thinkmesh {
namespace {

constexpr const char* kVersionKey = "thinkmesh.hessian.version";
constexpr const char* kWeightsKey = "thinkmesh.hessian.weights";
constexpr const char* kTokensKey = "thinkmesh.hessian.n_tokens";
constexpr const char* kChunksKey = "thinkmesh.hessian.chunks";
constexpr const char* kDatasetKey = "thinkmesh.hessian.dataset";
constexpr uint32_t kVersion = 1;

std::vector<std::string> split_names(const std::string& s) {
  std::vector<std::string> out;
  size_t start = 0;
  while (true) {
    const size_t comma = s.find(',', start);
    out.push_back(s.substr(start, comma == std::string::npos ? std::string::npos : comma - start));
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return out;
}

// Why `e` cannot be an entry, or "" when it can.
std::string entry_problem(const HessianSet::Entry& e) {
  if (e.n < 1) return "size " + std::to_string(e.n) + " (must be >= 1)";
  if (e.n_tokens < 1) return "token count " + std::to_string(e.n_tokens) + " (must be >= 1)";
  if (e.mean.size() != static_cast<size_t>(e.n * e.n))
    return std::to_string(e.mean.size()) + " values for " + std::to_string(e.n) + " x " +
           std::to_string(e.n);
  if (e.weights.empty()) return "no weight names";
  for (const auto& w : e.weights)
    if (w.empty() || w.find(',') != std::string::npos || w.find('\0') != std::string::npos)
      return "weight name '" + w + "' (empty, or with ',' or NUL)";
  for (size_t i = 0; i < e.mean.size(); ++i)
    if (!std::isfinite(e.mean[i])) return "value " + std::to_string(i) + " is not finite";
  for (int64_t i = 0; i < e.n; ++i)
    if (e.mean[static_cast<size_t>(i * e.n + i)] < 0)
      return "diagonal " + std::to_string(i) + " is negative";
  return "";
}

}  // namespace

void HessianSet::add(Entry entry) {
  const std::string why = entry_problem(entry);
  if (!why.empty())
    throw Error(ErrorKind::invalid_argument,
                "hessian entry " + (entry.weights.empty() ? std::string("?") : entry.weights[0]) +
                    ": " + why);
  for (const auto& w : entry.weights)
    if (by_weight_.count(w))
      throw Error(ErrorKind::invalid_argument, "hessian: weight " + w + " appears twice");
  for (const auto& w : entry.weights) by_weight_.emplace(w, entries_.size());
  entries_.push_back(std::move(entry));
}

const HessianSet::Entry* HessianSet::find(std::string_view weight) const {
  const auto it = by_weight_.find(weight);
  return it == by_weight_.end() ? nullptr : &entries_[it->second];
}

namespace {

// The file's writer; tensor data are views of the entries (keep the set alive until written).
gguf::Writer hessian_writer(const HessianSet& set) {
  if (set.entries().empty())
    throw Error(ErrorKind::invalid_argument, "a hessian file needs at least one entry");
  gguf::Writer writer;
  std::vector<std::string> names;
  std::vector<gguf::Value> tokens;
  for (const auto& e : set.entries()) {
    std::string joined;
    for (const auto& w : e.weights) joined += (joined.empty() ? "" : ",") + w;
    names.push_back(joined);
    tokens.push_back(gguf::Value::u64(static_cast<uint64_t>(e.n_tokens)));
  }
  writer.set(kVersionKey, gguf::Value::u32(kVersion));
  writer.set(kWeightsKey, gguf::Value::string_array(names));
  writer.set(kTokensKey, gguf::Value::array(gguf::ValueType::u64, std::move(tokens)));
  writer.set(kChunksKey, gguf::Value::u32(static_cast<uint32_t>(std::max(0, set.n_chunks))));
  writer.set(kDatasetKey, gguf::Value::string(set.dataset));
  for (const auto& e : set.entries()) {
    const auto* p = reinterpret_cast<const uint8_t*>(e.mean.data());
    writer.add_tensor(e.weights[0], TensorType::F32, {e.n, e.n},
                      std::span<const uint8_t>(p, e.mean.size() * sizeof(float)));
  }
  return writer;
}

}  // namespace

std::vector<uint8_t> HessianSet::to_bytes() const {
  return hessian_writer(*this).to_bytes();
}

void HessianSet::write(const std::string& path) const {
  hessian_writer(*this).write(path);
}

HessianSet HessianSet::parse(std::span<const uint8_t> bytes, const std::string& display_name) {
  const gguf::File file = gguf::File::parse(bytes, display_name);
  auto fail = [&](const std::string& why) -> Error {
    return Error(ErrorKind::invalid_file, display_name + ": hessian: " + why);
  };
  const gguf::Value* version = file.find(kVersionKey);
  if (!version || !version->is_integer()) throw fail(std::string("no ") + kVersionKey);
  if (version->as_int() != kVersion)
    throw fail("version " + std::to_string(version->as_int()) + " (this build reads " +
               std::to_string(kVersion) + ")");
  const gguf::Value* weights = file.find(kWeightsKey);
  const gguf::Value* tokens = file.find(kTokensKey);
  if (!weights || !weights->is_array() || !tokens || !tokens->is_array())
    throw fail(std::string("no ") + kWeightsKey + " / " + kTokensKey + " arrays");
  const auto& w_items = weights->as_array().items;
  const auto& t_items = tokens->as_array().items;
  const auto& tensors = file.tensors();
  if (tensors.empty()) throw fail("no tensors");
  if (w_items.size() != tensors.size() || t_items.size() != tensors.size())
    throw fail(std::to_string(tensors.size()) + " tensors but " + std::to_string(w_items.size()) +
               " weight lists and " + std::to_string(t_items.size()) + " token counts");
  HessianSet set;
  set.n_chunks =
      static_cast<int32_t>(std::clamp<int64_t>(file.get_int_or(kChunksKey, 0), 0, INT32_MAX));
  set.dataset = file.get_string_or(kDatasetKey, "");
  for (size_t i = 0; i < tensors.size(); ++i) {
    const auto& t = tensors[i];
    const std::string where = "tensor " + std::to_string(i) + " '" + t.name + "'";
    if (t.type != TensorType::F32 || t.ne.size() != 2 || t.ne[0] != t.ne[1])
      throw fail(where + ": must be a square 2-D F32 tensor");
    Entry e;
    e.n = t.ne[0];
    if (!t_items[i].is_integer() || t_items[i].as_int() < 1)
      throw fail(where + ": the token count must be an integer >= 1");
    e.n_tokens = t_items[i].as_int();
    if (w_items[i].type() != gguf::ValueType::string)
      throw fail(where + ": the weight list is not a string");
    e.weights = split_names(w_items[i].as_string());
    if (e.weights[0] != t.name)
      throw fail(where + ": its weight list starts with '" + e.weights[0] + "'");
    const auto data = file.tensor_data(t);
    e.mean.resize(static_cast<size_t>(e.n * e.n));
    std::memcpy(e.mean.data(), data.data(), e.mean.size() * sizeof(float));
    const std::string why = entry_problem(e);
    if (!why.empty()) throw fail(where + ": " + why);
    for (const auto& w : e.weights)
      if (set.by_weight_.count(w)) throw fail(where + ": weight " + w + " appears twice");
    set.add(std::move(e));
  }
  return set;
}

HessianSet HessianSet::read(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec))
    throw Error(ErrorKind::not_found, path + ": hessian file not found");
  const gguf::File file = gguf::File::open(path);
  return parse(file.bytes(), path);
}

void HessianCollector::observe(const std::string& weight, const float* x, int64_t n_tokens,
                               int64_t n_cols) {
  if (n_tokens < min_tokens_ || (weight.rfind("blk.", 0) != 0 && weight != "output.weight")) {
    last_x_ = nullptr;
    return;
  }
  const bool same_input =
      last_x_ != nullptr && x == last_x_ && n_tokens == last_rows_ && n_cols == last_cols_;
  size_t g;
  const auto it = group_of_.find(weight);
  if (it != group_of_.end()) {
    g = it->second;
    if (groups_[g].n != n_cols)
      throw Error(ErrorKind::invalid_argument, "hessian: " + weight + " seen with " +
                                                   std::to_string(n_cols) + " columns after " +
                                                   std::to_string(groups_[g].n));
    if (groups_[g].weights[0] != weight) {
      // A follower: its input was accumulated by the group's first weight just before.
      if (!same_input || last_group_ != g)
        throw Error(
            ErrorKind::invalid_argument,
            "hessian: " + weight + " no longer shares the input of " + groups_[g].weights[0]);
      return;
    }
  } else if (same_input && groups_[last_group_].n == n_cols) {
    g = last_group_;
    groups_[g].weights.push_back(weight);
    group_of_.emplace(weight, g);
    return;
  } else {
    g = groups_.size();
    Group fresh;
    fresh.n = n_cols;
    fresh.sum.assign(static_cast<size_t>(n_cols * n_cols), 0.0);
    fresh.weights.push_back(weight);
    groups_.push_back(std::move(fresh));
    group_of_.emplace(weight, g);
  }
  Group& G = groups_[g];
  const int64_t n = n_cols;
  std::vector<double> row(static_cast<size_t>(n));
  for (int64_t t = 0; t < n_tokens; ++t) {
    const float* xr = x + t * n;
    for (int64_t j = 0; j < n; ++j) row[static_cast<size_t>(j)] = xr[j];
    for (int64_t i = 0; i < n; ++i) {
      const double xi = row[static_cast<size_t>(i)];
      if (xi == 0) continue;
      double* h = G.sum.data() + i * n;
      for (int64_t j = i; j < n; ++j) h[j] += xi * row[static_cast<size_t>(j)];
    }
  }
  for (int64_t i = 0; i < n; ++i)
    if (!std::isfinite(G.sum[static_cast<size_t>(i * n + i)]))
      throw Error(ErrorKind::invalid_file,
                  "hessian: non-finite activations in the input of " + weight);
  G.rows += n_tokens;
  last_x_ = x;
  last_rows_ = n_tokens;
  last_cols_ = n_cols;
  last_group_ = g;
}

HessianSet HessianCollector::result(const std::string& dataset, int32_t n_chunks) const {
  HessianSet set;
  set.dataset = dataset;
  set.n_chunks = n_chunks;
  for (const Group& G : groups_) {
    if (G.rows == 0) continue;
    HessianSet::Entry e;
    e.n = G.n;
    e.n_tokens = G.rows;
    e.weights = G.weights;
    e.mean.resize(static_cast<size_t>(G.n * G.n));
    const double inv = 1.0 / static_cast<double>(G.rows);
    for (int64_t i = 0; i < G.n; ++i)
      for (int64_t j = i; j < G.n; ++j) {
        const auto v = static_cast<float>(G.sum[static_cast<size_t>(i * G.n + j)] * inv);
        e.mean[static_cast<size_t>(i * G.n + j)] = v;
        e.mean[static_cast<size_t>(j * G.n + i)] = v;
      }
    set.add(std::move(e));
  }
  return set;
}

}  // namespace thinkmesh
