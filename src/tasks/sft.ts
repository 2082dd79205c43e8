/**
 * Supervised fine-tuning examples for the base model: each task instance as one user turn (the
 * rendered instruction) and one assistant turn (the reference). Single turn, one attempt, no
 * feedback turns: teaching the model to use feedback is the RL trainer's job (CORGI), and the
 * single-attempt base is what the paper's RL starts from. Every task, source and target, is in
 * the mix by default so the base model has seen each task's format once; the RL trainer then
 * trains on source tasks only.
 */
import type { BrownSplit } from '../data/brown.ts';
import type { ChatMessage } from '../policy/types.ts';
import { renderTaskInstruction } from './generate.ts';
import { buildTaskPool } from './pools.ts';
import { ALL_TASKS, type TaskName } from './types.ts';

export interface SftExample {
  /** The task instance's id. */
  id: string;
  task: TaskName;
  /** `[user: instruction, assistant: reference]`. */
  messages: ChatMessage[];
}

export interface SftOptions {
  split: BrownSplit;
  size: number;
  seed: number;
  /** @default ALL_TASKS */
  tasks?: readonly TaskName[];
}

/**
 * `size` single-turn examples from a seeded task pool (`buildTaskPool`, so tasks are balanced and
 * the same seed gives the same examples).
 *
 * @example buildSftExamples({ split: 'train', size: 5000, seed: 0 })[0].messages
 */
export function buildSftExamples({ split, size, seed, tasks = ALL_TASKS }: SftOptions): SftExample[] {
  return buildTaskPool({ tasks: [...tasks], split, size, seed }).map((instance) => ({
    id: instance.id,
    task: instance.task,
    messages: [
      { role: 'user', content: renderTaskInstruction(instance) },
      { role: 'assistant', content: instance.reference },
    ],
  }));
}
