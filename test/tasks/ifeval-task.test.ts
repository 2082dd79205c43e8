/**
 * The `ifeval` target task: IFEval instructions no source task trains on, one or two per instance,
 * never conflicting, on a topic of the sentence, with enough test instances for a 200-case split,
 * and asking for something the bare corpus sentence does not already do.
 */
import { describe, expect, it } from 'vitest';
import { idsConflict } from '../../src/checkers/ifeval/conflicts.ts';
import { checkAll, parseConstraints } from '../../src/checkers/registry.ts';
import { renderInstruction } from '../../src/session/render.ts';
import { generateTaskInstances, renderTaskInstruction } from '../../src/tasks/generate.ts';
import { compatibleInstructions, IFEVAL_TARGET_IDS } from '../../src/tasks/ifeval-task.ts';
import { taskSentences } from '../../src/tasks/sentences.ts';
import { SOURCE_TASKS, TARGET_TASKS } from '../../src/tasks/types.ts';
import { parseCorgiConfig } from '../../src/training/rl/corgi-config.ts';

const test200 = generateTaskInstances({ task: 'ifeval', split: 'test', seed: 0, limit: 200 });

describe('ifeval task', () => {
  it('is a target task the trainer leaves out by default', () => {
    expect(TARGET_TASKS).toContain('ifeval');
    expect(SOURCE_TASKS).not.toContain('ifeval');
    expect(parseCorgiConfig({ out: 'x' }).tasks).not.toContain('ifeval');
  });

  it('yields 200 checked test instances, none dropped', () => {
    expect(test200.instances).toHaveLength(200);
    expect(test200.dropped).toBe(0);
    for (const instance of test200.instances) {
      const result = checkAll(instance.reference, instance.constraints);
      expect(result.ok, `${instance.id}: ${result.feedback}`).toBe(true);
    }
  });

  it('uses only instruction ids no source task or the keywords target uses', () => {
    const trained = new Set<string>();
    for (const task of [...SOURCE_TASKS, 'keywords' as const]) {
      for (const instance of generateTaskInstances({ task, split: 'train', seed: 0, limit: 40 }).instances)
        for (const { id } of instance.constraints) trained.add(id);
    }
    expect(trained.size).toBeGreaterThanOrEqual(6);
    for (const id of IFEVAL_TARGET_IDS) expect(trained.has(id), id).toBe(false);
    const seen = new Set(test200.instances.flatMap((i) => i.constraints.map((c) => c.id)));
    expect([...seen].sort()).toEqual([...IFEVAL_TARGET_IDS].sort());
  });

  it('asks one or two compatible instructions (IFEval’s conflict table), both kinds present', () => {
    const sizes = new Set<number>();
    for (const { constraints } of test200.instances) {
      sizes.add(constraints.length);
      if (constraints.length === 2) {
        const [a, b] = constraints.map((c) => c.id);
        expect(a).not.toBe(b);
        expect(idsConflict(a, b), `${a} + ${b}`).toBe(false);
      }
    }
    expect([...sizes].sort()).toEqual([1, 2]);
    expect(compatibleInstructions('detectable_format:json_format', 'startend:quotation')).toBe(false);
    expect(
      compatibleInstructions('length_constraints:number_paragraphs', 'detectable_format:number_bullet_lists'),
    ).toBe(false);
    expect(compatibleInstructions('punctuation:no_comma', 'change_case:english_lowercase')).toBe(true);
  });

  it('prompts for text on a noun of the sentence, which the reference keeps', () => {
    for (const instance of test200.instances) {
      const noun = instance.prompt?.match(
        /^Write a (?:sentence|few sentences) about (?:the )?([a-z]+)\.$/,
      )?.[1];
      expect(noun, instance.prompt).toBeDefined();
      expect(instance.reference.toLowerCase()).toContain(noun!);
    }
  });

  it('draws count bounds of 2 or more (never "at least 1 times")', () => {
    const counts = ['let_frequency', 'frequency', 'num_sentences', 'capital_frequency', 'num_highlights'];
    for (const { constraints } of test200.instances) {
      for (const { kwargs } of constraints) {
        for (const key of counts) {
          const value = (kwargs as Record<string, unknown>)[key];
          if (value !== undefined) expect(value).toBeGreaterThanOrEqual(2);
        }
      }
    }
  });

  it('asks for something: the bare corpus sentence fails most instances', () => {
    const texts = new Map(taskSentences('test').map((s) => [`${s.docId}-${s.index}`, s.text]));
    const passing = test200.instances.filter(
      (i) => checkAll(texts.get(`${i.source.docId}-${i.source.sentence}`)!, i.constraints).ok,
    );
    // Only "less than" bounds, no commas in a comma-free sentence and the like pass unedited.
    expect(passing.length).toBeLessThan(test200.instances.length * 0.3);
  });

  it('renders a multi-line instruction as its own paragraph, one-line ones as one paragraph', () => {
    const bullets = test200.instances.find(
      (i) => i.constraints.length === 2 && i.constraints[0].id === 'detectable_format:number_bullet_lists',
    )!;
    const parsed = parseConstraints(bullets.constraints);
    const [first, second] = parsed.map(({ checker, kwargs }) => checker.describe(kwargs));
    expect(renderTaskInstruction(bullets)).toBe(`${bullets.prompt}\n\n${first}\n\n${second}`);
    const oneLine = parseConstraints([
      { id: 'punctuation:no_comma', kwargs: {} },
      { id: 'startend:quotation', kwargs: {} },
    ]);
    expect(renderInstruction(undefined, oneLine)).toBe(
      'In your entire response, refrain from the use of any commas. Wrap your entire response with double quotation marks.',
    );
  });

  it('is seeded: the same seed gives the same instances, another seed other kwargs', () => {
    const again = generateTaskInstances({ task: 'ifeval', split: 'test', seed: 0, limit: 50 }).instances;
    expect(JSON.stringify(again)).toBe(JSON.stringify(test200.instances.slice(0, 50)));
    const other = generateTaskInstances({ task: 'ifeval', split: 'test', seed: 1, limit: 50 }).instances;
    expect(JSON.stringify(other.map((i) => i.constraints))).not.toBe(
      JSON.stringify(again.map((i) => i.constraints)),
    );
  });
});
