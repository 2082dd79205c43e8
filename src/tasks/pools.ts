/**
 * Task pools: the unlabeled prompts the trainer draws from (source tasks), the held-out sets
 * eval measures transfer on (target tasks), and the per-task counts `corgi tasks` prints.
 */
import { z } from 'zod';
import { createRng } from '../common/random.ts';
import type { BrownSplit } from '../data/brown.ts';
import { generateTaskInstances } from './generate.ts';
import { taskSentences } from './sentences.ts';
import { ALL_TASKS, SOURCE_TASKS, type TaskInstance, type TaskName } from './types.ts';

export { readCasesJsonl, taskOfCaseId, writeCasesJsonl } from './cases.ts';
export { ALL_TASKS, SOURCE_TASKS, TARGET_TASKS } from './types.ts';

const SPLITS = ['train', 'validation', 'test'] as const;

export const taskPoolOptionsSchema = z.object({
  /** Which tasks to mix. @default ALL_TASKS */
  tasks: z
    .array(z.enum(ALL_TASKS))
    .min(1, { error: 'tasks must name at least one task' })
    .refine((tasks) => new Set(tasks).size === tasks.length, { error: 'tasks must not repeat a task' })
    .default([...ALL_TASKS]),
  /** The Brown split the sentences come from (documents never cross splits). */
  split: z.enum(SPLITS),
  /** How many instances in all; shared evenly between the tasks (the first ones get the remainder). */
  size: z.int().min(0),
  /** Same seed, same pool, byte for byte. */
  seed: z.int(),
});

export type TaskPoolOptions = z.input<typeof taskPoolOptionsSchema>;

/**
 * A deterministic pool of `size` task instances from one split, `size / tasks.length` of each task
 * (the first `size % tasks.length` tasks get one more), in a seeded random order. Throws a
 * `RangeError` naming the task when a split has too few sentences for its share
 * (`describeTaskPools` gives what each split holds).
 *
 * @example buildTaskPool({ tasks: SOURCE_TASKS, split: 'train', size: 2000, seed: 1 })
 */
export function buildTaskPool(options: TaskPoolOptions): TaskInstance[] {
  const { tasks, split, size, seed } = taskPoolOptionsSchema.parse(options);
  const instances: TaskInstance[] = [];
  tasks.forEach((task, i) => {
    const share = Math.floor(size / tasks.length) + (i < size % tasks.length ? 1 : 0);
    if (share === 0) return;
    const generated = generateTaskInstances({ task, split, seed, limit: share }).instances;
    if (generated.length < share) {
      throw new RangeError(
        `task "${task}" has only ${generated.length} instances in the ${split} split, but a pool of ${size} ` +
          `over ${tasks.length} tasks needs ${share}; ask for a smaller pool or fewer tasks`,
      );
    }
    instances.push(...generated);
  });
  return createRng(seed, 'mix', split).shuffle(instances);
}

/** One row of `describeTaskPools`. */
export interface TaskPoolSummary {
  task: TaskName;
  kind: 'source' | 'target';
  split: BrownSplit;
  /** Eligible sentences of the split (after the common filter of sentences.ts). */
  sentences: number;
  /** Sentences actually run through the generator: all of them, or a seeded sample. */
  examined: number;
  /**
   * Instances the split yields (each eligible sentence gives at most one per task): exact when
   * every sentence was examined, else the sample's rate times `sentences`, rounded.
   */
  available: number;
  exact: boolean;
  /** Drafts dropped among the examined ones because the reference failed its own constraints. */
  dropped: number;
}

export interface DescribeTaskPoolsOptions {
  /** @default ['train', 'validation', 'test'] */
  splits?: readonly BrownSplit[];
  /** @default ALL_TASKS */
  tasks?: readonly TaskName[];
  /**
   * Examine at most this many sentences per task and split (a seeded random sample) and
   * extrapolate. The default covers validation and test exactly (under 2,000 eligible sentences
   * each) and estimates train (about 30,000) to within a couple of percent; `Infinity` counts
   * everything, about 35 s here (the default takes about 15 s), mostly wink-nlp parsing for
   * `sentiment` and `concepts` and the first compile of each forbidden word's pattern.
   * @default 2000
   */
  sampleSize?: number;
}

/**
 * How many instances each task yields in each split, for `corgi tasks`. Generation uses seed 0;
 * the counts barely depend on the seed. Rows are kept for the process.
 */
export function describeTaskPools({
  splits = SPLITS,
  tasks = ALL_TASKS,
  sampleSize = 2000,
}: DescribeTaskPoolsOptions = {}): TaskPoolSummary[] {
  const rows: TaskPoolSummary[] = [];
  for (const task of tasks) {
    for (const split of splits) {
      const key = `${task}/${split}/${sampleSize}`;
      let row = summaries.get(key);
      if (!row) {
        const sentences = taskSentences(split).length;
        const generated = generateTaskInstances({ task, split, seed: 0, sampleSize });
        const exact = generated.examined === sentences;
        const found = generated.instances.length;
        row = {
          task,
          kind: (SOURCE_TASKS as readonly string[]).includes(task) ? 'source' : 'target',
          split,
          sentences,
          examined: generated.examined,
          available: exact ? found : Math.round((found / Math.max(1, generated.examined)) * sentences),
          exact,
          dropped: generated.dropped,
        };
        summaries.set(key, row);
      }
      rows.push(row);
    }
  }
  return rows;
}

const summaries = new Map<string, TaskPoolSummary>();
