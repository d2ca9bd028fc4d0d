// Chat formats of chat.h: detection by substrings (as llama.cpp's llm_chat_detect_template at
// c392e50 does) and rendering.
#include <array>
#include <sstream>
#include <utility>

#include "thinkmesh/chat.h"
#include "thinkmesh/error.h"

namespace thinkmesh {
namespace {

constexpr std::array<std::pair<ChatTemplate, std::string_view>, 6> kNames{{
    {ChatTemplate::chatml, "chatml"},
    {ChatTemplate::llama3, "llama3"},
    {ChatTemplate::llama2, "llama2"},
    {ChatTemplate::llama2_nosys, "llama2-nosys"},
    {ChatTemplate::llama2_sys_bos, "llama2-sys-bos"},
    {ChatTemplate::llama2_sys_strip, "llama2-sys-strip"},
}};

std::string_view trim(std::string_view s) {
  constexpr std::string_view kSpace = " \t\n\r\f\v";
  const size_t first = s.find_first_not_of(kSpace);
  if (first == std::string_view::npos) return {};
  const size_t last = s.find_last_not_of(kSpace);
  return s.substr(first, last - first + 1);
}

// Formats llama.cpp recognises before Llama 3 in its detection order. A template carrying
// their markers is one of them (we do not render those), even if it also mentions Llama 3's.
bool is_other_known_format(std::string_view t) {
  auto has = [t](std::string_view s) { return t.find(s) != std::string_view::npos; };
  return (has("<|assistant|>") && (has("<|end|>") || has("<|user|>"))) ||
         (has("<|user|>") && has("<|endoftext|>")) || has("bos_token + message['role']") ||
         has("<start_of_turn>") || has("'\\n\\nAssistant: ' + eos_token") || has("GPT4 Correct ") ||
         (has("USER: ") && has("ASSISTANT: ")) || (has("### Instruction:") && has("<|EOT|>")) ||
         (has("<|START_OF_TURN_TOKEN|>") && has("<|USER_TOKEN|>"));
}

void render_chatml(std::ostringstream& out, std::span<const ChatMessage> messages, bool add_gen) {
  for (const auto& m : messages)
    out << "<|im_start|>" << m.role << '\n' << m.content << "<|im_end|>\n";
  if (add_gen) out << "<|im_start|>assistant\n";
}

void render_llama3(std::ostringstream& out, std::span<const ChatMessage> messages, bool add_gen) {
  for (const auto& m : messages) {
    out << "<|start_header_id|>" << m.role << "<|end_header_id|>\n\n"
        << trim(m.content) << "<|eot_id|>";
  }
  if (add_gen) out << "<|start_header_id|>assistant<|end_header_id|>\n\n";
}

// Llama 2: "[INST] " opens a turn, a user message closes it with " [/INST]", the assistant's
// reply ends with "</s>" and the next message opens a new turn. No explicit generation prompt:
// the model answers after "[/INST]".
void render_llama2(std::ostringstream& out, std::span<const ChatMessage> messages,
                   ChatTemplate kind) {
  const bool system_block = kind != ChatTemplate::llama2_nosys;
  const bool bos_between_turns = kind == ChatTemplate::llama2_sys_bos;
  const bool strip = kind == ChatTemplate::llama2_sys_strip;
  bool inside_turn = true;
  out << "[INST] ";
  for (const auto& m : messages) {
    const std::string_view content = strip ? trim(m.content) : std::string_view(m.content);
    if (!inside_turn) {
      inside_turn = true;
      out << (bos_between_turns ? "<s>[INST] " : "[INST] ");
    }
    if (m.role == "system") {
      if (system_block) {
        out << "<<SYS>>\n" << content << "\n<</SYS>>\n\n";
      } else {
        out << content << '\n';
      }
    } else if (m.role == "user") {
      out << content << " [/INST]";
    } else {
      out << content << "</s>";
      inside_turn = false;
    }
  }
}

}  // namespace

std::string_view name(ChatTemplate kind) {
  for (const auto& [k, n] : kNames) {
    if (k == kind) return n;
  }
  return "unknown";
}

std::optional<ChatTemplate> parse_chat_template_name(std::string_view text) {
  for (const auto& [k, n] : kNames) {
    if (n == text) return k;
  }
  return std::nullopt;
}

std::string supported_chat_template_names() {
  std::string out;
  for (const auto& [k, n] : kNames) {
    if (!out.empty()) out += ", ";
    out += n;
  }
  return out;
}

std::optional<ChatTemplate> detect_chat_template(std::string_view t) {
  if (auto by_name = parse_chat_template_name(t)) return by_name;
  auto has = [t](std::string_view s) { return t.find(s) != std::string_view::npos; };
  if (has("<|im_start|>")) {
    if (has("<|im_sep|>")) return std::nullopt;  // Phi-4's variant
    return ChatTemplate::chatml;
  }
  if (t.starts_with("mistral") || has("[INST]")) {
    // Mistral v1/v3/v7 wrap [INST] differently; we only render the Llama 2 family.
    if (has("[SYSTEM_PROMPT]") || has("' [INST] ' + system_message") || has("[AVAILABLE_TOOLS]") ||
        t.starts_with("mistral")) {
      return std::nullopt;
    }
    if (has("content.strip()")) return ChatTemplate::llama2_sys_strip;
    if (has("bos_token + '[INST]")) return ChatTemplate::llama2_sys_bos;
    if (has("<<SYS>>")) return ChatTemplate::llama2;
    return ChatTemplate::llama2_nosys;
  }
  if (is_other_known_format(t)) return std::nullopt;
  if (has("<|start_header_id|>") && has("<|end_header_id|>")) return ChatTemplate::llama3;
  return std::nullopt;
}

ChatTemplate resolve_chat_template(const std::optional<std::string>& model_template,
                                   std::string_view override_name) {
  if (!override_name.empty()) {
    if (auto kind = parse_chat_template_name(override_name)) return *kind;
    throw Error(ErrorKind::invalid_argument,
                "unknown chat template '" + std::string(override_name) +
                    "'; supported: " + supported_chat_template_names());
  }
  if (!model_template || model_template->empty()) {
    throw Error(ErrorKind::unsupported,
                "the model has no chat template (tokenizer.chat_template); choose one with "
                "--chat-template (" +
                    supported_chat_template_names() + ")");
  }
  if (auto kind = detect_chat_template(*model_template)) return *kind;
  throw Error(ErrorKind::unsupported,
              "unrecognised chat template in tokenizer.chat_template (starts \"" +
                  model_template->substr(0, 60) + "\"); choose a format with --chat-template (" +
                  supported_chat_template_names() + ")");
}

std::string apply_chat_template(ChatTemplate kind, std::span<const ChatMessage> messages,
                                bool add_generation_prompt) {
  for (size_t i = 0; i < messages.size(); ++i) {
    if (messages[i].role.empty()) {
      throw Error(ErrorKind::invalid_argument,
                  "chat message " + std::to_string(i) + " has an empty role");
    }
  }
  std::ostringstream out;
  switch (kind) {
    case ChatTemplate::chatml:
      render_chatml(out, messages, add_generation_prompt);
      break;
    case ChatTemplate::llama3:
      render_llama3(out, messages, add_generation_prompt);
      break;
    case ChatTemplate::llama2:
    case ChatTemplate::llama2_nosys:
    case ChatTemplate::llama2_sys_bos:
    case ChatTemplate::llama2_sys_strip:
      render_llama2(out, messages, kind);
      break;
  }
  return out.str();
}

}  // namespace thinkmesh
