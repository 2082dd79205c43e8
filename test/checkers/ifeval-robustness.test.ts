/**
 * Contract tests shared by the 25 IFEval checkers: `check` never throws on any string, returns a
 * well-formed outcome, and stays fast on long adversarial inputs (whitespace runs, bracket runs,
 * many blank lines) that make the naive regexes backtrack quadratically.
 */
import { describe, expect, it } from 'vitest';
import { IFEVAL_IDS } from '../../src/checkers/ifeval/conflicts.ts';
import { ifevalCheckers } from '../../src/checkers/ifeval/ifeval-checkers.ts';
import { preloadTextModels } from '../../src/text/preload.ts';
import { check } from './ifeval-helpers.ts';

/** Typical kwargs for each id. */
const KWARGS: Record<string, Record<string, unknown>> = {
  'keywords:existence': { keywords: ['dog', '(a+)+b', 'c++'] },
  'keywords:frequency': { keyword: 'a', frequency: 2, relation: 'at least' },
  'keywords:forbidden_words': { forbidden_words: ['cat', '[x'] },
  'keywords:letter_frequency': { letter: 'a', let_frequency: 2, let_relation: 'less than' },
  'language:response_language': { language: 'en' },
  'length_constraints:number_sentences': { num_sentences: 3, relation: 'at least' },
  'length_constraints:number_paragraphs': { num_paragraphs: 2 },
  'length_constraints:number_words': { num_words: 10, relation: 'less than' },
  'length_constraints:nth_paragraph_first_word': { num_paragraphs: 2, nth_paragraph: 2, first_word: 'then' },
  'detectable_content:number_placeholders': { num_placeholders: 2 },
  'detectable_content:postscript': { postscript_marker: 'P.S.' },
  'detectable_format:number_bullet_lists': { num_bullets: 2 },
  'detectable_format:number_highlighted_sections': { num_highlights: 2 },
  'detectable_format:multiple_sections': { section_spliter: 'SECTION', num_sections: 2 },
  'combination:repeat_prompt': { prompt_to_repeat: 'Say hi.' },
  'startend:end_checker': { end_phrase: 'Bye.' },
  'change_case:capital_word_frequency': { capital_frequency: 2, capital_relation: 'at least' },
};

/** A small deterministic generator (mulberry32) for random strings. */
function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = Math.imul(state ^ (state >>> 15), state | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const PIECES = [
  'a',
  'A',
  ' ',
  '\n',
  '\n\n',
  '.',
  ',',
  '*',
  '-',
  '[',
  ']',
  '<<',
  '>>',
  '"',
  "'",
  '******',
  '***',
  'P.S.',
  'SECTION 1',
  '\u0000',
  '\ud83d',
  '😀',
  'é',
  'ǅ',
  '\u2028',
  '\ufeff',
  '\\',
  '(',
  '{',
  '}',
  '|',
  '$',
  '^',
  '?',
  '+',
  'हि',
  '日本',
  ':',
  ';',
  '!',
  '…',
  '\t',
  '\r',
];

describe('every IFEval checker', () => {
  it('is registered in the order of IFEVAL_IDS', () => {
    expect(ifevalCheckers.map((c) => c.id)).toEqual([...IFEVAL_IDS]);
  });

  it('never throws and returns {ok, score in [0,1], feedback null exactly when ok} on random strings', () => {
    const next = random(7);
    const texts = [
      '',
      ' ',
      '\n',
      '\ud800',
      ...Array.from({ length: 300 }, () => {
        const length = Math.floor(next() * 40);
        return Array.from({ length }, () => PIECES[Math.floor(next() * PIECES.length)]).join('');
      }),
    ];
    for (const checker of ifevalCheckers) {
      for (const text of texts) {
        const outcome = check(checker, KWARGS[checker.id] ?? {}, text);
        expect(outcome.score).toBeGreaterThanOrEqual(0);
        expect(outcome.score).toBeLessThanOrEqual(1);
        expect(outcome.score === 1).toBe(outcome.ok);
        expect(outcome.feedback === null).toBe(outcome.ok);
        if (!outcome.ok) expect(outcome.feedback).toMatch(/\S/);
      }
    }
  });

  it('stays fast on long adversarial inputs', () => {
    preloadTextModels();
    const n = 50_000;
    const inputs = [
      `a${' '.repeat(n)}b`,
      `a${'\n'.repeat(n)}b`,
      '['.repeat(n),
      '<<'.repeat(n / 2),
      `a.${' '.repeat(n)}x`,
      `a.${')'.repeat(n)} `,
      '*'.repeat(n),
      `${'A'.repeat(n)} a`,
      'a'.repeat(n),
      'a\n \n'.repeat(n / 4),
    ];
    for (const checker of ifevalCheckers) {
      for (const text of inputs) {
        const start = performance.now();
        check(checker, KWARGS[checker.id] ?? {}, text);
        const ms = performance.now() - start;
        // Linear work on 50k characters takes milliseconds; the quadratic regexes took seconds.
        expect(ms, `${checker.id} on ${JSON.stringify(text.slice(0, 12))}…`).toBeLessThan(1500);
      }
    }
  });
});
