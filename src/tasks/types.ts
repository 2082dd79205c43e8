/**
 * What a task generator is and what it makes. A *task instance* is an unlabeled prompt: the
 * constraints (and optional writer's prompt) a model must satisfy, plus one reference text that
 * satisfies them, drawn from the Brown corpus. RL never reads the reference (the checkers are
 * the reward); supervised fine-tuning does.
 */
import type { ConstraintSpec } from '../checkers/types.ts';
import type { Rng } from '../common/random.ts';
import type { BrownSplit } from '../data/brown.ts';
import type { TaskSentence } from './sentences.ts';

/** Tasks the RL trainer trains on: using feedback is learned here. */
export const SOURCE_TASKS = [
  'num_planning',
  'sentiment',
  'forbidden_words',
  'word_count',
  'start_end',
] as const;
/** Tasks held out from RL training, for measuring transfer (the paper's meta-learning claim). */
export const TARGET_TASKS = ['concepts', 'keywords', 'ifeval'] as const;
/** Every task, sources first. */
export const ALL_TASKS = [...SOURCE_TASKS, ...TARGET_TASKS] as const;

export type SourceTask = (typeof SOURCE_TASKS)[number];
export type TargetTask = (typeof TARGET_TASKS)[number];
export type TaskName = (typeof ALL_TASKS)[number];

/** One unlabeled prompt of a task, with a reference answer for supervised fine-tuning only. */
export interface TaskInstance {
  /** `{task}/{split}/{docId}-{sentence}`, e.g. `concepts/test/cn03-41`; the task is the part before the first `/`. */
  id: string;
  task: TaskName;
  split: BrownSplit;
  /** Constraint specs as the contract writes them (`{id, kwargs}`). */
  constraints: ConstraintSpec[];
  /** The writer's prompt shown before the constraint sentences; absent when the constraints say it all. */
  prompt?: string;
  /** A text that passes `checkAll(reference, constraints)`: the corpus sentence. */
  reference: string;
  /** Where the reference comes from. */
  source: { corpus: 'brown'; docId: string; sentence: number };
}

/** What a generator returns for one sentence: an instance without its bookkeeping fields. */
export interface TaskDraft {
  constraints: ConstraintSpec[];
  prompt?: string;
  reference: string;
}

export interface TaskGenerator {
  task: TaskName;
  /** One line for `corgi tasks`. */
  description: string;
  /**
   * The instance this sentence yields, or null when the sentence does not suit the task. `rng`
   * is seeded from (seed, task, sentence), so the result does not depend on generation order.
   */
  generate(sentence: TaskSentence, rng: Rng): TaskDraft | null;
}
