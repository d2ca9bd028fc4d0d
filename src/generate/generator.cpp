// Generator (generate.h): prompt → KV cache → sample → stream, on sequence 0 of a Context.
#include <algorithm>
#include <chrono>
#include <string>

#include "thinkmesh/batch.h"
#include "thinkmesh/context.h"
#include "thinkmesh/error.h"
#include "thinkmesh/generate.h"

namespace thinkmesh {
namespace {

constexpr int32_t kSeq = 0;  // the Generator owns sequence 0 of its context

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace

std::string_view to_string(StopReason reason) {
  switch (reason) {
    case StopReason::eog:
      return "eog";
    case StopReason::stop_string:
      return "stop_string";
    case StopReason::max_tokens:
      return "max_tokens";
    case StopReason::context_full:
      return "context_full";
    case StopReason::cancelled:
      return "cancelled";
  }
  return "unknown";
}

double GenerateTimings::prompt_tokens_per_second() const {
  return prompt_seconds > 0 ? static_cast<double>(prompt_tokens) / prompt_seconds : 0.0;
}

double GenerateTimings::generate_tokens_per_second() const {
  return generate_seconds > 0 ? static_cast<double>(generated_tokens) / generate_seconds : 0.0;
}

Generator::Generator(Context& context, const Tokenizer& tokenizer)
    : context_(context), tokenizer_(tokenizer) {}

void Generator::clear() {
  context_.seq_rm(kSeq, 0, -1);
  cached_.clear();
}

void Generator::decode_prompt(std::span<const TokenId> tokens) {
  const auto n_batch = static_cast<size_t>(std::max<int32_t>(1, context_.n_batch()));
  Batch batch;
  for (size_t start = 0; start < tokens.size(); start += n_batch) {
    const size_t end = std::min(tokens.size(), start + n_batch);
    batch.clear();
    for (size_t i = start; i < end; ++i) {
      // Only the prompt's last position needs logits: the first token is sampled from it.
      const bool want_logits = i + 1 == tokens.size();
      batch.add(tokens[i], static_cast<int32_t>(cached_.size()), kSeq, want_logits);
      cached_.push_back(tokens[i]);
    }
    context_.decode(batch);
  }
  last_logits_index_ = static_cast<int32_t>((tokens.size() - 1) % n_batch);
}

void Generator::decode_one(TokenId token) {
  Batch batch;
  batch.add(token, static_cast<int32_t>(cached_.size()), kSeq, true);
  context_.decode(batch);
  cached_.push_back(token);
  last_logits_index_ = 0;
}

GenerateResult Generator::generate(std::span<const TokenId> prompt, const GenerateOptions& options,
                                   const TextCallback& on_text) {
  if (prompt.empty()) throw Error(ErrorKind::invalid_argument, "generate: the prompt is empty");
  const auto n_vocab = static_cast<TokenId>(tokenizer_.vocab_size());
  for (const TokenId id : prompt) {
    if (id < 0 || id >= n_vocab) {
      throw Error(ErrorKind::invalid_argument, "generate: prompt token id " + std::to_string(id) +
                                                   " is outside the vocabulary (size " +
                                                   std::to_string(n_vocab) + ")");
    }
  }
  const auto n_ctx = static_cast<size_t>(context_.n_ctx());
  if (prompt.size() > n_ctx) {
    throw Error(ErrorKind::out_of_range,
                "generate: the prompt has " + std::to_string(prompt.size()) +
                    " tokens but the context holds " + std::to_string(n_ctx) +
                    " (raise --ctx or shorten the prompt)");
  }

  // Reuse the longest prefix the KV cache already holds; at least the last prompt token is
  // decoded again so that its logits exist.
  size_t keep = 0;
  while (keep < cached_.size() && keep < prompt.size() && cached_[keep] == prompt[keep]) ++keep;
  keep = std::min(keep, prompt.size() - 1);
  context_.seq_rm(kSeq, static_cast<int32_t>(keep), -1);
  cached_.resize(keep);

  GenerateResult result;
  const auto prompt_start = std::chrono::steady_clock::now();
  decode_prompt(prompt.subspan(keep));
  result.timings.prompt_tokens = static_cast<int64_t>(prompt.size() - keep);
  result.timings.prompt_seconds = seconds_since(prompt_start);

  Sampler sampler(options.sampling);
  for (const TokenId id : prompt) sampler.accept(id);
  StopStringFilter filter(options.stop_strings);
  auto emit = [&](const std::string& text) {
    if (text.empty()) return true;
    result.text += text;
    return on_text ? on_text(text) : true;
  };

  const auto gen_start = std::chrono::steady_clock::now();
  result.stop_reason = StopReason::max_tokens;
  while (true) {
    if (options.max_tokens >= 0 &&
        static_cast<int32_t>(result.tokens.size()) >= options.max_tokens) {
      result.stop_reason = StopReason::max_tokens;
      break;
    }
    const TokenId token = sampler.sample(context_.logits(last_logits_index_));
    sampler.accept(token);
    if (tokenizer_.is_eog(token)) {
      result.stop_reason = StopReason::eog;
      break;
    }
    result.tokens.push_back(token);
    if (!emit(filter.push(tokenizer_.token_to_piece(token)))) {
      result.stop_reason = StopReason::cancelled;
      break;
    }
    if (filter.stopped()) {
      result.stop_reason = StopReason::stop_string;
      break;
    }
    if (cached_.size() >= n_ctx) {
      result.stop_reason = StopReason::context_full;
      break;
    }
    if (options.max_tokens >= 0 &&
        static_cast<int32_t>(result.tokens.size()) >= options.max_tokens) {
      // The last token is not decoded: nothing would read its logits. The KV cache therefore
      // ends with the prompt and all generated tokens but the last; cached() says so.
      result.stop_reason = StopReason::max_tokens;
      break;
    }
    decode_one(token);
  }
  if (result.stop_reason != StopReason::cancelled) emit(filter.finish());
  result.timings.generated_tokens = static_cast<int64_t>(result.tokens.size());
  result.timings.generate_seconds = seconds_since(gen_start);
  return result;
}

}  // namespace thinkmesh
