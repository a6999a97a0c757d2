/**
 * PromptParser: the chat messages behind prompt ids that a tokenizer's own chat template rendered
 * (DESIGN 9: a trainer sends student-template prompt ids; the teacher needs the messages).
 *
 * Nothing is hard-coded per family. The template is rendered once with sentinel contents for every
 * role sequence of up to four turns (system, user, assistant; sequences the template refuses are
 * skipped); cutting each rendering at the sentinels gives the literal text the template writes
 *   before the first message   (opens, by its role),
 *   between two messages       (separators, by the role pair),
 *   after the last message     (closes, by its role; generation prompt included).
 * All of it is taken in the token BYTE stream (DESIGN 2), the same space the prompt ids are read
 * in, so a SentencePiece space the encoder prepends after a control token is part of the literal.
 *
 * A prompt is parsed by a bounded depth-first search over those literals (a message ends first at a
 * literal holding a control token, then at plain-text ones, which may also be content; the earliest
 * end first; at one place, the longer, more specific literal first; user before system when a
 * template writes both alike) and every complete parse is VERIFIED: the messages rendered again by
 * the same template and encoded must give exactly the prompt ids. Where two parses render alike
 * (Gemma writes a system message as the head of the first user turn), the first verified one is
 * returned: for Gemma that is a user turn holding both texts, which is what the student saw.
 * A prompt with no verified parse is an XopdError E_PROMPT_PARSE saying how far it got.
 */
import { ErrorCode, XopdError } from '../core/errors.js';
import type { ChatMessage } from './chat-template.js';
import type { Tokenizer } from './tokenizer.js';

/** Roles the parser knows, in the order tried when two of them open alike. */
const ROLES = ['user', 'system', 'assistant'] as const;
type Role = (typeof ROLES)[number];

/** Letters and digits only: survives trim, NFC and SentencePiece alike, and no template rewrites it. */
const sentinel = (i: number) => `XQOPDSENTINEL${i}QX`;

interface Literal {
  text: string;
  /** holds a marker token's text (an added token): content holding it would have been split there */
  strong: boolean;
}

/** The literals of one template, in the token byte stream. */
interface Grammar {
  opens: Map<Role, Literal[]>;
  seps: Map<string, Literal[]>;
  closes: Map<Role, Literal[]>;
}

export interface PromptParserOptions {
  /** longest role sequence rendered while learning the template (default 4) */
  probeTurns?: number;
  /** search steps allowed per prompt before it is refused (default 20000) */
  maxSteps?: number;
}

const utf8 = new TextDecoder('utf-8', { fatal: false, ignoreBOM: true });
const MAX_VERIFICATIONS = 32;

export class PromptParser {
  readonly tokenizer: Tokenizer;
  private readonly grammar: Grammar;
  private readonly maxSteps: number;

  constructor(tokenizer: Tokenizer, opts: PromptParserOptions = {}) {
    this.tokenizer = tokenizer;
    if (!tokenizer.hasChatTemplate)
      throw new XopdError(ErrorCode.CHAT_TEMPLATE, `tokenizer ${tokenizer.name} has no chat template, so its prompts cannot be read back as messages: give it one (--student-chat-template) or send prompts as plain text`);
    this.maxSteps = opts.maxSteps ?? 20_000;
    this.grammar = learn(tokenizer, opts.probeTurns ?? 4);
    if (this.grammar.opens.size === 0)
      throw new XopdError(ErrorCode.CHAT_TEMPLATE, `the chat template of ${tokenizer.name} renders no conversation of system/user/assistant turns with their contents intact`);
  }

  /** The text of ids as the parser reads it: their token bytes (DESIGN 2) as UTF-8. */
  streamOf(ids: Int32Array): string {
    return utf8.decode(this.tokenizer.bytesOf(ids));
  }

