/**
 * Cases of other projects' alignment test suites, ported to xopd's definition (DESIGN 3). Written
 * from reading those suites; nothing is copied. Each case names where it comes from and how its
 * expectation reads in xopd (`translation`), and is run over the real tokenizers of all 20 ordered
 * pairs by test/align-conformance.test.ts.
 *
 * Token-list cases (`TokenListCase`) give each side as a list of token texts, as the upstream test
 * does. Each text is spelled with real ids of the family (test/helpers/conformance.ts `spell`); the
 * chunks xopd finds over those ids are read back as groups of the listed tokens (two listed tokens
 * are in one group when some chunk holds ids of both: the connected components), and a group is
 * 'exact', 'approx' (some chunk of it APPROX) or 'tail' (some chunk of it TAIL). The expected groups
 * are the upstream expectation rewritten in those terms: xopd's chunks are the connected components
 * of an overlap alignment, bytes that differ are never equal (no normalization, no case folding),
 * and a differing region is one APPROX chunk holding both sides' tokens.
 */

/** A listed token: text (UTF-8), raw bytes (a token holding part of a character), or a control id of the family. */
export type ListedToken = string | { bytes: number[] } | { control: 'bos' | 'endOfTurn' };

export type GroupFlag = 'exact' | 'approx' | 'tail';

export interface TokenListCase {
  /** upstream file › test (and parameter) */
  upstream: string;
  student: ListedToken[];
  teacher: ListedToken[];
  /** [student listed tokens, teacher listed tokens, flag], in order */
  groups: Array<[number[], number[], GroupFlag]>;
  /** what upstream expects and why xopd's expectation reads as it does */
  translation: string;
}

const TOKENIZATIONS_PY = 'explosion/tokenizations python/tests/test_main.py';
const TOKENIZATIONS_RS = 'explosion/tokenizations src/tests.rs';
const XTOKEN = 'NVIDIA-NeMo/RL tests/unit/algorithms/x_token/test_token_aligner.py';
const XTOKEN_NATIVE = 'NVIDIA-NeMo/RL tests/unit/algorithms/x_token/test_token_aligner_native.py';

