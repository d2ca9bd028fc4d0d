// Chat templates (chat.h). Expected strings are written by hand from the formats' definitions
// (the models' Jinja templates and llama.cpp's src/llama-chat.cpp at c392e50).
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "thinkmesh/chat.h"
#include "thinkmesh/error.h"

namespace thinkmesh {
namespace {

const std::vector<ChatMessage> kConversation{
    {"system", "You are terse."},
    {"user", "Hi there"},
    {"assistant", "Hello."},
    {"user", "Name a colour."},
};

// Llama 3 Instruct's template, as in models/tokenizers/llama3/tokenizer_config.json.
constexpr const char* kLlama3Jinja =
    "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = "
    "'<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ message['content'] | "
    "trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% "
    "endif %}{{ content }}{% endfor %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}";

// The ChatML core of Qwen2's / SmolLM2's templates.
constexpr const char* kChatmlJinja =
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + "
    "message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ "
    "'<|im_start|>assistant\n' }}{% endif %}";

// Llama-2-chat's template (abridged to the parts detection looks at).
constexpr const char* kLlama2Jinja =
    "{% if messages[0]['role'] == 'system' %}{% set system_message = '<<SYS>>\\n' + "
    "messages[0]['content'].strip() + '\\n<</SYS>>\\n\\n' %}{% endif %}{% for message in "
    "loop_messages %}{% if message['role'] == 'user' %}{{ bos_token + '[INST] ' + content.strip() "
    "+ ' [/INST]' }}{% endif %}{% endfor %}";

TEST(ChatTemplate, ChatmlWithGenerationPrompt) {
  const std::string expected =
      "<|im_start|>system\nYou are terse.<|im_end|>\n"
      "<|im_start|>user\nHi there<|im_end|>\n"
      "<|im_start|>assistant\nHello.<|im_end|>\n"
      "<|im_start|>user\nName a colour.<|im_end|>\n"
      "<|im_start|>assistant\n";
  EXPECT_EQ(apply_chat_template(ChatTemplate::chatml, kConversation, true), expected);
  EXPECT_EQ(apply_chat_template(ChatTemplate::chatml, kConversation, false),
            expected.substr(0, expected.size() - std::string("<|im_start|>assistant\n").size()));
}

TEST(ChatTemplate, ChatmlKeepsWhitespace) {
  const std::vector<ChatMessage> m{{"user", "  spaced \n"}};
  EXPECT_EQ(apply_chat_template(ChatTemplate::chatml, m, false),
            "<|im_start|>user\n  spaced \n<|im_end|>\n");
}

TEST(ChatTemplate, Llama3TrimsContent) {
  const std::vector<ChatMessage> m{{"system", " Be brief. "}, {"user", "\nHello\n"}};
  EXPECT_EQ(apply_chat_template(ChatTemplate::llama3, m, true),
            "<|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|>"
            "<|start_header_id|>user<|end_header_id|>\n\nHello<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\n");
  EXPECT_EQ(apply_chat_template(ChatTemplate::llama3, m, false),
            "<|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|>"
            "<|start_header_id|>user<|end_header_id|>\n\nHello<|eot_id|>");
}

TEST(ChatTemplate, Llama2PutsTheSystemPromptInSysBlock) {
  EXPECT_EQ(apply_chat_template(ChatTemplate::llama2, kConversation, true),
            "[INST] <<SYS>>\nYou are terse.\n<</SYS>>\n\nHi there [/INST]Hello.</s>"
            "[INST] Name a colour. [/INST]");
}

TEST(ChatTemplate, Llama2Variants) {
  EXPECT_EQ(apply_chat_template(ChatTemplate::llama2_sys_bos, kConversation, true),
            "[INST] <<SYS>>\nYou are terse.\n<</SYS>>\n\nHi there [/INST]Hello.</s>"
            "<s>[INST] Name a colour. [/INST]");
  EXPECT_EQ(apply_chat_template(ChatTemplate::llama2_nosys, kConversation, true),
            "[INST] You are terse.\nHi there [/INST]Hello.</s>[INST] Name a colour. [/INST]");
  const std::vector<ChatMessage> padded{{"user", "  Hi  "}, {"assistant", " Yo "}};
  EXPECT_EQ(apply_chat_template(ChatTemplate::llama2_sys_strip, padded, true),
            "[INST] Hi [/INST]Yo</s>");
  EXPECT_EQ(apply_chat_template(ChatTemplate::llama2, padded, true),
            "[INST]   Hi   [/INST] Yo </s>");
}

TEST(ChatTemplate, EmptyConversation) {
  EXPECT_EQ(apply_chat_template(ChatTemplate::chatml, {}, true), "<|im_start|>assistant\n");
  EXPECT_EQ(apply_chat_template(ChatTemplate::chatml, {}, false), "");
}

TEST(ChatTemplate, RejectsEmptyRole) {
  const std::vector<ChatMessage> m{{"", "x"}};
  EXPECT_THROW(apply_chat_template(ChatTemplate::chatml, m, true), Error);
}

TEST(ChatTemplate, DetectsFormatsFromJinja) {
  EXPECT_EQ(detect_chat_template(kChatmlJinja), ChatTemplate::chatml);
  EXPECT_EQ(detect_chat_template(kLlama3Jinja), ChatTemplate::llama3);
  // The Llama-2-chat template strips content (llama.cpp checks "content.strip()" first).
  EXPECT_EQ(detect_chat_template(kLlama2Jinja), ChatTemplate::llama2_sys_strip);
  EXPECT_EQ(detect_chat_template("{{ bos_token + '[INST] ' + m }}<<SYS>>"),
            ChatTemplate::llama2_sys_bos);
  EXPECT_EQ(detect_chat_template("{{ '[INST] ' + m }}<<SYS>>"), ChatTemplate::llama2);
  EXPECT_EQ(detect_chat_template("{{ '[INST] ' + m + ' [/INST]' }}"), ChatTemplate::llama2_nosys);
  // A bare name is accepted as a template string, as llama.cpp does.
  EXPECT_EQ(detect_chat_template("llama3"), ChatTemplate::llama3);
}

TEST(ChatTemplate, DoesNotClaimOtherFormats) {
  EXPECT_EQ(detect_chat_template("{{'<|im_start|>' + role + '<|im_sep|>'}}"), std::nullopt);  // Phi-4
  EXPECT_EQ(detect_chat_template("{{'[SYSTEM_PROMPT]' + s + '[INST]'}}"), std::nullopt);  // Mistral
  EXPECT_EQ(detect_chat_template("<start_of_turn>user\n"), std::nullopt);                // Gemma
  EXPECT_EQ(detect_chat_template("{{ message.content }}"), std::nullopt);
  EXPECT_EQ(detect_chat_template(""), std::nullopt);
}

TEST(ChatTemplate, ResolveOverridesAndErrors) {
  EXPECT_EQ(resolve_chat_template(std::string(kLlama3Jinja), ""), ChatTemplate::llama3);
  EXPECT_EQ(resolve_chat_template(std::string(kLlama3Jinja), "chatml"), ChatTemplate::chatml);
  EXPECT_EQ(resolve_chat_template(std::nullopt, "llama2"), ChatTemplate::llama2);
  try {
    resolve_chat_template(std::nullopt, "");
    FAIL() << "no template and no override must throw";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::unsupported);
    EXPECT_NE(std::string(e.what()).find("--chat-template"), std::string::npos) << e.what();
  }
  try {
    resolve_chat_template(std::string("{{ message.content }}"), "");
    FAIL() << "an unknown template must throw";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("--chat-template"), std::string::npos) << e.what();
  }
  try {
    resolve_chat_template(std::nullopt, "vicuna");
    FAIL() << "an unknown name must throw";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::invalid_argument);
    EXPECT_NE(std::string(e.what()).find("chatml"), std::string::npos) << e.what();
  }
}

TEST(ChatTemplate, NamesRoundTrip) {
  for (auto kind : {ChatTemplate::chatml, ChatTemplate::llama3, ChatTemplate::llama2,
                    ChatTemplate::llama2_nosys, ChatTemplate::llama2_sys_bos,
                    ChatTemplate::llama2_sys_strip}) {
    EXPECT_EQ(parse_chat_template_name(name(kind)), kind);
  }
  EXPECT_EQ(parse_chat_template_name("ChatML"), std::nullopt);
}

}  // namespace
}  // namespace thinkmesh
