/**
 * The task generators: every instance is sane (its sentence passes the filter, its constraints
 * parse, its reference passes `checkAll`), follows its task's definition, and comes from the
 * split it claims, without documents crossing splits.
 */
import { describe, expect, it } from 'vitest';
import { findConcept } from '../../src/checkers/paper/concepts.ts';
import { checkAll, parseConstraints } from '../../src/checkers/registry.ts';
import { type BrownSplit, brownSplitOf } from '../../src/data/brown.ts';
import { renderInstruction } from '../../src/session/render.ts';
import { generateTaskInstances, renderTaskInstruction } from '../../src/tasks/generate.ts';
import { sentimentOf, taskSentences } from '../../src/tasks/sentences.ts';
import { ALL_TASKS, type TaskInstance, type TaskName } from '../../src/tasks/types.ts';
import { analyzeText } from '../../src/text/nlp.ts';
import { countWords } from '../../src/text/python.ts';

const SPLITS: BrownSplit[] = ['train', 'validation', 'test'];
/** Enough instances per task and split to meet the rare cases, few enough to stay fast. */
const PER_TASK = 20;

const generated = new Map<string, TaskInstance[]>();
function instancesOf(task: TaskName, split: BrownSplit): TaskInstance[] {
  const key = `${task}/${split}`;
  if (!generated.has(key)) {
    generated.set(key, generateTaskInstances({ task, split, seed: 11, limit: PER_TASK }).instances);
  }
  return generated.get(key)!;
}

const kwargs = (instance: TaskInstance, i = 0) => instance.constraints[i].kwargs as Record<string, unknown>;

describe.each(ALL_TASKS)('task %s', (task) => {
  it.each(SPLITS)('yields checked instances from the %s split', (split) => {
    const instances = instancesOf(task, split);
    expect(instances).toHaveLength(PER_TASK);
    for (const instance of instances) {
      expect(instance.task).toBe(task);
      expect(instance.split).toBe(split);
      expect(instance.id).toBe(`${task}/${split}/${instance.source.docId}-${instance.source.sentence}`);
      expect(brownSplitOf(instance.source.docId)).toBe(split);
      expect(() => parseConstraints(instance.constraints)).not.toThrow();
      const result = checkAll(instance.reference, instance.constraints);
      expect(result.ok, `${instance.id}: ${result.feedback}`).toBe(true);
      // One corpus sentence, except where an ifeval layout asks for more (test/tasks/ifeval-task.test.ts).
      if (task === 'ifeval') continue;
      const words = instance.reference.split(' ').filter((piece) => /[\p{L}\p{N}]/u.test(piece));
      expect(words.length).toBeGreaterThanOrEqual(6);
      expect(words.length).toBeLessThanOrEqual(30);
    }
  });

  it('renders each instruction with renderInstruction, the session runner’s renderer', () => {
    for (const instance of instancesOf(task, 'validation')) {
      const parsed = parseConstraints(instance.constraints);
      const instruction = renderTaskInstruction(instance);
      expect(instruction).toBe(renderInstruction(instance.prompt, parsed));
      for (const { checker, kwargs } of parsed) expect(instruction).toContain(checker.describe(kwargs));
    }
  });

  it('gives the same instances for the same seed, and each does not depend on the limit', () => {
    const a = generateTaskInstances({ task, split: 'test', seed: 5, limit: 12 }).instances;
    const b = generateTaskInstances({ task, split: 'test', seed: 5, limit: 24 }).instances;
    expect(JSON.stringify(b.slice(0, 12))).toBe(JSON.stringify(a));
    const c = generateTaskInstances({ task, split: 'test', seed: 6, limit: 12 }).instances;
    expect(c.map((i) => i.id)).not.toEqual(a.map((i) => i.id));
  });
});

