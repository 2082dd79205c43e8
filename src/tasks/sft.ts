/**
 * Supervised fine-tuning examples for the base model: each task instance as one user turn (the
 * rendered instruction) and one assistant turn (the reference). Single turn, one attempt, no
 * feedback turns: teaching the model to use feedback is the RL trainer's job (CORGI), and the
 * single-attempt base is what the paper's RL starts from. Every task, source and target, is in
 * the mix by default so the base model has seen each task's format once; the RL trainer then
 * trains on source tasks only.
 *
 * A share of the examples (`copyShare`) are "Repeat this sentence: …" → the sentence. They are not a
 * constraint task and never appear in RL training or evaluation; they teach the copying primitive
 * (attend to a word in the prompt, write it) that every inclusion constraint needs: a base trained
 * on the constraint tasks alone never wrote a requested word. With copyShare 0.25 the base revises
 * its answers after feedback but still rarely writes the requested words; denser shares did not
 * change that (docs/experiments/2026-11-24-teaching-the-base-to-copy.md).
 */

import { createRng } from '../common/random.ts';
import type { BrownSplit } from '../data/brown.ts';
import type { ChatMessage } from '../policy/types.ts';
import { renderTaskInstruction } from './generate.ts';
import { buildTaskPool } from './pools.ts';
import { taskSentences } from './sentences.ts';
import { SOURCE_TASKS, type TaskName } from './types.ts';

/** The label of the copying examples (not a task of the pools). */
export const REPEAT_EXAMPLE = 'repeat';
/** Repeat examples use sentences of at most this many words (a short copy is learned first). */
const REPEAT_MAX_WORDS = 30;

export interface SftExample {
  /** The task instance's id. */
  id: string;
  task: TaskName | typeof REPEAT_EXAMPLE;
  /** `[user: instruction, assistant: reference]`. */
  messages: ChatMessage[];
}

/**
 * The tasks the built-in model's SFT mix draws from: the five sources plus concepts and keywords.
 * Fixed, so that a task added later (ifeval, a held-out target) leaves the recipe unchanged.
 */
export const SFT_TASKS = [...SOURCE_TASKS, 'concepts', 'keywords'] as const satisfies readonly TaskName[];

export interface SftOptions {
  split: BrownSplit;
  size: number;
  seed: number;
  /** @default SFT_TASKS */
  tasks?: readonly TaskName[];
  /** Share of the `size` examples that are repeat (copying) examples, in [0, 1). @default 0 */
  copyShare?: number;
}

/**
 * `size` single-turn examples: `round(size · copyShare)` repeat examples (distinct sentences of the
 * split, seeded) and the rest from a seeded task pool (`buildTaskPool`, so tasks are balanced),
 * shuffled together. The same options give the same examples.
 *
 * @example buildSftExamples({ split: 'train', size: 5000, seed: 0, copyShare: 0.25 })[0].messages
 */
export function buildSftExamples({
  split,
  size,
  seed,
  tasks = SFT_TASKS,
  copyShare = 0,
}: SftOptions): SftExample[] {
  if (!(copyShare >= 0 && copyShare < 1)) {
    throw new RangeError(`copyShare must be in [0, 1), got ${copyShare}`);
  }
  const repeats = Math.round(size * copyShare);
  const taskExamples: SftExample[] = buildTaskPool({
    tasks: [...tasks],
    split,
    size: size - repeats,
    seed,
  }).map((instance) => ({
    id: instance.id,
    task: instance.task,
    messages: [
      { role: 'user', content: renderTaskInstruction(instance) },
      { role: 'assistant', content: instance.reference },
    ],
  }));
  if (repeats === 0) return taskExamples;
  return createRng(seed, 'sft/mix', split).shuffle([
    ...taskExamples,
    ...repeatExamples(split, repeats, seed),
  ]);
}

/** `count` "Repeat this sentence" examples over distinct short sentences of `split`. */
function repeatExamples(split: BrownSplit, count: number, seed: number): SftExample[] {
  const short = taskSentences(split).filter((sentence) => sentence.words.length <= REPEAT_MAX_WORDS);
  if (short.length < count) {
    throw new RangeError(
      `the ${split} split has ${short.length} sentences of at most ${REPEAT_MAX_WORDS} words, fewer than the ${count} repeat examples asked for; lower copyShare or size`,
    );
  }
  return createRng(seed, 'sft/repeat', split)
    .sample(short, count)
    .map((sentence) => ({
      id: `${REPEAT_EXAMPLE}/${split}/${sentence.key}`,
      task: REPEAT_EXAMPLE,
      messages: [
        { role: 'user', content: `Repeat this sentence: ${sentence.text}` },
        { role: 'assistant', content: sentence.text },
      ],
    }));
}
