/**
 * A deterministic mixed-text corpus for tests and benchmarks: English prose, code, long numbers,
 * CJK, emoji with ZWJ sequences, combining accents, runs of spaces/tabs/newlines, and text that
 * looks like special tokens. Everything a tokenizer pair can disagree on, from a seed.
 */
import { rng } from '../src/core/random.js';

export { rng };

const PROSE = [
  'The committee met on Tuesday to review the quarterly figures, which showed a modest rise in revenue.',
  "It's not that we didn't try; we'd simply run out of time, and the river wouldn't wait for anyone.",
  'Distillation moves a small student toward a large teacher, one token at a time, on its own samples.',
  'She wrote: "Meet me at 7:45 p.m. near the old lighthouse — bring the map, the lantern and a coat."',
  'In 1969, roughly 600 million people watched the landing; by 2024 the footage had been restored twice.',
  'Hyphenated-words, e-mail addresses like first.last@example.org, and URLs such as https://example.com/a?b=c&d=e.',
  'Prices rose 3.75% year over year, while the median rent reached $2,415.50 per month in the city centre.',
  'The café served crème brûlée, jalapeño poppers and a naïve façade of Zürich-style coöperation.',
];

const CODE = [
  'def fib(n: int) -> int:\n    a, b = 0, 1\n    for _ in range(n):\n        a, b = b, a + b\n    return a\n',
  'for (let i = 0; i < xs.length; i++) {\n\tif (xs[i] !== undefined) total += xs[i] * 0x1F;\n}\n',
  '#include <vector>\nint main() { std::vector<int> v{1, 2, 3}; return v.size() == 3 ? 0 : 1; }\n',
  'SELECT id, name FROM users WHERE created_at >= \'2024-01-01\' AND score > 99.5 ORDER BY id DESC;\n',
  '{"key": [1, 2.5e-3, null, true], "nested": {"a\\tb": "\\u00e9"}}\n',
  '    if x==y:  return  {  }   # weird   spacing\n\n\n',
];

const CJK = ['你好，世界。今天天气很好，我们去公园散步吧。', '東京都の人口は約1400万人です。', '안녕하세요, 만나서 반갑습니다.', '数学题：３４５＋６７８＝１０２３。', '他说：“我们明天见！”'];
const OTHER_SCRIPTS = ['Привет, как дела?', 'مرحبا بالعالم', 'नमस्ते दुनिया', 'Γειά σου Κόσμε', 'שלום עולם', 'สวัสดีชาวโลก'];
const EMOJI = ['👩‍👩‍👧‍👦', '👨🏽‍💻', '🏳️‍🌈', '❤️‍🔥', '🇯🇵', '👍🏿', '🧑‍🤝‍🧑', '😀', '🤖', '1️⃣'];
// Decomposed accents (base + combining mark): NFC-normalizing tokenizers change these bytes.
const COMBINING = ['e\u0301', 'a\u0300', 'n\u0303', 'o\u0308', 'c\u0327', 'A\u030a', 'u\u0308\u0301', 'Z\u0335\u0321'];
const SPECIAL_LOOKALIKE = ['<|im_start|>', '<|im_end|>', '<s>', '</s>', '<|endoftext|>', '<bos>', '<end_of_turn>',
  '<|begin_of_text|>', '<|eot_id|>', '<0x41>', '▁', '<unk>', '<｜User｜>', '[INST]', '<think>', '</think>'];
const SPACES = ['  ', '   ', '\t', '\t\t', '\n', '\n\n', '\r\n', ' \n ', '    \n', '\u00a0', '\u3000'];

function pick<T>(r: () => number, xs: readonly T[]): T {
  return xs[Math.floor(r() * xs.length)]!;
}

function number(r: () => number): string {
  const kind = r();
  const digits = 1 + Math.floor(r() * 18);
  let s = String(1 + Math.floor(r() * 9));
  for (let i = 1; i < digits; i++) s += String(Math.floor(r() * 10));
  if (kind < 0.2) return s.replace(/\B(?=(\d{3})+(?!\d))/g, ',');
  if (kind < 0.35) return `${s}.${Math.floor(r() * 1000)}`;
  if (kind < 0.45) return `-${s}`;
  if (kind < 0.5) return `${s}e-${1 + Math.floor(r() * 20)}`;
  return s;
}

/** One piece of mixed text. */
export function mixedPiece(r: () => number): string {
  const k = r();
  if (k < 0.3) return pick(r, PROSE);
  if (k < 0.42) return pick(r, CODE);
  if (k < 0.54) return `${number(r)} ${pick(r, ['+', '-', '*', '/', '='])} ${number(r)}`;
  if (k < 0.64) return pick(r, CJK);
  if (k < 0.7) return pick(r, OTHER_SCRIPTS);
  if (k < 0.78) return Array.from({ length: 1 + Math.floor(r() * 4) }, () => pick(r, EMOJI)).join(r() < 0.5 ? '' : ' ');
  if (k < 0.85) return `r${pick(r, COMBINING)}sum${pick(r, COMBINING)} caf${pick(r, COMBINING)}`;
  if (k < 0.92) return `${pick(r, SPECIAL_LOOKALIKE)}${pick(r, ['', ' ', 'x'])}${pick(r, SPECIAL_LOOKALIKE)}`;
  return pick(r, SPACES).repeat(1 + Math.floor(r() * 3));
}

/** At least minBytes of UTF-8 mixed text, deterministic in seed. */
export function mixedCorpus(minBytes: number, seed = 1): string {
  const r = rng(seed);
  const parts: string[] = [];
  let bytes = 0;
  while (bytes < minBytes) {
    const p = mixedPiece(r) + pick(r, [' ', ' ', '\n', '', '  ', '\n\n']);
    parts.push(p);
    bytes += Buffer.byteLength(p);
  }
  return parts.join('');
}

/** The corpus split into documents of about docBytes each (a batch of responses). */
export function mixedDocuments(count: number, docBytes: number, seed = 1): string[] {
  const r = rng(seed);
  return Array.from({ length: count }, (_, i) => mixedCorpus(Math.max(1, Math.round(docBytes * (0.5 + r()))), seed * 7919 + i));
}