describe('task definitions', () => {
  it('num_planning: the prefix starts the sentence, n of 3–12 words remain, ending with last_word', () => {
    for (const instance of instancesOf('num_planning', 'train')) {
      const { n, last_word, prefix } = kwargs(instance) as { n: number; last_word: string; prefix: string };
      expect(n).toBeGreaterThanOrEqual(3);
      expect(n).toBeLessThanOrEqual(12);
      expect(instance.reference.startsWith(`${prefix} `)).toBe(true);
      expect(prefix.split(' ').filter((p) => /[A-Za-z0-9]/.test(p)).length).toBeGreaterThanOrEqual(2);
      expect(instance.reference.replace(/[^A-Za-z]+$/, '').endsWith(last_word)).toBe(true);
      expect(instance.prompt).toBeUndefined();
    }
  });

  it('sentiment: a topic noun of the sentence and a clearly polar label, both labels present', () => {
    const instances = [...instancesOf('sentiment', 'train'), ...instancesOf('sentiment', 'test')];
    for (const instance of instances) {
      const noun = instance.prompt!.match(/^Write a sentence about (?:the )?([a-z]+)\.$/)![1];
      expect(instance.reference.toLowerCase()).toContain(noun);
      const score = analyzeText(instance.reference).sentiment;
      expect(Math.abs(score)).toBeGreaterThanOrEqual(0.3);
      expect(kwargs(instance).label).toBe(score > 0 ? 'positive' : 'negative');
    }
    const labels = new Set(instances.map((instance) => kwargs(instance).label));
    expect([...labels].sort()).toEqual(['negative', 'positive']);
  });

  it('sentiment: the fast sentiment-only pipeline scores exactly as the checker’s full one', () => {
    for (const sentence of taskSentences('validation').slice(0, 300)) {
      expect(sentimentOf(sentence)).toBe(analyzeText(sentence.text).sentiment);
    }
  });

  it('forbidden_words: 2–3 words of the same document, absent from the sentence in any form', () => {
    for (const instance of instancesOf('forbidden_words', 'train')) {
      const words = kwargs(instance).forbidden_words as string[];
      expect(words.length).toBeGreaterThanOrEqual(2);
      expect(words.length).toBeLessThanOrEqual(3);
      const reference = instance.reference.toLowerCase();
      for (const word of words) expect(reference).not.toMatch(new RegExp(`\\b${word}(s|es|ed|ing)?\\b`));
      expect(instance.prompt).toMatch(/^Write a sentence about .+ and .+\.$/);
    }
  });

  it('word_count: bounds bracket the reference’s IFEval word count; both bounds in some', () => {
    const instances = instancesOf('word_count', 'train');
    for (const instance of instances) {
      const count = countWords(instance.reference);
      for (const { kwargs } of instance.constraints) {
        const { relation, num_words } = kwargs as { relation: string; num_words: number };
        if (relation === 'at least') expect(count - num_words).toBeLessThanOrEqual(3);
        else expect(num_words - count).toBeLessThanOrEqual(5);
      }
    }
    expect(instances.some((instance) => instance.constraints.length === 2)).toBe(true);
    expect(instances.some((instance) => instance.constraints.length === 1)).toBe(true);
  });

  it('start_end: one paragraph, the sentence’s first word, its last 1–3 words as the end phrase', () => {
    for (const instance of instancesOf('start_end', 'train')) {
      const [start, end] = instance.constraints;
      expect(start.id).toBe('length_constraints:nth_paragraph_first_word');
      expect(start.kwargs).toMatchObject({ num_paragraphs: 1, nth_paragraph: 1 });
      expect(instance.reference.replace(/^["']+/, '').toLowerCase()).toMatch(
        new RegExp(`^${(start.kwargs as { first_word: string }).first_word}\\b`),
      );
      const phrase = (end.kwargs as { end_phrase: string }).end_phrase;
      expect(phrase.split(' ').length).toBeLessThanOrEqual(3);
      expect(instance.reference.replace(/"+$/, '').endsWith(phrase)).toBe(true);
    }
  });

  it('concepts: 3–5 distinct noun/verb lemmas found in the sentence, no part-of-speech list', () => {
    for (const instance of instancesOf('concepts', 'train')) {
      const { concepts, pos } = kwargs(instance) as { concepts: string[]; pos?: string[] };
      expect(concepts.length).toBeGreaterThanOrEqual(3);
      expect(concepts.length).toBeLessThanOrEqual(5);
      expect(new Set(concepts).size).toBe(concepts.length);
      expect(pos).toBeUndefined();
      const analysis = analyzeText(instance.reference);
      for (const concept of concepts) expect(findConcept(analysis, concept).length).toBeGreaterThan(0);
    }
  });

  it('keywords: two words of the sentence and a word bound above its count', () => {
    for (const instance of instancesOf('keywords', 'train')) {
      const [existence, bound] = instance.constraints;
      const keywords = (existence.kwargs as { keywords: string[] }).keywords;
      expect(keywords).toHaveLength(2);
      for (const keyword of keywords) expect(instance.reference.toLowerCase()).toContain(keyword);
      expect(bound.kwargs).toMatchObject({ relation: 'less than' });
      const slack = (bound.kwargs as { num_words: number }).num_words - countWords(instance.reference);
      expect(slack).toBeGreaterThanOrEqual(2);
      expect(slack).toBeLessThanOrEqual(6);
    }
  });
});

describe('splits', () => {
  it('never share a document: eligible sentences of each split come from that split’s documents', () => {
    const docs = SPLITS.map((split) => new Set(taskSentences(split).map((s) => s.docId)));
    for (const [i, split] of SPLITS.entries()) {
      for (const docId of docs[i]) expect(brownSplitOf(docId)).toBe(split);
      for (const other of docs.slice(i + 1)) expect([...docs[i]].filter((d) => other.has(d))).toEqual([]);
    }
  });

  it('keep every sentence within 6–30 words and out of headlines', () => {
    for (const split of SPLITS) {
      for (const sentence of taskSentences(split)) {
        expect(sentence.words.length).toBeGreaterThanOrEqual(6);
        expect(sentence.words.length).toBeLessThanOrEqual(30);
      }
    }
  });
});
