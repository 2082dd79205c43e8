/** Supervised fine-tuning examples: one user instruction, one assistant reference, every task. */
import { describe, expect, it } from 'vitest';
import { checkAll, parseConstraints } from '../../src/checkers/registry.ts';
import { renderInstruction } from '../../src/session/render.ts';
import { buildTaskPool } from '../../src/tasks/pools.ts';
import { buildSftExamples, REPEAT_EXAMPLE, SFT_TASKS } from '../../src/tasks/sft.ts';
import { SOURCE_TASKS } from '../../src/tasks/types.ts';

describe('buildSftExamples', () => {
  const options = { split: 'train' as const, size: 70, seed: 4 };
  const examples = buildSftExamples(options);

  it('makes single-turn examples: the rendered instruction, then the reference', () => {
    const pool = buildTaskPool({ ...options, tasks: [...SFT_TASKS] });
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

  it("covers the built-in model's SFT tasks evenly by default, never a held-out ifeval one", () => {
    expect(examples.some((e) => e.task === 'ifeval')).toBe(false);
    for (const task of SFT_TASKS) expect(examples.filter((e) => e.task === task)).toHaveLength(10);
  });

  it('is deterministic and honours a task subset', () => {
    expect(JSON.stringify(buildSftExamples(options))).toBe(JSON.stringify(examples));
    const sources = buildSftExamples({ ...options, tasks: SOURCE_TASKS });
    expect(new Set(sources.map((e) => e.task))).toEqual(new Set(SOURCE_TASKS));
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
    for (const task of SFT_TASKS) expect(mixed.filter((e) => e.task === task)).toHaveLength(7);
    expect(mixed.slice(0, 21).every((e) => e.task === REPEAT_EXAMPLE)).toBe(false);
    expect(JSON.stringify(buildSftExamples({ ...options, copyShare: 0.3 }))).toBe(JSON.stringify(mixed));
    expect(() => buildSftExamples({ ...options, copyShare: 1 })).toThrow(/copyShare must be in \[0, 1\)/);
  });
});
