// Errors thrown by the thinkmesh library.
//
// Inside the library every failure is an exception carrying context (file, tensor, offset,
// token, ...) in its message; the CLI and HTTP layers turn them into messages, exit codes and
// status codes. `kind` lets those layers choose the code without parsing the text.
#pragma once

#include <stdexcept>
#include <string>

namespace thinkmesh {

enum class ErrorKind {
  invalid_argument,  // a caller passed a bad value (option, token id, empty prompt, ...)
  invalid_file,      // a file is malformed: truncated, hostile, inconsistent
  unsupported,       // well-formed but not supported (unknown architecture, tensor type, ...)
  not_found,         // a named thing does not exist (file, tensor, metadata key)
  io,                // the operating system refused (open, mmap, write)
  out_of_range,      // a size limit was hit (context full, too many tokens, ...)
  internal,          // a bug in thinkmesh
};

const char* to_string(ErrorKind kind);

class Error : public std::runtime_error {
 public:
  Error(ErrorKind kind, const std::string& message) : std::runtime_error(message), kind_(kind) {}
  ErrorKind kind() const noexcept { return kind_; }

 private:
  ErrorKind kind_;
};

}  // namespace thinkmesh
