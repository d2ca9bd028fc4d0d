// A read-only memory map of a whole file. Model weights are used in place from it, never
// copied, so resident memory grows only with the pages actually touched.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

namespace thinkmesh {

class MappedFile {
 public:
  // Maps `path` read-only. Throws Error(io / not_found) naming the path on failure.
  // An empty file maps to an empty span.
  explicit MappedFile(const std::string& path);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  MappedFile(MappedFile&& other) noexcept;
  MappedFile& operator=(MappedFile&& other) noexcept;

  std::span<const uint8_t> bytes() const { return {data_, size_}; }
  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  const std::string& path() const { return path_; }

  // Hints the kernel to read the whole file ahead (MADV_WILLNEED); optional.
  void prefetch() const;

 private:
  void release() noexcept;
  std::string path_;
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

}  // namespace thinkmesh
