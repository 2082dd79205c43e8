/**
 * `corgi pretrain`: the CLI face of `runPretrain`. Its flags are generated from the config schema
 * (`hidden_size` → `--hidden-size`, the doc line as help, grouped as the config is), so the two
 * never drift apart. Only flags given on the command line reach `runPretrain`: a resumed run
 * keeps its saved config and refuses a flag that would change it (exit 2, naming every such field).
 *
 * Output: progress on stderr, the summary JSON on stdout. Ctrl-C finishes the current step, writes
 * a checkpoint and exits 130; a second Ctrl-C exits at once. Exit 2 on a bad config.
 */

import type { Command } from 'commander';
import type { z } from 'zod';
import { TrainingInterruptedError } from '../training/interrupted.ts';
import { runPretrain } from '../training/pretrain/pretrain.ts';
import {
  PRETRAIN_CONFIG_GROUPS,
  PretrainConfigError,
  type PretrainConfigInput,
} from '../training/pretrain/pretrain-config.ts';
import { ResumeConfigError } from '../training/run-state.ts';
import { backendOptionsFromEnv } from './command-env.ts';
import { addConfigOptions, readConfigFlags } from './config-flags.ts';

const GROUP_TITLES: Record<string, string> = {
  run: 'Run',
  tokenizer: 'Tokenizer',
  data: 'Data',
  model: 'Model',
  pretraining: 'Pretraining',
  sft: 'SFT',
  logging: 'Logging and checkpoint',
};

/** Adds `corgi pretrain` with one flag per config field. */
export function registerPretrainCommand(program: Command): Command {
  const command = program
    .command('pretrain')
    .description(
      'Build the base model base-<seed>: BPE tokenizer on Brown, next-token pretraining, SFT on every task, ' +
        'then an HF-layout checkpoint in --out. Progress on stderr, summary JSON on stdout; Ctrl-C checkpoints, --resume continues.',
    );
  const fields = addConfigOptions(
    command,
    PRETRAIN_CONFIG_GROUPS as unknown as Record<string, Record<string, z.ZodType>>,
    GROUP_TITLES,
  );
  command.action(async (_options: Record<string, unknown>, cmd: Command) => {
    const input = readConfigFlags(cmd, fields);
    await commandPretrain(input as PretrainConfigInput);
  });
  return command;
}

async function commandPretrain(input: PretrainConfigInput): Promise<void> {
  const controller = new AbortController();
  const onInterrupt = () => {
    process.stderr.write(
      '\npretrain: stopping after this step to write a checkpoint (Ctrl-C again to quit now)\n',
    );
    controller.abort();
    process.removeListener('SIGINT', onInterrupt); // a second Ctrl-C takes the default exit
  };
  process.on('SIGINT', onInterrupt);
  try {
    const { preferred: backend, simdMatMul } = backendOptionsFromEnv();
    if (simdMatMul === false) (await import('../model/tfjs/wasm-kernels.ts')).setSimdMatMul(false);
    const summary = await runPretrain(input, { signal: controller.signal, ...(backend ? { backend } : {}) });
    process.stdout.write(`${JSON.stringify(summary, null, 2)}\n`);
  } catch (error) {
    if (TrainingInterruptedError.isInstance(error)) {
      process.stderr.write(`pretrain: ${error.message}\n`);
      process.exitCode = 130;
      return;
    }
    if (PretrainConfigError.isInstance(error) || ResumeConfigError.isInstance(error)) {
      process.stdout.write(`${JSON.stringify({ error: error.message, field: error.field })}\n`);
      process.exitCode = 2;
      return;
    }
    throw error;
  } finally {
    process.removeListener('SIGINT', onInterrupt);
  }
}
