import { describe, expect, it } from 'vitest';
import { ConstraintError } from '../../src/checkers/errors.ts';
import { joinFeedback } from '../../src/checkers/feedback.ts';
import { IFEVAL_IDS } from '../../src/checkers/ifeval/conflicts.ts';
import { CHECKER_LABELS } from '../../src/checkers/labels.ts';
import { checkAll, checkers, listCheckers, parseConstraints } from '../../src/checkers/registry.ts';

describe('the registry', () => {
  it("holds IFEval's 25 instruction ids and the paper's five tasks", () => {
    expect([...checkers.keys()]).toEqual([
      ...IFEVAL_IDS,
      'corgi:num_planning',
      'corgi:concepts',
      'corgi:panagram',
      'corgi:sentiment',
      'corgi:no_repeat_ngram',
    ]);
  });

  it('exports a JSON Schema object for every checker', () => {
    for (const info of listCheckers()) {
      expect(info.kwargsSchema, info.id).toMatchObject({ type: 'object' });
    }
  });

  it('names every checker in words, once, and marks only real kwargs as patterns', () => {
    const infos = listCheckers();
    expect(Object.keys(CHECKER_LABELS).sort()).toEqual([...checkers.keys()].sort());
    const labels = infos.map((info) => info.label);
    expect(new Set(labels).size).toBe(labels.length);
    for (const info of infos) {
      expect(info.label, info.id).not.toContain(':');
      const properties = Object.keys((info.kwargsSchema as { properties?: object }).properties ?? {});
      for (const name of info.patternKwargs) expect(properties, info.id).toContain(name);
    }
    expect(infos.find((info) => info.id === 'punctuation:no_comma')?.label).toBe('No commas');
    // The regex-valued kwargs are exactly the ones whose schema says so.
    const described = infos.flatMap((info) =>
      Object.entries(
        (info.kwargsSchema as { properties?: Record<string, { description?: string }> }).properties ?? {},
      )
        .filter(([, schema]) => /regular expression/.test(JSON.stringify(schema)))
        .map(([name]) => `${info.id}.${name}`),
    );
    expect(infos.flatMap((info) => info.patternKwargs.map((name) => `${info.id}.${name}`)).sort()).toEqual(
      described.sort(),
    );
  });
});

describe('joinFeedback', () => {
  it('chains messages with "In addition," and "Moreover," as the paper does', () => {
    expect(joinFeedback([])).toBeNull();
    expect(joinFeedback(['You are missing the following concepts: park.'])).toBe(
      'You are missing the following concepts: park.',
    );
    expect(
      joinFeedback([
        'You are missing the following concepts: park.',
        'The last word should be "rain" and not "sun".',
        'Your response contains 2 commas.',
        'Your response has 3 sentences.',
      ]),
    ).toBe(
      'You are missing the following concepts: park. In addition, the last word should be "rain" and not "sun". ' +
        'Moreover, your response contains 2 commas. Moreover, your response has 3 sentences.',
    );
  });

  it('keeps acronyms and "I" capitalised', () => {
    expect(joinFeedback(['a.', 'JSON is required.'])).toBe('a. In addition, JSON is required.');
  });
});

describe('checkAll', () => {
  it('averages scores, requires every constraint, and joins only the failing feedback', () => {
    const result = checkAll('Hello, dog.', [
      { id: 'punctuation:no_comma' },
      { id: 'keywords:existence', kwargs: { keywords: ['dog'] } },
      { id: 'keywords:existence', kwargs: { keywords: ['cat'] } },
    ]);
    expect(result.ok).toBe(false);
    expect(result.results.map((r) => r.ok)).toEqual([false, true, false]);
    expect(result.score).toBeCloseTo((0 + 1 + result.results[2].score) / 3);
    expect(result.feedback).toContain('In addition, ');
    expect(result.feedback).not.toContain('Moreover');
    expect(result.results[1].feedback).toBeNull();
  });

  it('is ok with score 1 and null feedback when everything holds', () => {
    expect(checkAll('a dog', [{ id: 'keywords:existence', kwargs: { keywords: ['dog'] } }])).toEqual({
      ok: true,
      score: 1,
      feedback: null,
      results: [{ id: 'keywords:existence', ok: true, score: 1, feedback: null }],
    });
  });

  it("rejects IFEval's conflicting pairs in either order, but allows the same id twice", () => {
    const conflicting = [
      ['detectable_format:json_format', 'startend:end_checker'],
      ['startend:end_checker', 'detectable_format:json_format'],
      ['change_case:english_lowercase', 'change_case:english_capital'],
      ['startend:quotation', 'detectable_format:title'],
    ];
    for (const [a, b] of conflicting) {
      const specs = [a, b].map((id) => ({ id, kwargs: kwargsFor(id) }));
      expect(() => parseConstraints(specs), `${a} + ${b}`).toThrowError(/conflicts with constraints\[0\]/);
    }
    expect(() =>
      parseConstraints([
        {
          id: 'change_case:capital_word_frequency',
          kwargs: { capital_frequency: 3, capital_relation: 'at least' },
        },
        {
          id: 'change_case:capital_word_frequency',
          kwargs: { capital_frequency: 9, capital_relation: 'less than' },
        },
      ]),
    ).not.toThrow();
  });

  it('names the offending field in a ConstraintError', () => {
    try {
      checkAll('x', [{ id: 'keywords:existence', kwargs: { keywords: 'dog' } }]);
      expect.unreachable();
    } catch (error) {
      expect(ConstraintError.isInstance(error)).toBe(true);
      expect((error as ConstraintError).field).toBe('constraints[0].kwargs.keywords');
    }
  });
});

/** Minimal valid kwargs for the ids the conflict test uses. */
function kwargsFor(id: string): Record<string, unknown> {
  switch (id) {
    case 'startend:end_checker':
      return { end_phrase: 'The end.' };
    default:
      return {};
  }
}
