#include "thinkmesh/error.h"

namespace thinkmesh {

const char* to_string(ErrorKind kind) {
  switch (kind) {
    case ErrorKind::invalid_argument: return "invalid argument";
    case ErrorKind::invalid_file: return "invalid file";
    case ErrorKind::unsupported: return "unsupported";
    case ErrorKind::not_found: return "not found";
    case ErrorKind::io: return "i/o error";
    case ErrorKind::out_of_range: return "out of range";
    case ErrorKind::internal: return "internal error";
  }
  return "error";
}

}  // namespace thinkmesh
