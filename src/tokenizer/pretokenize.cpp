// Pre-tokenizer scanners (see pretokenize.h for the expressions they implement).
//
// Each stage walks the pieces left by the previous stage. Inside a piece, positions outside it
// read as "no code point" (flags 0), exactly as llama.cpp's custom splitters do, so a stage
// never looks across a piece boundary.
#include "tokenizer/pretokenize.h"

#include <array>
#include <utility>

#include "thinkmesh/error.h"
#include "tokenizer/unicode.h"

namespace thinkmesh::tokenizer {
namespace {

using unicode::kLetter;
using unicode::kNumber;
using unicode::kPunctuation;
using unicode::kWhitespace;

struct Range {
  uint32_t begin, end;  // code point indices
};

// The decoded text of one call: code points, their flags and byte offsets (n + 1 entries).
struct Decoded {
  std::vector<uint32_t> cps;
  std::vector<uint16_t> flags;
  std::vector<uint32_t> byte_at;
};

void decode_text(std::string_view text, Decoded& d) {
  d.cps.clear();
  d.flags.clear();
  d.byte_at.clear();
  d.cps.reserve(text.size());
  d.flags.reserve(text.size());
  d.byte_at.reserve(text.size() + 1);
  for (size_t pos = 0; pos < text.size();) {
    d.byte_at.push_back(static_cast<uint32_t>(pos));
    const auto b = static_cast<uint8_t>(text[pos]);
    const uint32_t cp = b < 0x80 ? (++pos, b) : unicode::decode_one(text, pos);
    d.cps.push_back(cp);
    d.flags.push_back(unicode::flags(cp));
  }
  d.byte_at.push_back(static_cast<uint32_t>(text.size()));
}

bool is_cr_lf(uint32_t cp) {
  return cp == '\r' || cp == '\n';
}

uint32_t ascii_lower(uint32_t cp) {
  return cp >= 'A' && cp <= 'Z' ? cp + 32 : cp;
}

// Appends the non-empty pieces [start, cut) for each cut a scanner reports.
class PieceWriter {
 public:
  PieceWriter(std::vector<Range>& out, uint32_t begin) : out_(out), prev_(begin) {}
  void cut(uint32_t end) {
    if (end > prev_) out_.push_back({prev_, end});
    prev_ = end;
  }