/** explosion/tokenizations: get_alignments (token lists) and get_charmap (one token per character). */
export const TOKENIZATIONS_CASES: TokenListCase[] = [
  {
    upstream: `${TOKENIZATIONS_PY} › test_get_alignments[fo,o / foo]`,
    student: ['fo', 'o'], teacher: ['foo'],
    groups: [[[0, 1], [0], 'exact']],
    translation: 'a2b [[0],[0]], b2a [[0,1]]: both student tokens overlap the one teacher token; in xopd one exact chunk.',
  },
  {
    upstream: `${TOKENIZATIONS_PY} › test_get_alignments[fø,o / foo]`,
    student: ['fø', 'o'], teacher: ['foo'],
    groups: [[[0, 1], [0], 'approx']],
    translation: 'the same groups; upstream matches ø to o after normalizing, xopd compares bytes: APPROX.',
  },
  {
    upstream: `${TOKENIZATIONS_PY} › test_get_alignments[New,York / New York]`,
    student: ['New', 'York'], teacher: ['New York'],
    groups: [[[0, 1], [0], 'approx']],
    translation: 'upstream ignores the space; in xopd the space is a byte only the teacher has: one group, APPROX.',
  },
  {
    upstream: `${TOKENIZATIONS_PY} › test_get_alignments[今日は…]`,
    student: ['今日は', '\t', 'いい', '天気だ', '。'], teacher: ['今日', 'は', 'いい', '天気', 'た', '。'],
    groups: [[[0], [0, 1], 'exact'], [[1], [], 'approx'], [[2], [2], 'exact'], [[3], [3, 4], 'approx'], [[4], [5], 'exact']],
    translation: 'a2b [[0,1],[],[2],[3,4],[5]]: the same groups. The tab maps to nothing upstream; in xopd it is a ' +
      'student-only differing region (APPROX). だ/た match upstream after stripping the voicing mark; their bytes differ: APPROX.',
  },
  {
    upstream: `${TOKENIZATIONS_RS} › test_get_alignment[fあo①が,bar / fあo1かb,ar]`,
    student: ['fあo①が', 'bar'], teacher: ['fあo1かb', 'ar'],
    groups: [[[0, 1], [0, 1], 'approx']],
    translation: 'a2b [[0],[0,1]], b2a [[0,1],[1]]: one connected group; ① vs 1 and が vs か differ in bytes: APPROX.',
  },
  {
    upstream: `${TOKENIZATIONS_RS} › test_get_alignment[New York / New,York]`,
    student: ['New York'], teacher: ['New', 'York'],
    groups: [[[0], [0, 1], 'approx']],
    translation: 'a2b [[0,1]]: one group; the space only the student has makes it APPROX.',
  },
  {
    upstream: `${TOKENIZATIONS_RS} › test_get_alignment[A'B / A,B]`,
    student: ["A'B"], teacher: ['A', 'B'],
    groups: [[[0], [0, 1], 'approx']],
    translation: "a2b [[0,1]]: one group; the apostrophe only the student has makes it APPROX.",
  },
  {
    upstream: `${TOKENIZATIONS_RS} › test_get_alignment[A'b / a,b]`,
    student: ["A'b"], teacher: ['a', 'b'],
    groups: [[[0], [0, 1], 'approx']],
    translation: 'a2b [[0,1]] after case folding; xopd does not fold case: one group, APPROX.',
  },
  {
    upstream: `${TOKENIZATIONS_RS} › test_get_alignment["" / "",""]`,
    student: [''], teacher: ['', ''],
    groups: [],
    translation: 'empty tokens map to nothing; an empty text has no id in a real vocabulary, so there are no chunks.',
  },
  {
    upstream: `${TOKENIZATIONS_RS} › test_get_alignment[à,la,gorge / a,la,gorge]`,
    student: ['à', 'la', 'gorge'], teacher: ['a', 'la', 'gorge'],
    groups: [[[0], [0], 'approx'], [[1], [1], 'exact'], [[2], [2], 'exact']],
    translation: 'a2b [[0],[1],[2]]: the same groups; à and a differ in bytes: APPROX, the rest exact.',
  },
  // get_charmap: one listed token per character, so the character map is a token alignment.
  {
    upstream: `${TOKENIZATIONS_RS} › test_get_charmap[å / a+ring]`,
    student: ['\u00e5'], teacher: ['a', '\u030a'],
    groups: [[[0], [0, 1], 'approx']],
    translation: 'a2b [0], b2a [0,0] (NFKD-equal); in xopd precomposed vs decomposed bytes differ: one APPROX group.',
  },
  {
    upstream: `${TOKENIZATIONS_RS} › test_get_charmap[あがさ / あかさ]`,
    student: ['あ', 'が', 'さ'], teacher: ['あ', 'か', 'さ'],
    groups: [[[0], [0], 'exact'], [[1], [1], 'approx'], [[2], [2], 'exact']],
    translation: 'a2b [0,1,2]: the same 1:1 map; が/か differ in bytes (their first two bytes agree): APPROX.',
  },
  {
    upstream: `${TOKENIZATIONS_RS} › test_get_charmap["" / a]`,
    student: [], teacher: ['a'],
    groups: [[[], [0], 'approx']],
    translation: 'b2a [None]: an unmatched teacher character; in xopd a teacher-only APPROX chunk.',
  },
  {
    upstream: `${TOKENIZATIONS_RS} › test_get_charmap["" / ""]`,
    student: [], teacher: [],
    groups: [],
    translation: 'nothing to map; no chunks.',
  },
  {
    upstream: `${TOKENIZATIONS_RS} › test_get_charmap[å\\tb / a b]`,
    student: ['\u00e5', '\t', 'b'], teacher: ['a', ' ', 'b'],
    groups: [[[0, 1], [0, 1], 'approx'], [[2], [2], 'exact']],
    translation: 'a2b [0,None,2]: å↔a matched, the tab and the space unmatched; in xopd the two adjacent ' +
      'differing characters are one differing region, one APPROX chunk; b exact.',
  },
  {
    upstream: `${TOKENIZATIONS_RS} › test_get_charmap[a\\tb / a b]`,
    student: ['a', '\t', 'b'], teacher: ['a', ' ', 'b'],
    groups: [[[0], [0], 'exact'], [[1], [1], 'approx'], [[2], [2], 'exact']],
    translation: 'a2b [0,None,2]: the unmatched tab and space are one differing region: one APPROX chunk of both.',
  },
  {
    upstream: `${TOKENIZATIONS_RS} › test_get_charmap[２０００ / 2000]`,
    student: ['２', '０', '０', '０'], teacher: ['2', '0', '0', '0'],
    groups: [[[0, 1, 2, 3], [0, 1, 2, 3], 'approx']],
    translation: 'a2b [0,1,2,3] after NFKD; full-width and ASCII digits share no byte: one differing region, one APPROX chunk.',
  },
  {
    upstream: `${TOKENIZATIONS_RS} › test_get_charmap[¨ / ""]`,
    student: ['¨'], teacher: [],
    groups: [[[0], [], 'tail']],
    translation: 'a2b [None]; in xopd a teacher with no tokens is one cut short to nothing: the student token is TAIL.',
  },
  {
    upstream: `${TOKENIZATIONS_RS} › test_get_charmap[hello\`\`world\`\` / Hello "world"]`,
    student: [...'hello``world``'], teacher: [...'Hello "world"'],
    groups: [
      [[0], [0], 'approx'], [[1], [1], 'exact'], [[2], [2], 'exact'], [[3], [3], 'exact'], [[4], [4], 'exact'],
      [[5, 6], [5, 6], 'approx'],
      [[7], [7], 'exact'], [[8], [8], 'exact'], [[9], [9], 'exact'], [[10], [10], 'exact'], [[11], [11], 'exact'],
      [[12, 13], [12], 'approx'],
    ],
    translation: 'a2b maps h→H (case folded) and leaves the backquotes, the space and the quotes unmatched; in xopd ' +
      'h/H is APPROX and each run of unmatched characters on both sides is one APPROX chunk.',
  },
  {
    upstream: `${TOKENIZATIONS_PY} › test_get_charmap[foo / fo0]`,
    student: ['f', 'o', 'o'], teacher: ['f', 'o', '0'],
    groups: [[[0], [0], 'exact'], [[1], [1], 'exact'], [[2], [2], 'approx']],
    translation: 'a2b [0,1,None]: the last character differs. The teacher is complete, so the difference in the last ' +
      'bytes is one APPROX chunk of both sides (issue 16: not a teacher-only chunk and a student TAIL).',
  },
];

