/**
 * `corgi export --format trl|openrlhf|jsonl [--since] [--policy-version] [--min-score] [--source]
 * [--out]`: sessions from the database (`DATABASE_URL`, else the embedded one) as training records,
 * one JSON object per line, streamed (see export-sessions.ts).
 */
import { createWriteStream } from 'node:fs';
import { rename, rm } from 'node:fs/promises';
import { finished } from 'node:stream/promises';
import type { Command } from 'commander';
import { ConstraintError } from '../checkers/errors.ts';
import { type Database, openDatabase } from '../db/database.ts';
import {
  EXPORT_FORMATS,
  type ExportOptions,
  parseExportOptions,
  writeExport,
} from '../export/export-sessions.ts';

/** Option fields as the flags that set them, so an error names what the user typed. */
const FLAGS: Record<string, string> = {
  format: '--format',
  since: '--since',
  policyVersion: '--policy-version',
  minScore: '--min-score',
  sources: '--source',
  batchSize: '--batch-size',
};

interface ExportFlags {
  format: string;
  since?: string;
  policyVersion?: string;
  minScore?: string;
  source?: string;
  batchSize?: string;
  out?: string;
}

/** Flags → validated export options; errors name the flag (`--min-score: Too big: ...`). */
export function exportOptionsFromFlags(flags: ExportFlags): ExportOptions {
  const options = {
    format: flags.format,
    since: flags.since,
    policyVersion: flags.policyVersion,
    minScore: flags.minScore === undefined ? undefined : Number(flags.minScore),
    sources: flags.source?.split(',').map((s) => s.trim()),
    batchSize: flags.batchSize === undefined ? undefined : Number(flags.batchSize),
  };
  try {
    parseExportOptions(options);
  } catch (error) {
    if (!ConstraintError.isInstance(error)) throw error;
    const top = error.field.split('.')[0];
    throw new ConstraintError(FLAGS[top] ?? error.field, error.reason, { code: error.code });
  }
  return options as ExportOptions;
}

export interface ExportCommandDeps {
  /** @default openDatabase (DATABASE_URL, else the embedded database); tests pass their own. */
  openDatabase?: () => Promise<Pick<Database, 'pool' | 'close'>>;
}

export function registerExportCommand(program: Command, deps: ExportCommandDeps = {}): void {
  program
    .command('export')
    .description(
      'Export completed sessions as multi-turn training records (JSON lines): per-turn trainability ' +
        'masks, reward = best score, per-attempt scores, constraints. Streams in constant memory.',
    )
    .requiredOption('--format <format>', `record layout: ${EXPORT_FORMATS.join(' | ')}`)
    .option('--since <time>', 'only sessions created at or after this ISO time')
    .option('--policy-version <version>', 'only sessions with an attempt by this policy version')
    .option('--min-score <x>', 'only sessions whose best score is at least x (0..1)')
    .option('--source <list>', 'only these sources, comma-separated: live,simulated,eval')
    .option('--batch-size <n>', 'sessions per database query', '500')
    .option(
      '--out <file>',
      'write here (atomically: <file>.partial, renamed when complete) instead of stdout',
    )
    .action(async (flags: ExportFlags) => {
      const options = exportOptionsFromFlags(flags);
      const db = await (deps.openDatabase ?? openDatabase)();
      try {
        if (!flags.out) {
          const { sessions } = await writeExport(db.pool, options, process.stdout);
          process.stderr.write(`corgi export: ${sessions} sessions\n`);
          return;
        }
        // A partial file never looks like a finished export: write aside, rename at the end.
        const partial = `${flags.out}.partial`;
        const out = createWriteStream(partial);
        try {
          const { sessions } = await writeExport(db.pool, options, out);
          out.end();
          await finished(out);
          await rename(partial, flags.out);
          process.stderr.write(`corgi export: ${sessions} sessions → ${flags.out}\n`);
        } catch (error) {
          out.destroy();
          await rm(partial, { force: true });
          throw error;
        }
      } finally {
        await db.close();
      }
    });
}