 private:
  std::vector<Range>& out_;
  uint32_t prev_;
};

// A view of one piece: code points and flags, with "nothing" outside [begin, end).
struct Piece {
  const Decoded& d;
  uint32_t begin, end;
  uint32_t cp(uint32_t i) const { return i >= begin && i < end ? d.cps[i] : 0xFFFFFFFFu; }
  uint16_t flags(uint32_t i) const { return i >= begin && i < end ? d.flags[i] : 0; }
  bool in(uint32_t i) const { return i >= begin && i < end; }
};

// Length of a contraction at i ('s 't 're 've 'm 'll 'd), 0 when none. `fold` makes it
// case-insensitive (llama3/qwen2).
uint32_t contraction(const Piece& p, uint32_t i, bool fold) {
  if (p.cp(i) != '\'' || !p.in(i + 1)) return 0;
  const uint32_t a = fold ? ascii_lower(p.cp(i + 1)) : p.cp(i + 1);
  if (a == 's' || a == 't' || a == 'm' || a == 'd') return 2;
  if (!p.in(i + 2)) return 0;
  const uint32_t b = fold ? ascii_lower(p.cp(i + 2)) : p.cp(i + 2);
  if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) return 3;
  return 0;
}

// Tail of both gpt2 and llama3: \s+(?!\S) | \s+ (llama3 first tries \s*[\r\n]+).
uint32_t whitespace_run(const Piece& p, uint32_t i, bool newline_rule) {
  uint32_t n = 0, last_newline_end = 0;
  while (p.flags(i + n) & kWhitespace) {
    if (is_cr_lf(p.cp(i + n))) last_newline_end = i + n + 1;
    ++n;
  }
  if (newline_rule && last_newline_end > 0) return last_newline_end - i;  // \s*[\r\n]+
  if (n > 1 && p.in(i + n)) return n - 1;  // \s+(?!\S): leave the last space to the next word
  return n > 0 ? n : 1;                    // \s+, or one code point nothing matched
}

void split_gpt2(const Piece& p, std::vector<Range>& out) {
  PieceWriter w(out, p.begin);
  for (uint32_t i = p.begin; i < p.end;) {
    if (const uint32_t n = contraction(p, i, false)) {
      w.cut(i += n);
      continue;
    }
    const uint32_t cp = p.cp(i);
    const uint32_t j = cp == ' ' ? i + 1 : i;  // " ?" prefix
    const uint16_t f = p.flags(j);
    if (f & kLetter) {
      i = j;
      while (p.flags(i) & kLetter) ++i;
      w.cut(i);
    } else if (f & kNumber) {
      i = j;
      while (p.flags(i) & kNumber) ++i;
      w.cut(i);
    } else if (f != 0 && !(f & (kWhitespace | kLetter | kNumber))) {
      i = j;
      for (uint16_t g = p.flags(i); g != 0 && !(g & (kWhitespace | kLetter | kNumber));)
        g = p.flags(++i);
      w.cut(i);
    } else {
      w.cut(i += whitespace_run(p, i, false));
    }
  }
}

// llama3 (max_digits 3) and qwen2 (max_digits 1).
void split_llama3(const Piece& p, uint32_t max_digits, std::vector<Range>& out) {
  PieceWriter w(out, p.begin);
  for (uint32_t i = p.begin; i < p.end;) {
    if (const uint32_t n = contraction(p, i, true)) {
      w.cut(i += n);
      continue;
    }
    const uint32_t cp = p.cp(i);
    const uint16_t f = p.flags(i);
    // [^\r\n\p{L}\p{N}]?\p{L}+
    if (!is_cr_lf(cp) && !(f & kNumber) && ((f & kLetter) || (p.flags(i + 1) & kLetter))) {
      ++i;
      while (p.flags(i) & kLetter) ++i;
      w.cut(i);
      continue;
    }
    // \p{N}{1,max_digits}
    if (f & kNumber) {
      uint32_t run = 0;
      while (p.flags(i) & kNumber) {
        ++i;
        if (++run == max_digits) {
          w.cut(i);
          run = 0;
        }
      }
      w.cut(i);
      continue;
    }
    // " ?[^\s\p{L}\p{N}]+[\r\n]*"
    const uint16_t f2 = cp == ' ' ? p.flags(i + 1) : f;
    if (f2 != 0 && !(f2 & (kWhitespace | kLetter | kNumber))) {
      if (cp == ' ') ++i;
      for (uint16_t g = p.flags(i); g != 0 && !(g & (kWhitespace | kLetter | kNumber));)
        g = p.flags(++i);
      while (is_cr_lf(p.cp(i))) ++i;
      w.cut(i);
      continue;
    }
    w.cut(i += whitespace_run(p, i, true));
  }
}

// A generic regex stage: `match(p, i)` is the length of the leftmost match starting at i (0:
// none). Matches and the stretches between them become pieces, as std::regex_iterator splits.
template <class Match>
void split_matches(const Piece& p, Match match, std::vector<Range>& out) {
  PieceWriter w(out, p.begin);
  for (uint32_t i = p.begin; i < p.end;) {
    if (const uint32_t n = match(p, i)) {
      w.cut(i);
      w.cut(i += n);
    } else {
      ++i;
    }
  }
  w.cut(p.end);
}

bool is_cjk_or_hangul(uint32_t cp) {
  // [一-龥ࠀ-一가-퟿]: U+4E00..U+9FA5, U+0800..U+4E00, U+AC00..U+D7FF (sic: as llama.cpp lists
  // it)
  return (cp >= 0x4E00 && cp <= 0x9FA5) || (cp >= 0x0800 && cp <= 0x4E00) ||
         (cp >= 0xAC00 && cp <= 0xD7FF);
}

uint32_t run_of(const Piece& p, uint32_t i, uint16_t mask) {
  uint32_t n = 0;
  while (p.flags(i + n) & mask) ++n;
  return n;
}

// [\p{P}<extra ASCII>]+
template <size_t N>
uint32_t punct_run(const Piece& p, uint32_t i, const std::array<char, N>& extra) {
  uint32_t n = 0;
  for (;; ++n) {
    if (!p.in(i + n)) break;
    const uint32_t cp = p.cp(i + n);
    bool ok = (p.flags(i + n) & kPunctuation) != 0;
    for (char c : extra) ok = ok || cp == static_cast<uint32_t>(c);
    if (!ok) break;
  }
  return n;
}

using Stage = void (*)(const Piece&, std::vector<Range>&);

void stage_gpt2(const Piece& p, std::vector<Range>& out) {
  split_gpt2(p, out);
}
void stage_llama3(const Piece& p, std::vector<Range>& out) {
  split_llama3(p, 3, out);
}
void stage_qwen2(const Piece& p, std::vector<Range>& out) {
  split_llama3(p, 1, out);
}
void stage_each_digit(const Piece& p, std::vector<Range>& out) {  // \p{N}
  split_matches(
      p, [](const Piece& q, uint32_t i) -> uint32_t { return (q.flags(i) & kNumber) ? 1 : 0; },
      out);
}
void stage_digit_runs(const Piece& p, std::vector<Range>& out) {  // \p{N}+
  split_matches(
      p, [](const Piece& q, uint32_t i) { return run_of(q, i, kNumber); }, out);
}
void stage_default_punct(const Piece& p, std::vector<Range>& out) {  // [\p{P}\$\+<=>\^~\|]+
  static constexpr std::array<char, 8> kExtra = {'$', '+', '<', '=', '>', '^', '~', '|'};
  split_matches(
      p, [](const Piece& q, uint32_t i) { return punct_run(q, i, kExtra); }, out);
}
void stage_falcon_punct(const Piece& p, std::vector<Range>& out) {  // [\p{P}\$\+<=>\^~\|`]+
  static constexpr std::array<char, 9> kExtra = {'$', '+', '<', '=', '>', '^', '~', '|', '`'};
  split_matches(
      p, [](const Piece& q, uint32_t i) { return punct_run(q, i, kExtra); }, out);
}
void stage_three_ascii_digits(const Piece& p, std::vector<Range>& out) {  // [0-9][0-9][0-9]
  auto digit = [](uint32_t cp) { return cp >= '0' && cp <= '9'; };
  split_matches(
      p,
      [&](const Piece& q, uint32_t i) -> uint32_t {
        return digit(q.cp(i)) && digit(q.cp(i + 1)) && digit(q.cp(i + 2)) ? 3 : 0;
      },
      out);
}
void stage_cr_lf(const Piece& p, std::vector<Range>& out) {  // [\r\n]
  split_matches(
      p, [](const Piece& q, uint32_t i) -> uint32_t { return is_cr_lf(q.cp(i)) ? 1 : 0; }, out);
}
// \s?<class>+ where class is a flag mask.
template <uint16_t Mask>
void stage_space_then_run(const Piece& p, std::vector<Range>& out) {
  split_matches(
      p,
      [](const Piece& q, uint32_t i) -> uint32_t {
        if (const uint32_t n = run_of(q, i, Mask)) return n;
        if ((q.flags(i) & kWhitespace) == 0) return 0;
        const uint32_t n = run_of(q, i + 1, Mask);
        return n ? n + 1 : 0;
      },
      out);
}
void stage_cjk(const Piece& p, std::vector<Range>& out) {
  split_matches(
      p,
      [](const Piece& q, uint32_t i) {
        uint32_t n = 0;
        while (q.in(i + n) && is_cjk_or_hangul(q.cp(i + n))) ++n;
        return n;
      },
      out);
}

struct Pipeline {
  const Stage* stages;
  size_t n;
};

Pipeline pipeline(PreTokenizerKind kind) {
  static constexpr Stage kGpt2[] = {stage_gpt2};
  static constexpr Stage kLlama3[] = {stage_llama3};
  static constexpr Stage kQwen2[] = {stage_qwen2};
  static constexpr Stage kSmollm[] = {stage_each_digit, stage_gpt2};
  static constexpr Stage kDeepseekCoder[] = {stage_cr_lf, stage_space_then_run<kLetter>,
                                             stage_space_then_run<kPunctuation>, stage_cjk,
                                             stage_each_digit};
  static constexpr Stage kFalcon[] = {stage_falcon_punct, stage_gpt2, stage_three_ascii_digits};
  static constexpr Stage kDefault[] = {stage_default_punct, stage_gpt2, stage_digit_runs};
  switch (kind) {
    case PreTokenizerKind::gpt2:
      return {kGpt2, std::size(kGpt2)};
    case PreTokenizerKind::llama3:
      return {kLlama3, std::size(kLlama3)};
    case PreTokenizerKind::qwen2:
      return {kQwen2, std::size(kQwen2)};
    case PreTokenizerKind::smollm:
      return {kSmollm, std::size(kSmollm)};
    case PreTokenizerKind::deepseek_coder:
      return {kDeepseekCoder, std::size(kDeepseekCoder)};
    case PreTokenizerKind::falcon:
      return {kFalcon, std::size(kFalcon)};
    case PreTokenizerKind::default_bpe:
      return {kDefault, std::size(kDefault)};
  }
  return {kGpt2, 1};
}

struct NamedKind {
  std::string_view name;
  PreTokenizerKind kind;
};

constexpr NamedKind kNames[] = {
    {"default", PreTokenizerKind::default_bpe},
    {"gpt-2", PreTokenizerKind::gpt2},
    {"phi-2", PreTokenizerKind::gpt2},
    {"mpt", PreTokenizerKind::gpt2},
    {"olmo", PreTokenizerKind::gpt2},
    {"jais", PreTokenizerKind::gpt2},
    {"roberta-bpe", PreTokenizerKind::gpt2},
    {"jina-es", PreTokenizerKind::gpt2},
    {"jina-de", PreTokenizerKind::gpt2},
    {"jina-v1-en", PreTokenizerKind::gpt2},
    {"jina-v2-es", PreTokenizerKind::gpt2},
    {"jina-v2-de", PreTokenizerKind::gpt2},
    {"jina-v2-code", PreTokenizerKind::gpt2},
    {"gigachat", PreTokenizerKind::gpt2},
    {"llama3", PreTokenizerKind::llama3},
    {"llama-v3", PreTokenizerKind::llama3},
    {"llama-bpe", PreTokenizerKind::llama3},
    {"falcon3", PreTokenizerKind::llama3},
    {"dbrx", PreTokenizerKind::llama3},
    {"smaug-bpe", PreTokenizerKind::llama3},
    {"chatglm-bpe", PreTokenizerKind::llama3},
    {"qwen2", PreTokenizerKind::qwen2},
    {"deepseek-r1-qwen", PreTokenizerKind::qwen2},
    {"stablelm2", PreTokenizerKind::qwen2},
    {"megrez", PreTokenizerKind::qwen2},
    {"smollm", PreTokenizerKind::smollm},
    {"starcoder", PreTokenizerKind::smollm},
    {"refact", PreTokenizerKind::smollm},
    {"command-r", PreTokenizerKind::smollm},
    {"codeshell", PreTokenizerKind::smollm},
    {"exaone", PreTokenizerKind::smollm},
    {"minerva-7b", PreTokenizerKind::smollm},
    {"deepseek-coder", PreTokenizerKind::deepseek_coder},
    {"falcon", PreTokenizerKind::falcon},
};

}  // namespace

