/**
 * From generators to checked task instances. Every instance is verified before it is returned:
 * its constraints parse and its reference passes `checkAll`. A draft that fails is dropped and
 * counted (the generators are written so that this is rare; `describeTaskPools` reports it).
 */
import { checkAll, parseConstraints } from '../checkers/registry.ts';
import type { ConstraintSpec } from '../checkers/types.ts';
import { createRng } from '../common/random.ts';
import type { BrownSplit } from '../data/brown.ts';
import { renderInstruction } from '../session/render.ts';
import { taskSentences } from './sentences.ts';
import { sourceTaskGenerators } from './source-tasks.ts';
import { targetTaskGenerators } from './target-tasks.ts';
import { ALL_TASKS, type TaskGenerator, type TaskInstance, type TaskName } from './types.ts';

/** Every task's generator by name. */
export const TASK_GENERATORS: Readonly<Record<TaskName, TaskGenerator>> = Object.fromEntries(
  [...sourceTaskGenerators, ...targetTaskGenerators].map((generator) => [generator.task, generator]),
) as Record<TaskName, TaskGenerator>;

/** True for a known task name. */
export function isTaskName(name: string): name is TaskName {
  return (ALL_TASKS as readonly string[]).includes(name);
}

export interface GenerateTaskOptions {
  task: TaskName;
  split: BrownSplit;
  /** Any integer; the same seed gives the same instances. */
  seed: number;
  /** Stop after this many instances. @default Infinity (every sentence of the split) */
  limit?: number;
  /** Stop after looking at this many sentences. @default Infinity */
  sampleSize?: number;
}

export interface TaskGeneration {
  task: TaskName;
  split: BrownSplit;
  instances: TaskInstance[];
  /** Sentences looked at (the eligible ones, in seeded order, until `limit` or `sampleSize`). */
  examined: number;
  /** Drafts whose constraints did not parse or whose reference failed `checkAll`. */
  dropped: number;
  /** The first few dropped drafts, for debugging a generator. */
  droppedExamples: { reference: string; constraints: ConstraintSpec[]; reason: string }[];
}

/**
 * The instances of one task in one split: the split's eligible sentences in an order seeded by
 * (seed, task, split), each turned into at most one instance by the task's generator with a
 * generator seeded by (seed, task, sentence), so an instance does not depend on `limit` or on
 * other tasks.
 */
export function generateTaskInstances({
  task,
  split,
  seed,
  limit = Number.POSITIVE_INFINITY,
  sampleSize = Number.POSITIVE_INFINITY,
}: GenerateTaskOptions): TaskGeneration {
  const generator = TASK_GENERATORS[task];
  if (!generator) throw new RangeError(`unknown task "${task}"; known tasks: ${ALL_TASKS.join(', ')}`);
  const sentences = taskSentences(split);
  const order = createRng(seed, 'order', task, split).shuffle(sentences.map((_, i) => i));
  const result: TaskGeneration = { task, split, instances: [], examined: 0, dropped: 0, droppedExamples: [] };
  for (const i of order) {
    if (result.instances.length >= limit || result.examined >= sampleSize) break;
    const sentence = sentences[i];
    result.examined++;
    const draft = generator.generate(sentence, createRng(seed, task, sentence.key));
    if (!draft) continue;
    const reason = verifyDraft(draft.reference, draft.constraints);
    if (reason) {
      result.dropped++;
      if (result.droppedExamples.length < 5) {
        result.droppedExamples.push({ reference: draft.reference, constraints: draft.constraints, reason });
      }
      continue;
    }
    result.instances.push({
      id: `${task}/${split}/${sentence.key}`,
      task,
      split,
      constraints: draft.constraints,
      ...(draft.prompt ? { prompt: draft.prompt } : {}),
      reference: draft.reference,
      source: { corpus: 'brown', docId: sentence.docId, sentence: sentence.index },
    });
  }
  return result;
}

/** Null when the reference satisfies the constraints, else why not. */
function verifyDraft(reference: string, constraints: ConstraintSpec[]): string | null {
  try {
    const result = checkAll(reference, constraints);
    return result.ok ? null : (result.feedback ?? 'not ok');
  } catch (error) {
    return error instanceof Error ? error.message : String(error);
  }
}

/**
 * The first user turn for an instance or eval case: `renderInstruction` (the session runner's
 * renderer) over the parsed constraints, so training, eval and live sessions read the same words.
 */
export function renderTaskInstruction(item: {
  prompt?: string;
  constraints: readonly ConstraintSpec[];
}): string {
  return renderInstruction(item.prompt, parseConstraints(item.constraints));
}
