/**
 * `corgi check [--jsonl]` and `corgi checkers [--json]`: the checkers from the command line. They load
 * only the checkers, so they start fast and are registered on every run (main.ts).
 */
import { createInterface } from 'node:readline';
import type { Command } from 'commander';
import { runCheckRequest } from '../checkers/check-request.ts';
import { ConstraintError } from '../checkers/errors.ts';
import { listCheckers } from '../checkers/registry.ts';

/** Exit code for input the command refused: `corgi check` exits 2 on bad input, 1 on a failed check. */
export const EXIT_BAD_INPUT = 2;

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

/** Adds `check` and `checkers` to `program`. */
export function registerCheckCommands(program: Command): void {
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
}
