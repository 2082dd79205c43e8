/**
 * `corgi train`: one CORGI training run (`trainCorgi`) from the command line. Flags are generated
 * from the config schema (corgi-config.ts: `group_size` → `--group-size`). With `DATABASE_URL` set,
 * every step is also logged to its training_steps table and logged live sessions feed the run
 * (production prompts, `--replay-sessions`); without it the run uses the task pools only.
 *
 * Output: progress on stderr, the summary JSON on stdout. Ctrl-C finishes the current step, writes
 * a work checkpoint and exits 130 (`--resume` continues); exit 2 on a bad config, naming the field.
 */

import type { Command } from 'commander';
import type { ZodError, z } from 'zod';
import { type CorgiConfigInput, corgiConfigSchema } from '../training/rl/corgi-config.ts';
import { backendOptionsFromEnv, databaseOptionsFromEnv, dataDirFromEnv } from './command-env.ts';
import { addConfigOptions, flagOf, readConfigFlags } from './config-flags.ts';

/** Adds `corgi train` to `program`. */
export function registerTrainCommand(program: Command): Command {
  const command = program
    .command('train')
    .description(
      'Train a policy with CORGI RL on feedback sessions (K attempts; --attempts 1 is the single-attempt baseline). ' +
        'Progress on stderr, summary JSON on stdout; Ctrl-C checkpoints, --resume continues.',
    );
  const fields = addConfigOptions(
    command,
    { train: corgiConfigSchema.shape as unknown as Record<string, z.ZodType> },
    { train: 'Training' },
  );
  command.action(async (_options: Record<string, unknown>, cmd: Command) => {
    process.exitCode = await runTrain(readConfigFlags(cmd, fields) as CorgiConfigInput);
  });
  return command;
}

async function runTrain(input: CorgiConfigInput): Promise<number> {
  const parsed = corgiConfigSchema.safeParse(input);
  if (!parsed.success) return refuse(parsed.error);
  const [
    { selectBackend },
    { trainCorgi },
    { TrainingInterruptedError },
    { openDatabase },
    { trainingStepRecorder },
    { ResumeConfigError },
  ] = await Promise.all([
    import('../model/tfjs/backend.ts'),
    import('../training/rl/corgi-trainer.ts'),
    import('../training/interrupted.ts'),
    import('../db/database.ts'),
    import('../db/training-steps.ts'),
    import('../training/run-state.ts'),
  ]);
  await selectBackend(backendOptionsFromEnv());
  const db = process.env.DATABASE_URL ? await openDatabase(databaseOptionsFromEnv()) : undefined;
  const controller = new AbortController();
  const onInterrupt = () => {
    process.stderr.write(
      '\ntrain: stopping after this step to write a checkpoint (Ctrl-C again to quit now)\n',
    );
    controller.abort();
    process.removeListener('SIGINT', onInterrupt);
  };
  process.on('SIGINT', onInterrupt);
  try {
    const summary = await trainCorgi(input, {
      signal: controller.signal,
      dataDir: dataDirFromEnv(),
      ...(db ? { db: db.pool, onStep: trainingStepRecorder(db.pool) } : {}),
    });
    process.stdout.write(`${JSON.stringify(summary, null, 2)}\n`);
    return 0;
  } catch (error) {
    if (TrainingInterruptedError.isInstance(error)) {
      process.stderr.write(`train: ${error.message}\n`);
      return 130;
    }
    if (ResumeConfigError.isInstance(error)) {
      process.stderr.write(`corgi train: ${error.message}\n`);
      process.stdout.write(`${JSON.stringify({ error: error.message, field: error.field })}\n`);
      return 2;
    }
    throw error;
  } finally {
    process.removeListener('SIGINT', onInterrupt);
    await db?.close();
  }
}

function refuse(error: ZodError): number {
  const issue = error.issues[0]!;
  const field = String(issue.path[0] ?? 'config');
  const message = `${flagOf(field)}: ${issue.message}`;
  process.stderr.write(`corgi train: ${message}\n`);
  process.stdout.write(`${JSON.stringify({ error: message, field })}\n`);
  return 2;
}
