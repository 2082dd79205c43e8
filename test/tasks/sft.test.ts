/** Supervised fine-tuning examples: one user instruction, one assistant reference, every task. */
import { describe, expect, it } from 'vitest';
import { findConcept } from '../../src/checkers/concepts.ts';
import { analyzeText } from '../../src/checkers/nlp.ts';
import { checkAll, parseConstraints } from '../../src/checkers/registry.ts';
import { renderInstruction } from '../../src/session/render.ts';
import { buildTaskPool } from '../../src/tasks/pools.ts';
import { buildSftExamples, INCLUSION_TASKS, REPEAT_EXAMPLE } from '../../src/tasks/sft.ts';
import { ALL_TASKS, SOURCE_TASKS } from '../../src/tasks/types.ts';

describe('buildSftExamples', () => {
  const options = { split: 'train' as const, size: 70, seed: 4 };
  const examples = buildSftExamples(options);

  it('makes single-turn examples: the rendered instruction, then the reference', () => {
    const pool = buildTaskPool({ ...options, tasks: [...ALL_TASKS] });
    expect(examples).toHaveLength(70);
    examples.forEach((example, i) => {
      const instance = pool[i];
      expect(example.id).toBe(instance.id);
      expect(example.messages).toEqual([
        { role: 'user', content: renderInstruction(instance.prompt, parseConstraints(instance.constraints)) },
        { role: 'assistant', content: instance.reference },
      ]);
      expect(checkAll(example.messages[1].content, instance.constraints).ok).toBe(true);
      expect(example.messages.some((m) => m.content.startsWith('Feedback:'))).toBe(false);
    });
  });

  it('covers every task, source and target, evenly by default', () => {
    for (const task of ALL_TASKS) expect(examples.filter((e) => e.task === task)).toHaveLength(10);
  });

  it('is deterministic and honours a task subset', () => {
    expect(JSON.stringify(buildSftExamples(options))).toBe(JSON.stringify(examples));
    const sources = buildSftExamples({ ...options, tasks: SOURCE_TASKS });
    expect(new Set(sources.map((e) => e.task))).toEqual(new Set(SOURCE_TASKS));
  });

  it('draws the word-inclusion tasks from short sentences at inclusionMaxWords, the others as before', () => {
    const words = (e: (typeof examples)[number]) => e.messages[1].content.split(' ').length;
    const inclusion = (e: (typeof examples)[number]) =>
      (INCLUSION_TASKS as readonly string[]).includes(e.task);
    const bigger = { ...options, size: 280 };
    // without the option, long references are common (eligible sentences run to 30 words)
    expect(
      buildSftExamples(bigger)
        .filter(inclusion)
        .some((e) => words(e) > 14),
    ).toBe(true);
    const short = buildSftExamples({ ...bigger, inclusionMaxWords: 10 });
    expect(short).toHaveLength(280);
    for (const task of ALL_TASKS) expect(short.filter((e) => e.task === task)).toHaveLength(40);
    for (const example of short.filter(inclusion)) expect(words(example)).toBeLessThanOrEqual(10);
    const others = (list: typeof examples) =>
      list
        .filter((e) => !inclusion(e))
        .map((e) => e.id)
        .sort();
    expect(others(short)).toEqual(others(buildSftExamples(bigger)));
  });

  it('lists the concepts in the order the reference uses them at inclusionInOrder', () => {
    const bigger = { ...options, size: 140 };
    const plain = buildSftExamples(bigger);
    const ordered = buildSftExamples({ ...bigger, inclusionInOrder: true });
    const listed = (content: string): string[] => content.match(/concepts: (.*)\.$/)?.[1].split(', ') ?? [];
    let reordered = 0;
    ordered.forEach((example, i) => {
      expect(example.id).toBe(plain[i].id);
      if (example.task !== 'concepts') {
        expect(example).toEqual(plain[i]);
        return;
      }
      const [concepts, before] = [listed(example.messages[0].content), listed(plain[i].messages[0].content)];
      expect(concepts.length).toBeGreaterThanOrEqual(3);
      expect([...concepts].sort()).toEqual([...before].sort());
      if (concepts.join() !== before.join()) reordered++;
      // each concept's first use in the reference comes after the previous one's
      const analysis = analyzeText(example.messages[1].content);
      const at = concepts.map((c) =>
        Math.min(...findConcept(analysis, c).map((t) => analysis.tokens.indexOf(t))),
      );
      expect(at).toEqual([...at].sort((x, y) => x - y));
    });
    expect(reordered).toBeGreaterThan(10);
  });

  it('mixes in repeat (copying) examples at copyShare, seeded, never in the default', () => {
    expect(examples.some((e) => e.task === REPEAT_EXAMPLE)).toBe(false);
    const mixed = buildSftExamples({ ...options, copyShare: 0.3 });
    expect(mixed).toHaveLength(70);
    const repeats = mixed.filter((e) => e.task === REPEAT_EXAMPLE);
    expect(repeats).toHaveLength(21);
    for (const example of repeats) {
      const [user, assistant] = example.messages;
      expect(user.content).toBe(`Repeat this sentence: ${assistant.content}`);
      expect(assistant.content.split(' ').length).toBeGreaterThan(1);
    }
    expect(new Set(repeats.map((e) => e.id)).size).toBe(21);
    // the task examples are the pool of the remaining 49, and the mix is shuffled
    for (const task of ALL_TASKS) expect(mixed.filter((e) => e.task === task)).toHaveLength(7);
    expect(mixed.slice(0, 21).every((e) => e.task === REPEAT_EXAMPLE)).toBe(false);
    expect(JSON.stringify(buildSftExamples({ ...options, copyShare: 0.3 }))).toBe(JSON.stringify(mixed));
    expect(() => buildSftExamples({ ...options, copyShare: 1 })).toThrow(/copyShare must be in \[0, 1\)/);
  });

  it('mixes in word-list repeats at wordCopyShare: unrelated content words, copied verbatim', () => {
    const mixed = buildSftExamples({ ...options, copyShare: 0.2, wordCopyShare: 0.3 });
    expect(mixed).toHaveLength(70);
    const wordLists = mixed.filter((e) => e.id.startsWith(`${REPEAT_EXAMPLE}-words/`));
    const sentences = mixed.filter((e) => e.task === REPEAT_EXAMPLE && !wordLists.includes(e));
    expect(wordLists).toHaveLength(21);
    expect(sentences).toHaveLength(14);
    for (const example of wordLists) {
      expect(example.task).toBe(REPEAT_EXAMPLE);
      const [user, assistant] = example.messages;
      expect(user.content).toBe(`Repeat these words: ${assistant.content}`);
      const words = assistant.content.split(' ');
      expect(words.length).toBeGreaterThanOrEqual(3);
      expect(words.length).toBeLessThanOrEqual(10);
      for (const word of words) expect(word).toMatch(/^[a-z]{3,}$/);
    }
    // Lists differ from one another: drawn, not repeated.
    expect(new Set(wordLists.map((e) => e.messages[1].content)).size).toBe(21);
    for (const task of ALL_TASKS) expect(mixed.filter((e) => e.task === task)).toHaveLength(5);
    // Adding word lists leaves the sentence repeats of the same seed as they were.
    const sentencesAlone = buildSftExamples({ ...options, copyShare: 0.2 }).filter(
      (e) => e.task === REPEAT_EXAMPLE,
    );
    expect(sentences.map((e) => e.id).sort()).toEqual(sentencesAlone.map((e) => e.id).sort());
    expect(JSON.stringify(buildSftExamples({ ...options, copyShare: 0.2, wordCopyShare: 0.3 }))).toBe(
      JSON.stringify(mixed),
    );
    expect(() => buildSftExamples({ ...options, copyShare: 0.5, wordCopyShare: 0.5 })).toThrow(
      /wordCopyShare must be/,
    );
  });
});
