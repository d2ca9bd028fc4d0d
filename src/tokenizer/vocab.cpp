// Vocab::finalize: the derived tables every tokenizer family needs (text → id, the special
// tokens parse_special looks for, the end-of-generation set) and the checks that make a
// hostile vocabulary an Error instead of an out-of-range read later. The name-based rules
// (which tokens end a turn, which eat surrounding whitespace) are llama.cpp's (c392e50,
// llama_vocab::impl::load), kept in the same order because they change token kinds.
#include <algorithm>
#include <array>
#include <cctype>
#include <string>

#include <fmt/core.h>

#include "thinkmesh/error.h"
#include "tokenizer/vocab.h"

namespace thinkmesh::tokenizer {
namespace {

bool is_one_of(const std::string& text, std::initializer_list<std::string_view> names) {
  return std::any_of(names.begin(), names.end(), [&](std::string_view n) { return text == n; });
}

bool contains_any(const std::string& text, std::initializer_list<std::string_view> parts) {
  return std::any_of(parts.begin(), parts.end(),
                     [&](std::string_view p) { return text.find(p) != std::string::npos; });
}

void check_id(const Vocab& vocab, const std::optional<TokenId>& id, std::string_view what) {
  if (id && (*id < 0 || static_cast<size_t>(*id) >= vocab.tokens.size())) {
    throw Error(ErrorKind::invalid_file, fmt::format("tokenizer: {} token id {} is out of range "
                                                     "(vocabulary has {} tokens)",
                                                     what, *id, vocab.tokens.size()));
  }
}

// Token texts llama.cpp recognises as special roles when the metadata does not name them.
struct NamedRole {
  std::optional<TokenId> Vocab::*field;
  std::initializer_list<std::string_view> names;
};

const std::array<NamedRole, 8>& named_roles() {
  static const std::array<NamedRole, 8> roles = {{
      {&Vocab::eot,
       {"<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>", "<EOT>",
        "<｜end▁of▁sentence｜>"}},
      {&Vocab::eom, {"<|eom_id|>"}},
      {&Vocab::fim_pre, {"<|fim_prefix|>", "<fim-prefix>", "<｜fim▁begin｜>", "<PRE>"}},
      {&Vocab::fim_suf, {"<|fim_suffix|>", "<fim-suffix>", "<｜fim▁hole｜>", "<SUF>"}},
      {&Vocab::fim_mid, {"<|fim_middle|>", "<fim-middle>", "<｜fim▁end｜>", "<MID>"}},
      {&Vocab::fim_pad, {"<|fim_pad|>", "<fim-pad>", "<PAD>"}},
      {&Vocab::fim_rep, {"<|fim_repo|>", "<|repo_name|>", "<fim-repo>", "<REPO>"}},
      {&Vocab::fim_sep, {"<|file_sep|>"}},
  }};
  return roles;
}

}  // namespace

std::optional<TokenId> Vocab::find(std::string_view text) const {
  const auto it = token_to_id.find(std::string(text));
  if (it == token_to_id.end()) return std::nullopt;
  return it->second;
}

void Vocab::finalize() {
  const size_t n = tokens.size();
  if (n == 0) throw Error(ErrorKind::invalid_file, "tokenizer: the vocabulary is empty");
  if (n > static_cast<size_t>(INT32_MAX)) {
    throw Error(ErrorKind::invalid_file, fmt::format("tokenizer: {} tokens is too many", n));
  }
  if (!scores.empty() && scores.size() != n) {
    throw Error(ErrorKind::invalid_file,
                fmt::format("tokenizer: {} scores for {} tokens", scores.size(), n));
  }
  if (kinds.empty()) kinds.assign(n, TokenKind::normal);
  if (kinds.size() != n) {
    throw Error(ErrorKind::invalid_file,
                fmt::format("tokenizer: {} token types for {} tokens", kinds.size(), n));
  }

  // llama.cpp renames empty tokens so that no token can match the empty string.
  for (size_t i = 0; i < n; ++i) {
    if (tokens[i].empty()) tokens[i] = fmt::format("[EMPTY_{}]", i);
  }

  // Inserted in id order into the same container type llama.cpp uses: the name heuristics
  // below take the first match in iteration order, so this keeps their choice identical.
  token_to_id.clear();
  for (size_t i = 0; i < n; ++i) {
    const auto [it, inserted] = token_to_id.emplace(tokens[i], static_cast<TokenId>(i));
    if (!inserted) {
      throw Error(ErrorKind::invalid_file,
                  fmt::format("tokenizer: token text '{}' appears twice (ids {} and {})",
                              tokens[i], it->second, i));
    }
  }

  for (auto [field, what] : {std::pair{&Vocab::bos, "BOS"}, {&Vocab::eos, "EOS"},
                             {&Vocab::eot, "EOT"}, {&Vocab::eom, "EOM"}, {&Vocab::unk, "UNK"},
                             {&Vocab::pad, "PAD"}, {&Vocab::sep, "SEP"}, {&Vocab::cls, "CLS"},
                             {&Vocab::mask, "MASK"}, {&Vocab::linefeed, "linefeed"},
                             {&Vocab::fim_pre, "FIM prefix"}, {&Vocab::fim_suf, "FIM suffix"},
                             {&Vocab::fim_mid, "FIM middle"}, {&Vocab::fim_pad, "FIM pad"},
                             {&Vocab::fim_rep, "FIM repo"}, {&Vocab::fim_sep, "FIM separator"}}) {
    check_id(*this, this->*field, what);
  }

  // Roles found by token text; such a token is forced to CONTROL as llama.cpp does.
  for (const auto& [text, id] : token_to_id) {
    for (const auto& role : named_roles()) {
      if (!(this->*role.field) && is_one_of(text, role.names)) {
        this->*role.field = id;
        kinds[static_cast<size_t>(id)] = TokenKind::control;
      }
    }
  }

  // End of generation: the FIM pad/repo/separator tokens, the tokens named like an end of
  // turn, and EOS/EOT/EOM.
  eog_ids.clear();
  for (const auto& id : {fim_pad, fim_rep, fim_sep}) {
    if (id) eog_ids.push_back(*id);
  }
  for (const auto& [text, id] : token_to_id) {
    if (is_one_of(text, {"<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>",
                         "<|eom_id|>", "<EOT>"})) {
      eog_ids.push_back(id);
      kinds[static_cast<size_t>(id)] = TokenKind::control;
    }
  }
  for (const auto& id : {eos, eot, eom}) {
    if (id) eog_ids.push_back(*id);
  }
  std::sort(eog_ids.begin(), eog_ids.end());
  eog_ids.erase(std::unique(eog_ids.begin(), eog_ids.end()), eog_ids.end());

  // The special-token cache, sorted as llama.cpp sorts it (std::sort, longest first): for
  // equally long tokens the order decides overlapping matches, so the same algorithm is used.
  special_tokens_by_length.clear();
  for (size_t i = 0; i < n; ++i) {
    const TokenKind k = kinds[i];
    if (k == TokenKind::control || k == TokenKind::user_defined || k == TokenKind::unknown) {
      special_tokens_by_length.push_back(static_cast<TokenId>(i));
    }
  }
  std::sort(special_tokens_by_length.begin(), special_tokens_by_length.end(),
            [&](TokenId a, TokenId b) {
              return tokens[static_cast<size_t>(a)].size() > tokens[static_cast<size_t>(b)].size();
            });

  // Whitespace stripping around special tokens, keyed on the pre-tokenizer and model name.
  strip.clear();
  auto set_strip = [&](std::string_view text, uint8_t flag, bool on) {
    const auto id = find(text);
    if (!id) return;
    if (strip.empty()) strip.assign(n, 0);
    auto& s = strip[static_cast<size_t>(*id)];
    s = on ? (s | flag) : (s & ~flag);
  };
  std::string name = model_name;
  std::transform(name.begin(), name.end(), name.begin(),
                 [](char c) { return static_cast<char>(std::tolower(static_cast<unsigned char>(c))); });
  if (contains_any(pre, {"jina-v2-de", "jina-v2-es", "jina-v2-code"})) {
    set_strip("<mask>", kStripLeft, true);
  } else if (contains_any(name, {"phi-3", "phi3"})) {
    if (strip.empty()) strip.assign(n, 0);
    for (TokenId id : special_tokens_by_length) strip[static_cast<size_t>(id)] |= kStripRight;
    set_strip("</s>", kStripRight, true);
    for (const char* t : {"<unk>", "<s>", "<|endoftext|>"}) set_strip(t, kStripRight, false);
  }

  // What tokenize will need.
  if (family == VocabFamily::wpm) {
    if (!bos || !sep) {
      throw Error(ErrorKind::invalid_file,
                  "tokenizer: a WordPiece vocabulary needs [CLS] (BOS) and [SEP] ids");
    }
  } else {
    if (add_bos && !bos) {
      throw Error(ErrorKind::invalid_file,
                  "tokenizer: add_bos_token is set but the vocabulary has no BOS token");
    }
    if (add_eos && !eos) {
      throw Error(ErrorKind::invalid_file,
                  "tokenizer: add_eos_token is set but the vocabulary has no EOS token");
    }
  }
}

}  // namespace thinkmesh::tokenizer
