/**
 * `corgi`: the command-line face of the product. Each subcommand is a thin shell over a library
 * function, so the CLI, the HTTP API and the tests all exercise the same code.
 *
 * Start-up time: `check` and `checkers` are defined here; every other command's module (which may
 * load TensorFlow.js, llama.cpp or the database drivers) is imported only when that command runs,
 * and `corgi --help` lists it from the one-line summary in `LAZY_COMMANDS`.
 */
import { createInterface } from 'node:readline';
import { Command } from 'commander';
import { runCheckRequest } from '../checkers/check-request.ts';
import { ConstraintError } from '../checkers/errors.ts';
import { listCheckers } from '../checkers/registry.ts';
import { exitQuietlyOnClosedPipe } from './closed-pipe.ts';

/** Exit code for input the command refused (DESIGN.md: `corgi check` exits 2 on bad input). */
const EXIT_BAD_INPUT = 2;

/** Turns any failure into the CLI's error object: `{"error": "<field>: <reason>", "field"}`. */
function errorObject(error: unknown): { error: string; field?: string } {
  if (ConstraintError.isInstance(error)) return { error: error.message, field: error.field };
  return { error: error instanceof Error ? error.message : String(error) };
}

/** Decodes one request and checks it; never throws. */
function checkLine(text: string, where: string): { output: unknown; ok: boolean } {
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch (error) {
    return {
      output: { error: `${where}: invalid JSON (${(error as Error).message})`, field: where },
      ok: false,
    };
  }
  try {
    return { output: runCheckRequest(body), ok: true };
  } catch (error) {
    return { output: errorObject(error), ok: false };
  }
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

async function commandCheck(options: { jsonl?: boolean }): Promise<void> {
  if (!options.jsonl) {
    const text = await readStdin();
    if (text.trim() === '') {
      process.stdout.write(
        `${JSON.stringify({ error: 'stdin: empty; expected a JSON check request', field: 'stdin' })}\n`,
      );
      process.exitCode = EXIT_BAD_INPUT;
      return;
    }
    const { output, ok } = checkLine(text, 'stdin');
    process.stdout.write(`${JSON.stringify(output)}\n`);
    if (!ok) process.exitCode = EXIT_BAD_INPUT;
    return;
  }
  // One request per line, one answer per line, in order, streamed: constant memory for any input.
  let lineNumber = 0;
  let anyBad = false;
  for await (const line of createInterface({ input: process.stdin, crlfDelay: Number.POSITIVE_INFINITY })) {
    lineNumber++;
    if (line.trim() === '') continue;
    const { output, ok } = checkLine(line, `line ${lineNumber}`);
    anyBad ||= !ok;
    if (!process.stdout.write(`${JSON.stringify(output)}\n`)) {
      await new Promise((resolve) => process.stdout.once('drain', resolve));
    }
  }
  if (anyBad) process.exitCode = EXIT_BAD_INPUT;
}

function commandCheckers(options: { json?: boolean }): void {
  const infos = listCheckers();
  if (options.json) {
    process.stdout.write(`${JSON.stringify(infos, null, 2)}\n`);
    return;
  }
  const width = Math.max(...infos.map((info) => info.id.length));
  for (const info of infos) {
    const schema = info.kwargsSchema as { properties?: Record<string, unknown>; required?: string[] };
    const kwargs = Object.keys(schema.properties ?? {})
      .map((name) => (schema.required?.includes(name) ? name : `${name}?`))
      .join(', ');
    process.stdout.write(`${info.id.padEnd(width)}  ${info.description}${kwargs ? `  {${kwargs}}` : ''}\n`);
  }
}

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

  program
    .command('check')
    .description(
      'Check a response against constraints. Reads {"response", "constraints"} (or IFEval\'s ' +
        '{"response", "instruction_id_list", "kwargs"}) from stdin and prints a check result. ' +
        'Exit 0 when checked, 2 on bad input with {"error"} naming the field.',
    )
    .option('--jsonl', 'one request per input line, one result (or {"error"}) per output line, in order')
    .action(commandCheck);

  program
    .command('checkers')
    .description('List the constraint checkers: id, description and kwargs')
    .option('--json', 'print ids, descriptions and kwargs JSON Schemas as JSON')
    .action(commandCheckers);

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
    await (await buildProgram(argv)).parseAsync(argv);
  } catch (error) {
    // One readable line, not a stack trace (the wasm runtime would otherwise print its source).
    process.stderr.write(`corgi: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exitCode = ConstraintError.isInstance(error) ? EXIT_BAD_INPUT : 1;
  }
}
