/**
 * Adversarial responses for measuring how a checker's time grows with its input: each shape makes
 * a text of (about) `n` UTF-16 code units, up to the HTTP body limit. Used by the growth test
 * (test/checkers/checker-growth.test.ts) and `npm run bench:faults`.
 */

/** Typical kwargs for every registered checker (the growth test fails if one is missing). */
export const GROWTH_KWARGS: Record<string, Record<string, unknown>> = {
  'keywords:existence': { keywords: ['dog', 'park'] },
  'keywords:frequency': { keyword: 'a', frequency: 2, relation: 'at least' },
  'keywords:forbidden_words': { forbidden_words: ['cat', 'storm'] },
  'keywords:letter_frequency': { letter: 'a', let_frequency: 2, let_relation: 'less than' },
  'language:response_language': { language: 'en' },
  'length_constraints:number_sentences': { num_sentences: 3, relation: 'at least' },
  'length_constraints:number_paragraphs': { num_paragraphs: 2 },
  'length_constraints:number_words': { num_words: 10, relation: 'less than' },
  'length_constraints:nth_paragraph_first_word': { num_paragraphs: 2, nth_paragraph: 2, first_word: 'then' },
  'detectable_content:number_placeholders': { num_placeholders: 2 },
  'detectable_content:postscript': { postscript_marker: 'P.S.' },
  'detectable_format:number_bullet_lists': { num_bullets: 2 },
  'detectable_format:constrained_response': {},
  'detectable_format:number_highlighted_sections': { num_highlights: 2 },
  'detectable_format:multiple_sections': { section_spliter: 'SECTION', num_sections: 2 },
  'detectable_format:json_format': {},
  'detectable_format:title': {},
  'combination:two_responses': {},
  'combination:repeat_prompt': { prompt_to_repeat: 'Write a haiku about rain.' },
  'startend:end_checker': { end_phrase: 'Any other questions?' },
  'startend:quotation': {},
  'change_case:capital_word_frequency': { capital_frequency: 2, capital_relation: 'at least' },
  'change_case:english_capital': {},
  'change_case:english_lowercase': {},
  'punctuation:no_comma': {},
  'corgi:num_planning': { n: 5, last_word: 'home', prefix: 'After the game we' },
  'corgi:concepts': { concepts: ['dog', 'frisbee', 'throw', 'park'], pos: ['noun', 'noun', 'verb', 'noun'] },
  'corgi:panagram': { letters: ['a', 'e', 'r', 'k', 'b'] },
  'corgi:sentiment': { label: 'positive' },
  'corgi:no_repeat_ngram': { n: 4 },
};

/** `unit` repeated to `n` code units (cut at a unit boundary). */
function fill(unit: string, n: number): string {
  return unit.repeat(Math.max(1, Math.floor(n / unit.length)));
}

/** A deterministic base64 blob of `n` characters (the shape of an attachment pasted as text). */
export function base64Blob(n: number): string {
  const bytes = new Uint8Array(Math.ceil((n * 3) / 4) + 3);
  let state = 0x9e3779b9;
  for (let i = 0; i < bytes.length; i++) {
    state = Math.imul(state ^ (state >>> 15), 0x2c1b3c6d) + 0x6d2b79f5;
    bytes[i] = state >>> 24;
  }
  return Buffer.from(bytes).toString('base64').slice(0, n);
}

/** One line of every Unicode class the checkers may meet, astral planes and controls included. */
const EVERY_CLASS =
  'Ünïcödé ǅ 日本語の文 हिन्दी عربي עברית 😀👍🏽 ‍ ​ \u0000\u0007 \u2028 \ufeff é ½ ⅷ ① ∑ ← “quoted” — … ';

/** Adversarial shapes by name: one long token, many short ones, deep punctuation, ... */
export const ADVERSARIAL_SHAPES: Record<string, (n: number) => string> = {
  'one long token': (n) => fill('a', n),
  'base64 blob': (n) => base64Blob(n),
  'many short tokens': (n) => fill('a ', n),
  'ordinary words': (n) =>
    fill('The old dog ran across the quiet park, and a boy threw the red frisbee. ', n),
  'deep punctuation': (n) => fill('!', n),
  'nested brackets': (n) => `${fill('([{', n / 2)}${fill('}])', n / 2)}`,
  'punctuated run': (n) => fill('dog-park.', n),
  'every Unicode class': (n) => fill(EVERY_CLASS, n),
  'one long line': (n) => `${fill('word ', n)}\n`,
  'many paragraphs': (n) => fill('Then a line.\n\n', n),
  'many bullets': (n) => fill('* item\n', n),
  'many highlights': (n) => fill('*hi* ', n),
  'many placeholders': (n) => fill('[x] ', n),
  'capital words': (n) => fill('WORD ', n),
  'lone surrogates': (n) => fill('\ud83d a\udc00 ', n),
};
