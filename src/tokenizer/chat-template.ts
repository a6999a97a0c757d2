/** Renders a tokenizer's own chat template (tokenizer_config.json `chat_template`) with @huggingface/jinja. */
import { Template } from '@huggingface/jinja';
import { ErrorCode, XopdError } from '../core/errors.js';

export interface ChatMessage {
  role: string;
  content: string;
}

export interface ChatTemplateContext {
  bos_token?: string;
  eos_token?: string;
  pad_token?: string;
  unk_token?: string;
}

/** Picks the template string: a plain string, or the 'default' entry of a named list. */
export function pickTemplate(raw: unknown): string | undefined {
  if (typeof raw === 'string') return raw;
  if (Array.isArray(raw)) {
    const named = raw as Array<{ name?: string; template?: string }>;
    return (named.find((t) => t.name === 'default') ?? named[0])?.template;
  }
  return undefined;
}

export class ChatTemplate {
  private readonly template: Template;

  constructor(source: string, private readonly context: ChatTemplateContext) {
    try {
      this.template = new Template(source);
    } catch (err) {
      throw new XopdError(ErrorCode.CHAT_TEMPLATE, `the chat template does not parse: ${(err as Error).message}`, { cause: err });
    }
  }

  render(messages: ChatMessage[], addGenerationPrompt: boolean): string {
    try {
      return this.template.render({
        ...this.context,
        messages,
        add_generation_prompt: addGenerationPrompt,
      });
    } catch (err) {
      if (err instanceof XopdError) throw err;
      throw new XopdError(ErrorCode.CHAT_TEMPLATE, `the chat template failed or refused the messages: ${(err as Error).message}`, { cause: err });
    }
  }
}
