// Importance matrices: for every weight matrix, the mean of x² of each input column over a
// calibration text (llama.cpp's imatrix). Quantizing with them weights each value's error by
// how strongly its column is driven, which lowers the error the model actually sees.
//
// File format: llama.cpp c392e50's legacy `imatrix.dat`, so files are interchangeable with
// llama-imatrix / llama-quantize (all integers int32 little-endian, floats F32):
//   n_entries
//   n_entries × (name_len | name bytes | ncall | nval | nval × value)
//   [ last_call | dataset_len | dataset bytes ]   (optional trailer)
// A stored value is mean(x²) × ncall, where ncall counts the matrix products observed; readers
// divide by ncall again.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace thinkmesh {

class ImportanceMatrix {
 public:
  struct Entry {
    int32_t ncall = 0;          // matrix products observed (chunks of the calibration text)
    std::vector<float> values;  // per input column, as stored: mean(x²) × ncall
  };

  // Reads a file. Throws Error(not_found/io) when it cannot be read and Error(invalid_file)
  // naming the path, the entry and the byte offset for anything malformed: truncation, counts
  // that do not fit the file, empty or NUL-containing names, duplicates, negative or
  // non-finite values, trailing bytes.
  static ImportanceMatrix read(const std::string& path);
  static ImportanceMatrix parse(std::span<const uint8_t> bytes,
                                const std::string& display_name = "<memory>");

  // Writes atomically (temporary file renamed). Throws Error(io); Error(invalid_argument)
  // when there are no entries.
  void write(const std::string& path) const;
  std::vector<uint8_t> to_bytes() const;

  void set(std::string name, Entry entry);
  const Entry* find(std::string_view name) const;  // nullptr when absent
  const std::map<std::string, Entry, std::less<>>& entries() const { return entries_; }
  size_t size() const { return entries_.size(); }

  // The per-column importance quantizers use: values / ncall (values as-is when ncall is 0).
  static std::vector<float> importance(const Entry& entry);

  int32_t last_call = 0;  // trailer: chunks processed when the file was written
  std::string dataset;    // trailer: the calibration text's file name

 private:
  std::map<std::string, Entry, std::less<>> entries_;
};

// Accumulates an ImportanceMatrix from ContextOptions::activation_observer calls, as
// llama-imatrix does: per weight, Σx² and the row count of every input column; calls with
// fewer than `min_tokens` rows are ignored, and only `blk.*` weights (plus output.weight when
// asked) are kept.
class ImatrixCollector {
 public:
  explicit ImatrixCollector(bool include_output = false, int64_t min_tokens = 16)
      : include_output_(include_output), min_tokens_(min_tokens) {}

  // x is [n_tokens][n_cols]. Throws Error(invalid_argument) when a weight is seen with a
  // different column count than before, Error(invalid_file) on a non-finite activation sum.
  void observe(const std::string& weight, const float* x, int64_t n_tokens, int64_t n_cols);
  // The matrix so far: mean(x²) × ncall per column, as llama-imatrix stores it.
  ImportanceMatrix result(const std::string& dataset = "") const;
  int32_t max_calls() const;

 private:
  struct Stats {
    std::vector<double> sum_x2;  // per column
    int64_t rows = 0;            // rows observed (every column sees every row)
    int32_t ncall = 0;
  };
  bool include_output_;
  int64_t min_tokens_;
  std::map<std::string, Stats, std::less<>> stats_;
};

// Second-order calibration statistics for GPTQ-style quantization (quantize --hessian): for
// every distinct matrix-product input, H = (1/T) Σ_t x_t x_tᵀ over the T calibration rows
// (n_in × n_in). Weights that read the same input (attn_q/k/v, ffn_gate/up) share one entry.
//
// File format: a GGUF v3 file whose tensors are the entries, F32 [n_in, n_in] (symmetric), each
// named after the first weight that reads the input; metadata:
//   thinkmesh.hessian.version   u32 1
//   thinkmesh.hessian.weights   string array, per tensor: every weight reading it, comma-separated
//                               (the tensor's own name first)
//   thinkmesh.hessian.n_tokens  u64 array, per tensor: T, the rows accumulated
//   thinkmesh.hessian.chunks    u32, thinkmesh.hessian.dataset string
class HessianSet {
 public:
  struct Entry {
    int64_t n = 0;                     // inputs (the weights' ne[0])
    int64_t n_tokens = 0;              // rows accumulated (T >= 1)
    std::vector<float> mean;           // n × n, row-major: (1/T) Σ x xᵀ
    std::vector<std::string> weights;  // weights reading this input; weights[0] names the entry
  };

