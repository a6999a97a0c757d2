/**
 * Chat templates for tokenizers whose package ships none. LLAMA2_CHAT_TEMPLATE writes the Llama 2
 * chat format ("<s>[INST] <<SYS>>\n…\n<</SYS>>\n\nuser [/INST] answer </s>"), written for these
 * tests: every marker but <s> and </s> is plain text, the hard case for prompt recovery.
 */
export const LLAMA2_CHAT_TEMPLATE = [
  "{%- for message in messages -%}",
  "{%- if message['role'] == 'user' -%}",
  "{{ bos_token + '[INST] ' }}",
  "{%- if loop.index0 == 1 and messages[0]['role'] == 'system' -%}{{ '<<SYS>>\\n' + messages[0]['content'] + '\\n<</SYS>>\\n\\n' }}{%- endif -%}",
  "{{ message['content'] + ' [/INST]' }}",
  "{%- elif message['role'] == 'assistant' -%}",
  "{{ ' ' + message['content'] + ' ' + eos_token }}",
  "{%- endif -%}",
  "{%- endfor -%}",
].join('');
