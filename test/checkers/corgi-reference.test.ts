/**
 * The paper's own test sets (../shared/data/corgi, MIT licensed, with reference answers): the
 * reference answers must pass their constraints, and perturbed ones must fail with the right
 * feedback. The few references that fail are pinned here with the reason, so a change shows.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { ConstraintError } from '../../src/checkers/errors.ts';
import { countableWords, extractCompletion } from '../../src/checkers/paper/num-planning.ts';
import { checkAll, parseConstraints } from '../../src/checkers/registry.ts';
import type { ConstraintSpec } from '../../src/checkers/types.ts';

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const sharedDir = process.env.CORGI_SHARED_DIR ?? join(repoRoot, '..', 'shared');
const dataDir = join(sharedDir, 'data', 'corgi');
const haveData = existsSync(join(dataDir, 'num_planning.test.jsonl'));

interface Row {
  id: string;
  constraints: ConstraintSpec[];
  ref?: string;
  prefix?: string;
}

function readRows(file: string): Row[] {
  return readFileSync(join(dataDir, file), 'utf8')
    .split('\n')
    .filter((line) => line.trim())
    .map((line) => JSON.parse(line) as Row);
}

/**
 * References that miss their own constraint under the spec's rule "cut after the first '.'":
 * an ellipsis before the last word (6) or a URL as the last word (2). The paper's critic cut the
 * same way, so these fail there too.
 */
const NUM_PLANNING_KNOWN_FAILURES: Record<string, string> = {
  num_planning_test_35: 'ellipsis',
  num_planning_test_50: 'ellipsis',
  num_planning_test_207: 'ellipsis',
  num_planning_test_279: 'ellipsis',
  num_planning_test_646: 'ellipsis',
  num_planning_test_924: 'ellipsis',
  num_planning_test_436: 'URL last word',
  num_planning_test_581: 'URL last word',
};

/** Reference words neither Hunspell en_US nor en_GB knows (rare, slang, or brand words). */
const PANAGRAM_NOT_IN_DICTIONARY = [
  'doggie',
  'ephyra',
  'eyrie',
  'feng',
  'ficlet',
  'goodie',
  'helo',
  'horst',
  'ligula',
  'lycra',
  'panty',
  'pard',
  'pinot',
  'spork',
  'stot',
  'venti',
  'wifi',
];

/** A reference whose letters include "-" ("e-book"), which the kwargs schema rejects. */
const PANAGRAM_INVALID_KWARGS = ['panagram_test_58'];

