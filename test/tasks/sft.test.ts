/** Supervised fine-tuning examples: one user instruction, one assistant reference, every task. */
import { describe, expect, it } from 'vitest';
import { checkAll, parseConstraints } from '../../src/checkers/registry.ts';
import { renderInstruction } from '../../src/session/render.ts';
import { buildTaskPool } from '../../src/tasks/pools.ts';
import { buildSftExamples } from '../../src/tasks/sft.ts';
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
});