/** NVIDIA-NeMo/RL X-Token (cross-tokenizer) TokenAligner: its offset-kernel cases as token lists. */
export const XTOKEN_CASES: TokenListCase[] = [
  {
    upstream: `${XTOKEN} › test_kernel_many_student_tokens_to_one_teacher_token`,
    student: ['He', 'llo'], teacher: ['Hello'],
    groups: [[[0, 1], [0], 'exact']],
    translation: 'one N:1 pair (0,2,0,1), is_correct: one exact chunk.',
  },
  {
    upstream: `${XTOKEN} › test_kernel_coverage_divergence_emits_orphans`,
    student: ['ab'], teacher: ['abc'],
    groups: [[[0], [0], 'approx']],
    translation: 'upstream emits a student-only and a teacher-only orphan, both incorrect; in xopd the differing ' +
      'region is ONE APPROX chunk holding both sides (DESIGN 3.3).',
  },
  {
    upstream: `${XTOKEN} › test_kernel_leading_specials_paired_by_role`,
    student: [{ control: 'bos' }, 'Hi'], teacher: [{ control: 'bos' }, 'Hi'],
    groups: [[[0], [0], 'approx'], [[1], [1], 'exact']],
    translation: 'the two BOS pair by role, then Hi↔Hi; xopd pairs them the same way by bytes, and the BOS pair is ' +
      'APPROX because their spellings differ (pairs where both families have a BOS).',
  },
  {
    upstream: `${XTOKEN} › test_per_asst_whole_message_plus_eot`,
    student: ['Hello', ' world', { control: 'endOfTurn' }], teacher: ['Hello', ' world', { control: 'endOfTurn' }],
    groups: [[[0], [0], 'exact'], [[1], [1], 'exact'], [[2], [2], 'exact']],
    translation: 'content 1:1 and a synthetic correct EOT pair; in xopd the end-of-turn ids form the last 1:1 chunk (DESIGN 3.4).',
  },
  {
    upstream: `${XTOKEN_NATIVE} › test_native_part_coalesces_nfc_offsets_without_changing_token_ids`,
    student: ['e', '\u0301'], teacher: ['\u00e9'],
    groups: [[[0, 1], [0], 'approx']],
    translation: 'one pair (0,2,0,1), correct after NFC; xopd groups the same tokens and flags them APPROX (bytes differ).',
  },
  {
    upstream: `${XTOKEN_NATIVE} › test_native_inline_content_coalesces_nested_checkmark_offsets`,
    student: [{ bytes: [0x20, 0xe2, 0x9c] }, { bytes: [0x93] }], teacher: [' ✓'],
    groups: [[[0, 1], [0], 'exact']],
    translation: 'one pair (0,2,0,1), correct: the student splits ✓ inside its bytes; one exact chunk (no boundary inside a character).',
  },
  {
    upstream: `${XTOKEN_NATIVE} › test_native_part_consumes_all_unicode_byte_tokens[👩]`,
    student: [{ bytes: [0xf0] }, { bytes: [0x9f] }, { bytes: [0x91] }, { bytes: [0xa9] }],
    teacher: [{ bytes: [0xf0, 0x9f, 0x91] }, { bytes: [0xa9] }],
    groups: [[[0, 1, 2, 3], [0, 1], 'exact']],
    translation: 'one pair (0,4,0,2), correct: the two sides share a byte offset inside the character, which is no boundary: one exact chunk.',
  },
  {
    upstream: `${XTOKEN_NATIVE} › test_native_part_consumes_all_unicode_byte_tokens[U+FFFD]`,
    student: [{ bytes: [0xef] }, { bytes: [0xbf] }, { bytes: [0xbd] }],
    teacher: [{ bytes: [0xef, 0xbf] }, { bytes: [0xbd] }],
    groups: [[[0, 1, 2], [0, 1], 'exact']],
    translation: 'one pair (0,3,0,2), correct: U+FFFD written as bytes is an ordinary character here: one exact chunk.',
  },
  {
    upstream: `${XTOKEN_NATIVE} › test_offset_cluster_decode_fix_merges_nested_byte_artifact`,
    student: ['A', { bytes: [0x20, 0xe2, 0x89] }, { bytes: [0xa0] }, 'B'], teacher: ['A', ' ≠', 'B'],
    groups: [[[0], [0], 'exact'], [[1, 2], [1], 'exact'], [[3], [2], 'exact']],
    translation: 'chunk ids [0,1,1,2] / [0,1,2], all correct: the same three exact chunks.',
  },
  {
    upstream: `${XTOKEN_NATIVE} › test_offset_cluster_decode_fix_merges_nested_teacher_byte_artifact`,
    student: [' ≠'], teacher: [{ bytes: [0x20, 0xe2, 0x89] }, { bytes: [0xa0] }],
    groups: [[[0], [0, 1], 'exact']],
    translation: 'chunk ids [0] / [0,0], correct: one exact chunk.',
  },
  ...([
    ['same', 'same', 'exact'], [' same', 'same', 'approx'], ['\n', ' ', 'approx'], [' ', '  ', 'approx'],
    ['e\u0301', '\u00e9', 'approx'], ['中', '中', 'exact'],
  ] as const).map(([s, t, flag]): TokenListCase => ({
    upstream: `${XTOKEN_NATIVE} › test_text_and_chat_use_identical_strict_decoded_matching[${JSON.stringify(s)} / ${JSON.stringify(t)}]`,
    student: [s], teacher: [t],
    groups: [[[0], [0], flag]],
    translation: `is_correct ${flag === 'exact'}: strict text equality is byte equality, so ${flag === 'exact' ? 'one exact chunk' : 'one APPROX chunk of both sides (no normalization, no whitespace folding)'}.`,
  })),
  {
    upstream: `${XTOKEN_NATIVE} › test_text_and_chat_use_identical_strict_decoded_matching["" / ""]`,
    student: [''], teacher: [''],
    groups: [],
    translation: 'equal empty decodes are correct; with no bytes there are no ids and no chunks.',
  },
  {
    upstream: `${XTOKEN_NATIVE} › test_native_unicode_repair_preserves_whitespace`,
    student: [' x'], teacher: ['x'],
    groups: [[[0], [0], 'approx']],
    translation: 'upstream refuses the unequal spans; xopd masks them: one APPROX chunk of both sides.',
  },
];