PreTokenizerKind pre_tokenizer_kind(std::string_view pre) {
  for (const auto& [name, kind] : kNames) {
    if (name == pre) return kind;
  }
  throw Error(ErrorKind::unsupported,
              "pre-tokenizer '" + std::string(pre) +
                  "' is not supported; supported: " + supported_pre_tokenizers());
}

std::string supported_pre_tokenizers() {
  std::string out;
  for (const auto& named : kNames) out += (out.empty() ? "" : ", ") + std::string(named.name);
  return out;
}

void pretokenize(PreTokenizerKind kind, std::string_view text, std::vector<WordSpan>& words) {
  thread_local Decoded d;
  thread_local std::vector<Range> current, next;
  decode_text(text, d);
  current.assign(1, Range{0, static_cast<uint32_t>(d.cps.size())});
  if (d.cps.empty()) return;
  const Pipeline pipe = pipeline(kind);
  for (size_t s = 0; s < pipe.n; ++s) {
    next.clear();
    for (const Range& r : current) pipe.stages[s](Piece{d, r.begin, r.end}, next);
    std::swap(current, next);
  }
  for (const Range& r : current) {
    words.push_back({d.byte_at[r.begin], d.byte_at[r.end] - d.byte_at[r.begin]});
  }
}

bool replace_malformed_utf8(std::string_view text, std::string& out) {
  size_t pos = 0;
  while (pos < text.size() && static_cast<uint8_t>(text[pos]) < 0x80) ++pos;
  if (pos == text.size()) return false;
  // Decode and re-encode; the text is valid when that reproduces it byte for byte.
  std::string rebuilt(text.substr(0, pos));
  rebuilt.reserve(text.size() + 8);
  while (pos < text.size()) {
    const auto b = static_cast<uint8_t>(text[pos]);
    if (b < 0x80) {
      rebuilt.push_back(static_cast<char>(b));
      ++pos;
    } else {
      unicode::append_utf8(rebuilt, unicode::decode_one(text, pos));
    }
  }
  if (rebuilt == text) return false;
  out = std::move(rebuilt);
  return true;
}

}  // namespace thinkmesh::tokenizer
