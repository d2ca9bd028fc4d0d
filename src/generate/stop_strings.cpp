// StopStringFilter (generate.h): holds back streamed text that may still become a stop string
// or that ends inside a UTF-8 sequence.
#include <algorithm>

#include "thinkmesh/generate.h"

namespace thinkmesh {
namespace {

// Length of the trailing bytes of `s` that start a UTF-8 sequence not yet complete (0 when the
// text ends on a boundary or with bytes that can never complete, which are passed through).
size_t incomplete_utf8_tail(std::string_view s) {
  const size_t n = s.size();
  for (size_t back = 1; back <= std::min<size_t>(3, n); ++back) {
    const auto byte = static_cast<unsigned char>(s[n - back]);
    if ((byte & 0xC0) == 0x80) continue;  // continuation byte: keep looking for the lead
    size_t need = 0;
    if ((byte & 0xE0) == 0xC0) {
      need = 2;
    } else if ((byte & 0xF0) == 0xE0) {
      need = 3;
    } else if ((byte & 0xF8) == 0xF0) {
      need = 4;
    }
    return need > back ? back : 0;
  }
  return 0;
}

}  // namespace

StopStringFilter::StopStringFilter(std::vector<std::string> stop_strings) {
  for (auto& s : stop_strings) {
    if (!s.empty()) stops_.push_back(std::move(s));
  }
}

std::string StopStringFilter::push(std::string_view bytes) {
  if (stopped_) return {};
  pending_.append(bytes);

  // A stop string can only start inside pending_: everything emitted before was released
  // because no suffix of it could begin one.
  size_t first_match = std::string::npos;
  for (size_t i = 0; i < stops_.size(); ++i) {
    const size_t at = pending_.find(stops_[i]);
    if (at < first_match) {
      first_match = at;
      matched_ = stops_[i];
    }
  }
  if (first_match != std::string::npos) {
    stopped_ = true;
    std::string out = pending_.substr(0, first_match);
    pending_.clear();
    return out;
  }

  // Hold back the longest suffix that is a proper prefix of some stop string.
  size_t hold_from = pending_.size();
  for (const auto& stop : stops_) {
    const size_t longest = std::min(stop.size() - 1, pending_.size());
    for (size_t len = longest; len > 0; --len) {
      if (pending_.compare(pending_.size() - len, len, stop, 0, len) == 0) {
        hold_from = std::min(hold_from, pending_.size() - len);
        break;
      }
    }
  }
  hold_from = std::min(hold_from, pending_.size() - incomplete_utf8_tail(pending_));
  std::string out = pending_.substr(0, hold_from);
  pending_.erase(0, hold_from);
  return out;
}

std::string StopStringFilter::finish() {
  std::string out = stopped_ ? std::string() : std::move(pending_);
  pending_.clear();
  return out;
}

}  // namespace thinkmesh
