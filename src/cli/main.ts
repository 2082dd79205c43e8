/**
 * `corgi`: the command-line face of the product. Each subcommand is a thin shell over a library
 * function, so the CLI, the HTTP API and the tests all exercise the same code.
 *
 * Start-up time: `check` and `checkers` (check-command.ts, which loads only the checkers) are always
 * registered; every other command's module (which may load TensorFlow.js, llama.cpp or the database
 * drivers) is imported only when that command runs, and `corgi --help` lists it from the one-line
 * summary in `LAZY_COMMANDS`.
 */
import { Command } from 'commander';
import { ConstraintError } from '../checkers/errors.ts';
import { configureRuntime } from '../common/runtime-settings.ts';
import { EXIT_BAD_INPUT, registerCheckCommands } from './check-command.ts';
import { exitQuietlyOnClosedPipe } from './closed-pipe.ts';
import { runtimeSettingsFromEnv } from './command-env.ts';

/** Commands whose module loads when one of them runs: name → summary for `corgi --help`, and the module. */
interface LazyCommand {
  commands: Record<string, string>;
  register: () => Promise<(program: Command) => void>;
}

/** Every command defined outside this file, in the order `corgi --help` lists them. */
export const LAZY_COMMANDS: LazyCommand[] = [
  {
    commands: { serve: 'Serve the writing tool, the dashboard and the API' },
    register: async () => (await import('./serve-command.ts')).registerServeCommand,
  },
  {
    commands: { keys: 'Create, list and revoke API keys' },
    register: async () => (await import('./keys-command.ts')).registerKeysCommand,
  },
  {
    commands: { generate: 'Generate a reply to one message with a local model (llama.cpp)' },
    register: async () => (await import('./generate-command.ts')).registerGenerateCommand,
  },
  {
    commands: { bench: 'Measure training and generation tokens/s of a small Llama' },
    register: async () => (await import('./bench-command.ts')).registerBenchCommand,
  },
  {
    commands: { eval: 'Measure success@1..K of a checkpoint on constrained cases' },
    register: async () => (await import('./eval-command.ts')).registerEvalCommand,
  },
  {
    commands: { tasks: 'List the task pools, or write a seeded pool as eval cases' },
    register: async () => (await import('./tasks-command.ts')).registerTasksCommand,
  },
  {
    commands: { export: 'Export completed sessions as training records (JSON lines)' },
    register: async () => (await import('./export-command.ts')).registerExportCommand,
  },
  {
    commands: {
      pull: 'Download a model into the store (a known name, or an HF repo[:file])',
      import: 'Add a GGUF file or a Hugging Face directory to the store',
      models: 'List the models in the store',
      rm: 'Remove a model from the store',
    },
    register: async () => (await import('./store-commands.ts')).registerStoreCommands,
  },
  {
    commands: { convert: 'Write a checkpoint directory as a GGUF file for llama.cpp' },
    register: async () => (await import('./convert-command.ts')).registerConvertCommand,
  },
  {
    commands: { pretrain: 'Build the base model: tokenizer, pretraining, SFT' },
    register: async () => (await import('./pretrain-command.ts')).registerPretrainCommand,
  },
  {
    commands: { train: 'Train a policy with CORGI RL on feedback sessions' },
    register: async () => (await import('./train-command.ts')).registerTrainCommand,
  },
  {
    commands: { trainer: 'Run the background trainer against the database' },
    register: async () => (await import('./trainer-command.ts')).registerTrainerCommand,
  },
  {
    commands: {
      promote: 'Make a version (or a checkpoint directory) the live policy',
      rollback: 'Return to the version that was live before the current one',
      versions: 'List policy versions, newest first',
    },
    register: async () => (await import('./promote-command.ts')).registerPromoteCommands,
  },
];

/** The subcommand `argv` asks for (`corgi x …` or `corgi help x`), or undefined. */
function requestedCommand(argv: string[]): string | undefined {
  const operands = argv.slice(2).filter((arg) => !arg.startsWith('-'));
  return operands[0] === 'help' ? operands[1] : operands[0];
}

/**
 * The `corgi` program for `argv`: the requested command fully defined (its module imported), every
 * other one by name and summary only.
 */
export async function buildProgram(argv: string[] = process.argv): Promise<Command> {
  const program = new Command('corgi')
    .description('CORGI Live: constrained generation that learns from checker feedback')
    .showHelpAfterError();

  registerCheckCommands(program);

  const wanted = requestedCommand(argv);
  for (const lazy of LAZY_COMMANDS) {
    if (wanted !== undefined && Object.hasOwn(lazy.commands, wanted)) {
      (await lazy.register())(program);
      continue;
    }
    for (const [name, summary] of Object.entries(lazy.commands)) {
      program.command(name).description(summary).allowUnknownOption().allowExcessArguments();
    }
  }
  return program;
}

/** Runs the CLI on `argv` (as in `process.argv`). */
export async function main(argv: string[]): Promise<void> {
  exitQuietlyOnClosedPipe();
  try {
    configureRuntime(runtimeSettingsFromEnv(process.env));
    await (await buildProgram(argv)).parseAsync(argv);
  } catch (error) {
    // One readable line, not a stack trace (the wasm runtime would otherwise print its source).
    process.stderr.write(`corgi: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exitCode = ConstraintError.isInstance(error) ? EXIT_BAD_INPUT : 1;
  }
}