describe.skipIf(!haveData)(`the paper's reference answers (${dataDir})`, () => {
  describe('num_planning', () => {
    const rows = haveData ? readRows('num_planning.test.jsonl') : [];

    it('passes every reference except the pinned ellipsis and URL cases', () => {
      expect(rows).toHaveLength(1000);
      const failures: Record<string, string> = {};
      for (const row of rows) {
        const result = checkAll(row.ref!, row.constraints);
        if (!result.ok) failures[row.id] = NUM_PLANNING_KNOWN_FAILURES[row.id] ?? result.feedback!;
      }
      expect(failures).toEqual(NUM_PLANNING_KNOWN_FAILURES);
    });

    /** Rebuilds a reference as prefix + its completion's pieces, with one change applied. */
    const passing = rows.filter((row) => !(row.id in NUM_PLANNING_KNOWN_FAILURES));
    const perturb = (row: Row, change: (pieces: string[]) => string[]) => {
      const { prefix, n } = row.constraints[0].kwargs as { prefix: string; n: number };
      const pieces = extractCompletion(row.ref!, prefix).trim().split(/\s+/);
      return { answer: `${prefix} ${change(pieces).join(' ')}`, n };
    };
    const lastWordOf = (row: Row) => (row.constraints[0].kwargs as { last_word: string }).last_word;

    it('fails every reference with a word dropped, naming both counts', () => {
      for (const row of passing) {
        const { answer, n } = perturb(row, (pieces) => {
          // Drop the first countable piece before the last one; a 1-word completion loses its word.
          const i = pieces.findIndex((piece, k) => k < pieces.length - 1 && countableWords(piece).length > 0);
          return i === -1 ? [] : pieces.filter((_, k) => k !== i);
        });
        const result = checkAll(answer, row.constraints);
        expect(result.ok, row.id).toBe(false);
        expect(result.feedback, row.id).toContain(
          `You completed the sentence with ${n - 1} words. However you should complete the sentence with ${n} words.`,
        );
      }
    });

    it('fails every reference with a word added, keeping the last-word score', () => {
      for (const row of passing) {
        const { answer, n } = perturb(row, (pieces) => ['very', ...pieces]);
        const result = checkAll(answer, row.constraints);
        expect(result.feedback, row.id).toBe(
          `You completed the sentence with ${n + 1} words. However you should complete the sentence with ${n} words.`,
        );
        expect(result.score, row.id).toBeCloseTo(0.2);
      }
    });

    it('fails every reference with its last word changed, quoting both words', () => {
      for (const row of passing) {
        const { answer } = perturb(row, (pieces) => {
          // Replace the last piece with a letter or digit (a reference may end with `--".`).
          const last = pieces.map((piece) => countableWords(piece).length > 0).lastIndexOf(true);
          return pieces.map((piece, k) => (k === last ? 'zebra.' : piece));
        });
        const result = checkAll(answer, row.constraints);
        expect(result.feedback, row.id).toBe(`The last word should be "${lastWordOf(row)}" and not "zebra".`);
        expect(result.score, row.id).toBeCloseTo(0.8);
      }
    });
  });

  describe('panagram', () => {
    const rows = haveData ? readRows('panagram.test.jsonl') : [];
    const valid = rows.filter((row) => !PANAGRAM_INVALID_KWARGS.includes(row.id));
    const lettersOf = (row: Row) => (row.constraints[0].kwargs as { letters: string[] }).letters;

    it('rejects the one row whose letters are not all a–z', () => {
      for (const id of PANAGRAM_INVALID_KWARGS) {
        const row = rows.find((r) => r.id === id)!;
        expect(() => parseConstraints(row.constraints)).toThrow(ConstraintError);
      }
    });

    it('passes every reference except the pinned words missing from the dictionaries', () => {
      expect(rows).toHaveLength(1000);
      const rejected = new Set<string>();
      for (const row of valid) {
        const result = checkAll(row.ref!, row.constraints);
        if (!result.ok) {
          expect(result.feedback, row.id).toBe(`"${row.ref}" is not a valid English word.`);
          rejected.add(row.ref!);
        }
      }
      expect([...rejected].sort()).toEqual(PANAGRAM_NOT_IN_DICTIONARY);
    });

    it('fails every reference with an extra letter, naming it', () => {
      for (const row of valid) {
        const letters = lettersOf(row);
        const extra = [...'qzxjvwykfh'].find((letter) => !letters.includes(letter))!;
        const result = checkAll(`${row.ref}${extra}`, row.constraints);
        expect(result.ok, row.id).toBe(false);
        expect(result.feedback, row.id).toContain(`has the letter ${extra}, which is not on the list.`);
      }
    });

    it('fails every reference with a letter removed, naming it', () => {
      for (const row of valid) {
        const removed = lettersOf(row)[0];
        const word = row.ref!.replaceAll(removed, '');
        const result = checkAll(word, row.constraints);
        expect(result.ok, row.id).toBe(false);
        expect(result.score, row.id).toBeLessThan(1);
        if (word) expect(result.feedback, row.id).toContain(`doesn't have the letter ${removed}`);
      }
    });
  });

  describe('concept sets', () => {
    it('accepts every CommonGen-lite and CommonGen-Hard constraint as given', () => {
      const rows = [...readRows('common_gen.test.jsonl'), ...readRows('cmg_hard.test.jsonl')];
      expect(rows).toHaveLength(600);
      for (const row of rows) expect(() => parseConstraints(row.constraints), row.id).not.toThrow();
    });

    it('finds every CommonGen-Hard concept in the plain list of its concepts', () => {
      for (const row of readRows('cmg_hard.test.jsonl')) {
        const concepts = (row.constraints[0].kwargs as { concepts: string[] }).concepts;
        expect(checkAll(`${concepts.join(', ')}.`, row.constraints).feedback, row.id).toBeNull();
      }
    });
  });

  describe('story prefixes', () => {
    it('do not repeat a 4-gram themselves', () => {
      const rows = readRows('story_generation.test.jsonl');
      expect(rows).toHaveLength(1000);
      const repeating = rows.filter((row) => !checkAll(row.prefix!, [{ id: 'corgi:no_repeat_ngram' }]).ok);
      expect(repeating.map((row) => row.id)).toEqual([]);
    });
  });
});

describe.skipIf(haveData)('the paper reference answers', () => {
  it.skip(`need the shared data: no ${dataDir}/num_planning.test.jsonl (set CORGI_SHARED_DIR to the shared dir)`, () => {});
});
