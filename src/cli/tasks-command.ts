/**
 * `corgi tasks`: what the task pools hold, and eval case files drawn from them.
 *
 *   corgi tasks                                   per task and split: instances available
 *   corgi tasks --split test --size 350 --seed 0 --out cases/test.jsonl
 *                                                 a seeded pool as `corgi eval` case lines
 *
 * The case file is what the eval tables in docs/ are computed on: the same command and seed give the
 * same file byte for byte.
 */
import { type Command, InvalidArgumentError } from 'commander';
import type { BrownSplit } from '../data/brown.ts';
import { writeCasesJsonl } from '../tasks/cases.ts';
import { buildTaskPool, describeTaskPools } from '../tasks/pools.ts';
import { ALL_TASKS, SOURCE_TASKS, TARGET_TASKS, type TaskName } from '../tasks/types.ts';

const SPLITS: readonly BrownSplit[] = ['train', 'validation', 'test'];

/** `--tasks source`, `--tasks target`, `--tasks all` or a comma list of task names. */
export function parseTaskList(value: string): TaskName[] {
  if (value === 'source') return [...SOURCE_TASKS];
  if (value === 'target') return [...TARGET_TASKS];
  if (value === 'all') return [...ALL_TASKS];
  const names = value.split(',').map((name) => name.trim());
  for (const name of names) {
    if (!(ALL_TASKS as readonly string[]).includes(name))
      throw new InvalidArgumentError(
        `unknown task "${name}"; expected source, target, all or a comma list of ${ALL_TASKS.join(', ')}`,
      );
  }
  return names as TaskName[];
}

function parseSplit(value: string): BrownSplit {
  if (!(SPLITS as readonly string[]).includes(value))
    throw new InvalidArgumentError(`expected one of ${SPLITS.join(', ')}, got "${value}"`);
  return value as BrownSplit;
}

function parseCount(value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isInteger(n) || n < 0)
    throw new InvalidArgumentError(`expected an integer ≥ 0, got "${value}"`);
  return n;
}

interface TasksCommandOptions {
  tasks: TaskName[];
  split?: BrownSplit;
  size?: number;
  seed: number;
  out?: string;
  json?: boolean;
}

/** Adds `corgi tasks` to `program`. */
export function registerTasksCommand(program: Command): Command {
  return program
    .command('tasks')
    .description(
      'List the task pools (instances per task and split), or with --out write a seeded pool as eval cases',
    )
    .option('--tasks <list>', 'source, target, all, or a comma list of task names', parseTaskList, [
      ...ALL_TASKS,
    ])
    .option('--split <split>', 'train, validation or test (with --out)', parseSplit)
    .option('--size <n>', 'instances in all, shared evenly between the tasks (with --out)', parseCount)
    .option('--seed <s>', 'pool seed', parseCount, 0)
    .option('--out <file>', 'write the pool as `corgi eval` case lines')
    .option('--json', 'print the counts as JSON')
    .action((options: TasksCommandOptions) => {
      if (options.out !== undefined) {
        if (options.split === undefined) throw new InvalidArgumentError('--split: required with --out');
        if (options.size === undefined) throw new InvalidArgumentError('--size: required with --out');
        const pool = buildTaskPool({
          tasks: options.tasks,
          split: options.split,
          size: options.size,
          seed: options.seed,
        });
        const written = writeCasesJsonl(pool, options.out);
        process.stderr.write(`corgi tasks: wrote ${written} cases to ${options.out}\n`);
        return;
      }
      const rows = describeTaskPools({
        tasks: options.tasks,
        splits: options.split ? [options.split] : SPLITS,
      });
      if (options.json) {
        process.stdout.write(`${JSON.stringify(rows)}\n`);
        return;
      }
      const lines = ['| task | kind | split | sentences | instances |', '|---|---|---|---:|---:|'];
      for (const row of rows) {
        const count = row.exact ? String(row.available) : `~${row.available}`;
        lines.push(`| ${row.task} | ${row.kind} | ${row.split} | ${row.sentences} | ${count} |`);
      }
      process.stdout.write(`${lines.join('\n')}\n`);
    });
}
