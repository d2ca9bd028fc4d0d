// Chat templates: a list of {role, content} messages → the prompt text a chat model expects.
//
// Not a Jinja engine: like llama.cpp (src/llama-chat.cpp at c392e50) we recognise a model's
// `tokenizer.chat_template` by substrings it contains and render the known format ourselves.
// Supported formats (names accepted by --chat-template):
//
//   chatml           <|im_start|>{role}\n{content}<|im_end|>\n ...  then <|im_start|>assistant\n
//                    (Qwen, SmolLM2, ...; detected by "<|im_start|>")
//   llama3           <|start_header_id|>{role}<|end_header_id|>\n\n{trimmed content}<|eot_id|> ...
//                    then <|start_header_id|>assistant<|end_header_id|>\n\n
//                    (detected by "<|start_header_id|>" and "<|end_header_id|>")
//   llama2           [INST] <<SYS>>\n{system}\n<</SYS>>\n\n{user} [/INST]{assistant}</s>[INST] ...
//                    (detected by "[INST]" with "<<SYS>>")
//   llama2-nosys     as llama2, the system text as a plain "{system}\n" line ("[INST]" alone)
//   llama2-sys-bos   as llama2, each later turn opens with "<s>[INST] " ("bos_token + '[INST]")
//   llama2-sys-strip as llama2, contents stripped of surrounding whitespace ("content.strip()")
//
// The rendered text holds no BOS: the tokenizer adds it (tokenize with add_special for the
// first turn, parse_special so the markers become their special ids).
#pragma once

#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace thinkmesh {

struct ChatMessage {
  std::string role;  // "system", "user", "assistant"
  std::string content;
};

enum class ChatTemplate { chatml, llama3, llama2, llama2_nosys, llama2_sys_bos, llama2_sys_strip };

// The --chat-template name of a format ("chatml", ...).
std::string_view name(ChatTemplate kind);
// A format by name; nullopt for unknown names.
std::optional<ChatTemplate> parse_chat_template_name(std::string_view name);
// Every supported name, comma-separated (for messages).
std::string supported_chat_template_names();

// Recognises a Jinja template string (a GGUF's `tokenizer.chat_template`); nullopt when it is
// none of the supported formats (including formats llama.cpp knows but we do not render, such
// as Phi-4's ChatML variant or the Mistral ones).
std::optional<ChatTemplate> detect_chat_template(std::string_view jinja);

// The format to use: `override_name` when not empty, else the one detected in `model_template`.
// Throws Error(invalid_argument) for an unknown override name and Error(unsupported) when the
// model has no template or an unrecognised one, suggesting --chat-template.
ChatTemplate resolve_chat_template(const std::optional<std::string>& model_template,
                                   std::string_view override_name);

// Renders `messages`; with `add_generation_prompt` the text ends with the opening of an
// assistant turn. Throws Error(invalid_argument) for an empty role.
std::string apply_chat_template(ChatTemplate kind, std::span<const ChatMessage> messages,
                                bool add_generation_prompt);

}  // namespace thinkmesh
