/**
 * An accelerator for Tokenizer.encode: the official Rust binding of Hugging Face tokenizers (npm
 * `tokenizers`: not a dependency of the package, since it holds 64 MB of prebuilt binaries for every
 * platform; `npm install tokenizers` beside xopd enables it), built from the same tokenizer.json. It gives the same ids
 * as @huggingface/tokenizers (test/serve-encoder.test.ts checks every family on the test corpora),
 * 2-3x faster on this machine, and it encodes on libuv's thread pool, off the calling thread.
 * Used where installed; everything works without it.
 */
import { createRequire } from 'node:module';
import path from 'node:path';
import type { Tokenizer } from './tokenizer.js';

export interface AsyncEncoder {
  readonly name: string;
  /** The ids of text, without special tokens added (as Tokenizer.encode(text, { addSpecialTokens: false })). */
  encode(text: string): Promise<Int32Array>;
}

interface RustTokenizer {
  encode(text: string, pair: null, opts: { addSpecialTokens: boolean }): Promise<{ getIds(): number[] }>;
}
interface RustBinding {
  Tokenizer: { fromFile(file: string): RustTokenizer };
}

let binding: RustBinding | null | undefined;

/** The Rust encoder of tok, or undefined where the package is not installed or tok has no folder. */
export function rustEncoder(tok: Tokenizer): AsyncEncoder | undefined {
  if (binding === undefined) {
    try {
      binding = createRequire(import.meta.url)('tokenizers') as RustBinding;
    } catch {
      binding = null;
    }
  }
  if (!binding || !tok.dir) return undefined;
  let rust: RustTokenizer;
  try {
    rust = binding.Tokenizer.fromFile(path.join(tok.dir, 'tokenizer.json'));
  } catch {
    return undefined;  // a tokenizer.json the binding cannot read: the JavaScript encoder serves
  }
  return {
    name: 'tokenizers (Rust)',
    encode: async (text) => Int32Array.from((await rust.encode(text, null, { addSpecialTokens: false })).getIds()),
  };
}