/** NeMo-RL test_native_unicode_repair_rejects_equal_replacement_decodes: student bytes that end inside a character. */
export const XTOKEN_REPLACEMENT_CASES: Array<{ upstream: string; text: string; translation: string }> = ['é', '中', '👩'].map((c) => ({
  upstream: `${XTOKEN_NATIVE} › test_native_unicode_repair_rejects_equal_replacement_decodes[${c}]`,
  text: c,
  translation: 'upstream raises when a token decodes to U+FFFD; in xopd retokenize hands the teacher U+FFFD for the ' +
    'unfinished character and the aligner makes one APPROX chunk of both sides at the end, no TAIL (issue 16).',
}));

const GOLD = 'huggingface/trl tests/experimental/test_gold_trainer.py';

/**
 * huggingface/trl GOLD (ULD loss, byte-offset alignment): texts each side encodes on its own. GOLD
 * closes a group wherever both sides reach the same byte offset, inside a character too; merged at
 * character boundaries these are xopd's chunks of the two equal byte streams.
 */
export const GOLD_TEXTS: Array<{ upstream: string; text: string; endOfTurn: boolean }> = [
  { upstream: `${GOLD} › test_alignment_groups_cover_all_tokens`, text: 'SmolLM3-3B says hi 😊 to 你好.', endOfTurn: false },
  { upstream: `${GOLD} › test_alignment_groups_cover_all_tokens (earlier text)`, text: 'SmolLM3-3B is smaller than Llama 3.2 but still capable.', endOfTurn: false },
  { upstream: `${GOLD} › test_on_policy_completion_byte_offsets_match_encode_offsets`, text: 'hello 你好 😊', endOfTurn: false },
  { upstream: `${GOLD} › test_uldloss_handles_llama_student_qwen_teacher_sequence`, text: 'Assistant: Llamas are taller while alpacas have softer wool.', endOfTurn: true },
  { upstream: `${GOLD} › test_uldloss_handles_smollm_student_qwen_teacher_sequence`, text: 'Assistant: SmolLM3 is a compact yet capable language model.', endOfTurn: true },
  { upstream: `${GOLD} › test_uldloss_hybrid_config_beta_zero`, text: 'Assistant: GOLD merges aligned subwords and applies hybrid ULD loss.', endOfTurn: true },
];
export const GOLD_TEXT_TRANSLATION = 'GOLD groups from the byte offsets of each side (cumulative token byte lengths, DESIGN 2), ' +
  'merged until a group ends on a UTF-8 character boundary, equal xopd\'s chunks, none flagged APPROX or TAIL. ' +
  'A completion ends with each side\'s EOS: in xopd the end-of-turn pair is the last 1:1 chunk. Mistral puts a space ' +
  'before what it encodes (GOLD\'s character offsets give it no width); the other side encodes the same space, as ' +
  'test/align-oracle.test.ts does.';

export const GOLD_COMMON_TOKENS = {
  upstream: `${GOLD} › test_initialize_vocabulary_mapping_contains_common_tokens`,
  tokens: ['Hello', ' world', '-', 'Sm', 'ol', 'LM', '3', 'B'],
  translation: 'a token string both vocabularies hold maps 1:1; in xopd an id pair of identical bytes is a 1:1 exact ' +
    'chunk and counts in AlignTables.sameBytesIds.',
};

export const GOLD_ONE_BYTE = {
  upstream: `${GOLD} › test_compute_distillation_loss_bayesian_skips_zero_start_span_extended`,
  text: 'abc',
  translation: '1:1 byte offsets [[0,1],[1,2],[2,3]] on both sides: three 1:1 groups; in xopd three exact 1:1 chunks.',
};
