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
 * its answers after feedback but still rarely writes the requested words; denser shares and the
 * word-list repeats below did not change that (docs/experiments/2026-11-24-teaching-the-base-to-copy.md).
 */
import { findConcept } from '../checkers/concepts.ts';
import { analyzeText } from '../checkers/nlp.ts';
import type { BrownSplit } from '../data/brown.ts';
import type { ChatMessage } from '../policy/types.ts';
import { createRng } from '../random.ts';
import { renderTaskInstruction } from './generate.ts';
import { buildTaskPool } from './pools.ts';
import { contentWords, taskSentences } from './sentences.ts';
import { ALL_TASKS, type TaskInstance, type TaskName } from './types.ts';

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

export interface SftOptions {
  split: BrownSplit;
  size: number;
  seed: number;
  /** @default ALL_TASKS */
  tasks?: readonly TaskName[];
  /** Share of the `size` examples that are repeat (copying) examples, in [0, 1). @default 0 */
  copyShare?: number;
  /**
   * Share of the `size` examples that repeat a list of 3–10 unrelated content words; with
   * `copyShare`, below 1. @default 0
   */
  wordCopyShare?: number;
  /**
   * Draw the examples of the word-inclusion tasks (`INCLUSION_TASKS`) only from sentences of at
   * most this many words. A long reference spreads the 2–5 requested words over up to 30 words of
   * text a small model cannot plan; a short one is mostly the requested words and a little glue,
   * which is the mapping the task needs learned. Evaluation and RL pools are unaffected.
   * @default Infinity (any eligible sentence, 6–30 words)
   */
  inclusionMaxWords?: number;
  /**
   * List a concepts example's concepts in the order its reference uses them, instead of the
   * generator's random order. Writing the listed words in order is what an induction head does
   * (find the word just written in the prompt, copy the one after it); in any other order the
   * model must also track which words are left. Evaluation keeps the random order; the checker
   * accepts any. (Keywords cannot follow: `keywords:existence` lists them sorted, as IFEval.)
   * @default false
   */
  inclusionInOrder?: boolean;
}

/** The tasks whose constraint names words the answer must contain. */
export const INCLUSION_TASKS = ['concepts', 'keywords'] as const satisfies readonly TaskName[];

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
  tasks = ALL_TASKS,
  copyShare = 0,
  wordCopyShare = 0,
  inclusionMaxWords = Number.POSITIVE_INFINITY,
  inclusionInOrder = false,
}: SftOptions): SftExample[] {
  if (!(copyShare >= 0 && copyShare < 1)) {
    throw new RangeError(`copyShare must be in [0, 1), got ${copyShare}`);
  }
  if (!(wordCopyShare >= 0 && copyShare + wordCopyShare < 1)) {
    throw new RangeError(
      `wordCopyShare must be at least 0 and below 1 - copyShare (${1 - copyShare}), got ${wordCopyShare}`,
    );
  }
  const repeats = Math.round(size * copyShare);
  const wordRepeats = Math.round(size * wordCopyShare);
  const taskExamples: SftExample[] = buildTaskPool({
    tasks: [...tasks],
    split,
    size: size - repeats - wordRepeats,
    seed,
    maxWords: Number.isFinite(inclusionMaxWords)
      ? Object.fromEntries(INCLUSION_TASKS.map((task) => [task, inclusionMaxWords]))
      : {},
  })
    .map((instance) => (inclusionInOrder ? inReferenceOrder(instance) : instance))
    .map((instance) => ({
      id: instance.id,
      task: instance.task,
      messages: [
        { role: 'user', content: renderTaskInstruction(instance) },
        { role: 'assistant', content: instance.reference },
      ],
    }));
  if (repeats === 0 && wordRepeats === 0) return taskExamples;
  return createRng(seed, 'sft/mix', split).shuffle([
    ...taskExamples,
    ...(repeats > 0 ? repeatExamples(split, repeats, seed) : []),
    // Drawn after the sentence repeats, from their own stream: adding them leaves the rest as it was.
    ...(wordRepeats > 0 ? repeatWordExamples(split, wordRepeats, seed) : []),
  ]);
}

/** A concepts instance with its concepts listed by where the reference first uses them. */
function inReferenceOrder(instance: TaskInstance): TaskInstance {
  if (instance.task !== 'concepts') return instance;
  const analysis = analyzeText(instance.reference);
  const firstUse = (concept: string): number =>
    Math.min(...findConcept(analysis, concept).map((token) => analysis.tokens.indexOf(token)));
  return {
    ...instance,
    constraints: instance.constraints.map((spec) => {
      if (spec.id !== 'corgi:concepts') return spec;
      const ranked = (spec.kwargs?.concepts as string[]).map((concept) => ({
        concept,
        at: firstUse(concept),
      }));
      ranked.sort((a, b) => a.at - b.at);
      return { ...spec, kwargs: { ...spec.kwargs, concepts: ranked.map(({ concept }) => concept) } };
    }),
  };
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

/** Words per word-list repeat example. */
const WORD_LIST_LENGTH = { min: 3, max: 10 } as const;

/**
 * `count` "Repeat these words" examples: 3–10 content words of the split drawn independently, so
 * the next word cannot be guessed from the ones before, only copied (a sentence the language model
 * can half predict gives a weaker signal). Measured: 35% of 20,000 examples on top of the built-in
 * base did not make it copy (docs/experiments/2026-11-24-teaching-the-base-to-copy.md).
 */
function repeatWordExamples(split: BrownSplit, count: number, seed: number): SftExample[] {
  const vocabulary = new Set<string>();
  for (const sentence of taskSentences(split)) {
    for (const { word } of contentWords(sentence)) vocabulary.add(word);
  }
  const words = [...vocabulary];
  const rng = createRng(seed, 'sft/repeat-words', split);
  return Array.from({ length: count }, (_, i) => {
    const list = rng.sample(words, rng.int(WORD_LIST_LENGTH.min, WORD_LIST_LENGTH.max)).join(' ');
    return {
      id: `${REPEAT_EXAMPLE}-words/${split}/${i}`,
      task: REPEAT_EXAMPLE,
      messages: [
        { role: 'user', content: `Repeat these words: ${list}` },
        { role: 'assistant', content: list },
      ],
    };
  });
}