  // Throws Error(not_found/io) when unreadable, Error(invalid_file) naming the path and the
  // entry for anything else: not GGUF, missing or mismatched metadata arrays, tensors that are
  // not square F32, non-finite values, negative diagonals, empty or duplicate weight names.
  static HessianSet read(const std::string& path);
  static HessianSet parse(std::span<const uint8_t> bytes,
                          const std::string& display_name = "<memory>");
  // Writes atomically. Throws Error(io); Error(invalid_argument) when empty.
  void write(const std::string& path) const;
  std::vector<uint8_t> to_bytes() const;

  // Throws Error(invalid_argument) for a malformed entry or a weight already present.
  void add(Entry entry);
  const Entry* find(std::string_view weight) const;  // nullptr when no entry has it
  const std::vector<Entry>& entries() const { return entries_; }
  size_t size() const { return entries_.size(); }

  int32_t n_chunks = 0;  // calibration chunks
  std::string dataset;   // the calibration text's file name

 private:
  std::vector<Entry> entries_;
  std::map<std::string, size_t, std::less<>> by_weight_;
};

// Accumulates a HessianSet from activation_observer calls (sums in double). Consecutive calls
// with the same input pointer and shape (one matmul_shared dispatch) join one entry. Calls with
// fewer than `min_tokens` rows are ignored; `blk.*` weights and output.weight are kept.
class HessianCollector {
 public:
  explicit HessianCollector(int64_t min_tokens = 16) : min_tokens_(min_tokens) {}
  // x is [n_tokens][n_cols]. Throws Error(invalid_argument) when a weight changes column count
  // or leaves the input it shared before; Error(invalid_file) on non-finite activations.
  void observe(const std::string& weight, const float* x, int64_t n_tokens, int64_t n_cols);
  HessianSet result(const std::string& dataset = "", int32_t n_chunks = 0) const;

 private:
  struct Group {
    int64_t n = 0, rows = 0;
    std::vector<double> sum;  // upper triangle used while accumulating, n × n
    std::vector<std::string> weights;
  };
  int64_t min_tokens_;
  std::vector<Group> groups_;
  std::map<std::string, size_t, std::less<>> group_of_;
  const float* last_x_ = nullptr;
  int64_t last_rows_ = 0, last_cols_ = 0;
  size_t last_group_ = 0;
};

class Model;  // model.h

struct CalibrateOptions {
  int32_t n_ctx = 512;           // default 512; tokens per chunk (BOS + n_ctx - 1 text tokens)
  int32_t n_chunks = -1;         // default -1 = every full chunk of the text
  int32_t n_threads = 2;         // default 2
  bool include_output = false;   // default false (as llama-imatrix): output.weight not collected
  bool collect_hessian = false;  // default false; true: also CalibrateResult::hessian (and
                                 // output.weight's, whose input then has every position)
  // default none. Called after each chunk (i counts from 1 to n).
  std::function<void(int32_t i, int32_t n)> on_chunk;
};

struct CalibrateResult {
  ImportanceMatrix imatrix;
  HessianSet hessian;         // empty unless collect_hessian
  int64_t n_text_tokens = 0;  // tokens of the whole text
  int32_t n_chunks = 0;       // chunks run
};

// Runs `text` through the model as llama-imatrix does: tokenized once (with BOS), cut into
// n_ctx-token chunks whose first token is replaced by BOS, each decoded in one batch from an
// empty KV cache, every matrix product's input observed. Throws Error(invalid_argument) when
// the text has fewer than n_ctx tokens or n_ctx is out of range, Error(not_found/unsupported)
// when the model has no usable tokenizer.
CalibrateResult calibrate(std::shared_ptr<const Model> model, std::string_view text,
                          const CalibrateOptions& options = {}, const std::string& dataset = "");

}  // namespace thinkmesh