  /** The messages whose rendering (generation prompt on) encodes to exactly `ids`. */
  parse(ids: Int32Array): ChatMessage[] {
    const text = this.streamOf(ids);
    const g = this.grammar;
    let steps = 0;
    let furthest = -1;
    let expected: string[] = [];
    const note = (at: number, role: Role) => {
      if (at < furthest) return;
      if (at > furthest) expected = [];
      furthest = at;
      const lits = [...(g.closes.get(role) ?? []), ...ROLES.flatMap((r) => g.seps.get(`${role}>${r}`) ?? [])];
      for (const l of lits) if (!expected.includes(l.text)) expected.push(l.text);
    };
    const messages: ChatMessage[] = [];
    let verifications = 0;
    const verify = (): boolean => {
      // Each check renders and encodes the whole prompt: a bounded number of them per prompt.
      if (++verifications > MAX_VERIFICATIONS) {
        steps = this.maxSteps + 1;
        return false;
      }
      try {
        const again = this.tokenizer.encode(this.tokenizer.applyChatTemplate(messages, { addGenerationPrompt: true }), { addSpecialTokens: false });
        return again.length === ids.length && again.every((v, i) => v === ids[i]);
      } catch {
        return false;  // a template that refuses the parsed conversation: not this parse
      }
    };
    // The content of a message of `role` starts at `at`: try every place it can end.
    const extend = (at: number, role: Role): boolean => {
      if (++steps > this.maxSteps) return false;
      note(at, role);
      const ends: Array<{ end: number; next: Role | null; after: number; len: number; strong: boolean }> = [];
      for (const l of g.closes.get(role) ?? [])
        if (text.endsWith(l.text) && text.length - l.text.length >= at) ends.push({ end: text.length - l.text.length, next: null, after: text.length, len: l.text.length, strong: l.strong });
      for (const next of ROLES) {
        for (const l of g.seps.get(`${role}>${next}`) ?? []) {
          // A control token cannot be content, so its first occurrence ends the message; plain text can.
          for (let q = text.indexOf(l.text, at), n = 0; q >= 0 && n < (l.strong ? 1 : 32); q = text.indexOf(l.text, q + 1), n++)
            ends.push({ end: q, next, after: q + l.text.length, len: l.text.length, strong: l.strong });
        }
      }
      // Markers with a control token first (plain text like "\n\n" may be content: split there last),
      // then the earliest end, the end of the prompt before a separator there, the longer marker.
      ends.sort((a, b) => Number(b.strong) - Number(a.strong) || a.end - b.end || (a.next === null ? -1 : 0) - (b.next === null ? -1 : 0) || b.len - a.len);
      for (const e of ends) {
        messages.push({ role, content: text.slice(at, e.end) });
        if (e.next === null ? verify() : extend(e.after, e.next)) return true;
        messages.pop();
        if (steps > this.maxSteps) return false;
      }
      return false;
    };
    const starts = ROLES.flatMap((role) => (g.opens.get(role) ?? []).filter((l) => text.startsWith(l.text)).map((l) => ({ role, len: l.text.length })))
      .sort((a, b) => b.len - a.len || ROLES.indexOf(a.role) - ROLES.indexOf(b.role));
    for (const s of starts) if (extend(s.len, s.role)) return messages;

    const name = this.tokenizer.name;
    const show = (s: string) => JSON.stringify(s.length > 60 ? s.slice(0, 60) + '…' : s);
    if (starts.length === 0) {
      const opens = [...new Set([...g.opens.values()].flat().map((l) => l.text))];
      throw new XopdError(ErrorCode.PROMPT_PARSE, `the prompt (${ids.length} tokens) is not a rendering of ${name}'s chat template: it begins ${show(text)}, not with ${opens.map(show).join(' or ')}`);
    }
    const why = steps > this.maxSteps ? `the search gave up after ${Math.min(steps, this.maxSteps)} steps and ${verifications} re-renderings` : 'no reading renders back to the same ids';
    throw new XopdError(ErrorCode.PROMPT_PARSE,
      `the prompt (${ids.length} tokens) is not a rendering of ${name}'s chat template with its generation prompt (${why}): ` +
      `after byte ${furthest} (${show(text.slice(furthest))}) one of ${expected.slice(0, 6).map(show).join(', ')} was expected to end the turn`);
  }
}

/** Renders every role sequence of up to `turns` messages with sentinel contents and cuts out the literals. */
function learn(tok: Tokenizer, turns: number): Grammar {
  const g: Grammar = { opens: new Map(), seps: new Map(), closes: new Map() };
  // Markers: the texts the encoder splits out as single ids (added tokens, special or not), but not
  // whitespace runs (Gemma 3 adds "\n\n" as a token, and contents are full of those).
  const controls = Array.from(tok.addedIds, (id) => utf8.decode(tok.tokenBytes(id))).filter((s) => /\S/.test(s));
  const add = <K>(map: Map<K, Literal[]>, key: K, text: string) => {
    const list = map.get(key) ?? [];
    if (!list.some((l) => l.text === text)) list.push({ text, strong: controls.some((c) => text.includes(c)) });
    map.set(key, list);
  };
  const seqs: Role[][] = [];
  const grow = (prefix: Role[]) => {
    if (prefix.length > 0) seqs.push(prefix);
    if (prefix.length < turns) for (const r of ROLES) grow([...prefix, r]);
  };
  grow([]);
  for (const seq of seqs) {
    let rendered: string;
    try {
      rendered = tok.applyChatTemplate(seq.map((role, i) => ({ role, content: sentinel(i) })), { addGenerationPrompt: true });
    } catch {
      continue;  // the template refuses this order of roles
    }
    const stream = utf8.decode(tok.bytesOf(tok.encode(rendered, { addSpecialTokens: false })));
    const pieces: string[] = [];
    let at = 0;
    for (let i = 0; i < seq.length; i++) {
      const j = stream.indexOf(sentinel(i), at);
      if (j < 0) break;
      pieces.push(stream.slice(at, j));
      at = j + sentinel(i).length;
    }
    if (pieces.length < seq.length) continue;  // a content the template drops: nothing to learn here
    pieces.push(stream.slice(at));
    add(g.opens, seq[0]!, pieces[0]!);
    for (let i = 1; i < seq.length; i++) add(g.seps, `${seq[i - 1]}>${seq[i]}`, pieces[i]!);
    add(g.closes, seq[seq.length - 1]!, pieces[seq.length]!);
  }
  return g;
}
