/**
 * Eval case files (`corgi eval`, docs/training.md): one JSON object a line,
 * `{"id"?, "constraints": [...], "prompt"?}`. Without `prompt` the instruction is rendered from
 * the constraints alone, as the task generators render it (`renderTaskInstruction`).
 *
 * `readCasesJsonl` also reads the CORGI paper's test sets in ../shared/data/corgi: they use the
 * same shape plus an optional reference `ref`, except `story_generation`, whose lines carry only a
 * story `prefix`; the paper scored those continuations for repetition, so a story line becomes a
 * `corgi:no_repeat_ngram` {n: 4} case prompted "Continue the story: {prefix}".
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { z } from 'zod';
import { ConstraintError } from '../checkers/errors.ts';
import { parseConstraints } from '../checkers/registry.ts';
import type { ConstraintSpec } from '../checkers/types.ts';

/** One eval case. */
export interface EvalCase {
  id?: string;
  constraints: ConstraintSpec[];
  prompt?: string;
  /** A reference answer when the file has one (the paper's `ref`); eval does not use it. */
  reference?: string;
}

/** The n the story task's repetition check uses (the paper's rep-4). */
export const STORY_NGRAM = 4;

const caseLineSchema = z.looseObject({
  id: z.string().optional(),
  constraints: z.array(z.unknown()).optional(),
  prompt: z.string().optional(),
  prefix: z.string().optional(),
  ref: z.string().optional(),
  reference: z.string().optional(),
});

/** The prompt of a story case: the paper's story prefix to continue. */
export function storyPrompt(prefix: string): string {
  return `Continue the story: ${prefix.trim()}`;
}

export interface ReadCasesOptions {
  /**
   * Skip a bad line instead of throwing. The paper's panagram set has one case our checker
   * refuses (`panagram_test_58` lists "-" as a letter, for "e-book").
   * @default false
   */
  skipInvalid?: boolean;
  /** Called with each skipped line's error (only with `skipInvalid`). */
  onSkip?: (error: Error) => void;
}

/**
 * Reads an eval case file: ours (`writeCasesJsonl`) or the paper's (see the file header). Blank
 * lines are skipped; constraints are validated with `parseConstraints`, and a bad line throws an
 * error naming the file, line and field (or is skipped, with `skipInvalid`).
 *
 * @example readCasesJsonl('../shared/data/corgi/panagram.test.jsonl', { skipInvalid: true, onSkip: console.warn })
 */
export function readCasesJsonl(
  path: string,
  { skipInvalid = false, onSkip }: ReadCasesOptions = {},
): EvalCase[] {
  const cases: EvalCase[] = [];
  readFileSync(path, 'utf8')
    .split('\n')
    .forEach((line, i) => {
      if (!line.trim()) return;
      try {
        cases.push(parseCaseLine(line, `${path}:${i + 1}`));
      } catch (error) {
        if (!skipInvalid) throw error;
        onSkip?.(error as Error);
      }
    });
  return cases;
}

/** One line of a case file as an `EvalCase`; throws an error that starts with `where`. */
function parseCaseLine(line: string, where: string): EvalCase {
  let json: unknown;
  try {
    json = JSON.parse(line);
  } catch (error) {
    throw new Error(`${where}: not valid JSON (${(error as Error).message})`);
  }
  const parsed = caseLineSchema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new Error(`${where}: ${issue.path.join('.') || 'line'}: ${issue.message}`);
  }
  const { id, constraints, prompt, prefix, ref, reference } = parsed.data;
  const item: EvalCase = { constraints: [] };
  if (id !== undefined) item.id = id;
  if (constraints) {
    try {
      parseConstraints(constraints);
    } catch (error) {
      if (error instanceof ConstraintError) throw new Error(`${where}: ${error.message}`);
      throw error;
    }
    item.constraints = constraints as ConstraintSpec[];
    if (prompt !== undefined) item.prompt = prompt;
  } else if (prefix !== undefined) {
    item.constraints = [{ id: 'corgi:no_repeat_ngram', kwargs: { n: STORY_NGRAM } }];
    item.prompt = storyPrompt(prefix);
  } else {
    throw new Error(`${where}: constraints: required (or a story "prefix")`);
  }
  const answer = reference ?? ref;
  if (answer !== undefined) item.reference = answer;
  return item;
}

/**
 * Writes eval cases, one `{"id", "constraints", "prompt"?}` line each (the `corgi eval` contract;
 * references stay out). Creates the parent directory. Returns the number of lines written.
 */
export function writeCasesJsonl(
  cases: readonly { id?: string; constraints: readonly ConstraintSpec[]; prompt?: string }[],
  path: string,
): number {
  const lines = cases.map(({ id, constraints, prompt }) =>
    JSON.stringify({
      ...(id !== undefined ? { id } : {}),
      constraints,
      ...(prompt !== undefined ? { prompt } : {}),
    }),
  );
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, lines.length > 0 ? `${lines.join('\n')}\n` : '');
  return lines.length;
}

/**
 * The task a case id belongs to, for grouping eval results: ours are `{task}/{split}/...`, the
 * paper's `{task}_test_{i}` (`cmg_hard_test_3` → `cmg_hard`). Null for an id of neither form.
 */
export function taskOfCaseId(id: string | undefined): string | null {
  if (!id) return null;
  const slash = id.indexOf('/');
  if (slash > 0) return id.slice(0, slash);
  const paper = id.match(/^(.+?)_(?:test|train|validation|dev)_\d+$/);
  return paper ? paper[1] : null;
}
