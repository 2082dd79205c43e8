/**
 * `corgi promote <version | checkpoint dir>`, `corgi rollback` and `corgi versions`: the operator's
 * controls over the live policy, against the PostgreSQL of `DATABASE_URL`. Every server LISTENing
 * on it loads the new version and swaps at its next attempt boundary.
 *
 * The embedded database lives inside the `corgi serve` process, so without `DATABASE_URL` these
 * commands go through that server's HTTP routes instead: `--server http://127.0.0.1:3000` (with
 * `CORGI_API_KEY` holding an admin key when the server requires one).
 *
 * Servers that serve from vLLM (`CORGI_POLICY=vllm:<baseURL>#<model>`) load adapters, not models:
 * with `--policy` (default `CORGI_POLICY`) naming a remote spec, a promotion is checked the way
 * those servers load it (vLLM's load-adapter endpoint) instead of by loading a TensorFlow.js model.
 */

import { existsSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Command } from 'commander';
import type { Database } from '../db/database.ts';
import type { PolicyVersion } from '../db/policy-versions.ts';
import { callAdminRoute } from './admin-client.ts';
import { adminKeyFromEnv, backendOptionsFromEnv, databaseOptionsFromEnv } from './command-env.ts';

interface CommonOptions {
  server?: string;
  json?: boolean;
  policy?: string;
}

/**
 * How a promotion made here loads (so verifies) the version: like the servers that will serve it.
 * A remote `--policy` spec: its vLLM loads the adapter (a plain OpenAI endpoint refuses, truthfully);
 * otherwise the TensorFlow.js model.
 */
async function loaderFor(policy: string | undefined) {
  const remote = await import('../policy/remote-policy.ts');
  if (!policy || !remote.isRemotePolicySpec(policy)) return undefined;
  const spec = remote.parsePolicySpec(policy, '--policy');
  return spec.kind === 'openai' ? remote.remotePromotionLoader(spec) : undefined;
}

const POLICY_OPTION_HELP =
  'what the servers serve (env CORGI_POLICY): with vllm:<baseURL>#<model>, the version is loaded into that vLLM ' +
  '(its LoRA adapter) instead of being verified as a local model';

/** What `promote` and `rollback` print with `--json` (the HTTP routes' fields). */
interface PromotionSummary {
  version: string;
  previous: string | null;
  changed: boolean;
  promotedAt: string | null;
}

export function registerPromoteCommands(program: Command): void {
  program
    .command('promote')
    .description(
      'Make a policy version (or a checkpoint directory, registered on the way) the live policy of every server. ' +
        'The checkpoint is loaded and verified first; a corrupt or partial one is refused and nothing changes.',
    )
    .argument('<target>', 'a registered version name, or a checkpoint directory')
    .option(
      '--version <name>',
      'with a checkpoint directory: the version name to register it under (default: its name)',
    )
    .option(
      '--server <url>',
      'promote through a running server (the embedded mode): POST <url>/v1/admin/promote',
    )
    .option('--policy <spec>', POLICY_OPTION_HELP, process.env.CORGI_POLICY)
    .option('--json', 'print {"version", "previous", "changed", "promotedAt"}')
    .action(async (target: string, options: CommonOptions & { version?: string }) => {
      const isDir = existsSync(target) && statSync(target).isDirectory();
      let summary: PromotionSummary;
      if (options.server) {
        const body = isDir
          ? { checkpoint: resolve(target), ...(options.version ? { version: options.version } : {}) }
          : { version: target };
        summary = await callServer(options.server, '/v1/admin/promote', body);
      } else {
        const { promote } = await import('../promotion/promote.ts');
        const load = await loaderFor(options.policy);
        summary = await withPolicyDatabase('promote', async (db) => {
          const promotion = await promote(
            db,
            isDir || options.version ? { checkpoint: target, version: options.version } : target,
            { load },
          );
          return { ...promotion, promotedAt: promotion.live.promotedAt };
        });
      }
      printSummary(summary, options.json);
    });

  program
    .command('rollback')
    .description(
      'Return every server to the version that was live before the current one; the current one is marked refused.',
    )
    .option('--reason <text>', 'why, stored with the rolled-back version')
    .option(
      '--server <url>',
      'roll back through a running server (the embedded mode): POST <url>/v1/admin/rollback',
    )
    .option('--policy <spec>', POLICY_OPTION_HELP, process.env.CORGI_POLICY)
    .option('--json', 'print {"version", "previous", "changed", "promotedAt"}')
    .action(async (options: CommonOptions & { reason?: string }) => {
      let summary: PromotionSummary;
      if (options.server) {
        summary = await callServer(
          options.server,
          '/v1/admin/rollback',
          options.reason ? { reason: options.reason } : {},
        );
      } else {
        const { rollback } = await import('../promotion/promote.ts');
        const load = await loaderFor(options.policy);
        summary = await withPolicyDatabase('rollback', async (db) => {
          const promotion = await rollback(db, { reason: options.reason, load });
          return { ...promotion, promotedAt: promotion.live.promotedAt };
        });
      }
      printSummary(summary, options.json);
    });

  program
    .command('versions')
    .description('List policy versions, newest first: status, parent, gate verdict, checkpoint')
    .option('--limit <n>', 'how many', '20')
    .option('--server <url>', 'ask a running server (the embedded mode): GET <url>/v1/admin/policy-versions')
    .option('--json', 'print the list as JSON')
    .action(async (options: CommonOptions & { limit: string }) => {
      const limit = Number(options.limit);
      if (!Number.isInteger(limit) || limit < 1)
        throw new Error(`--limit: expected a positive integer, got "${options.limit}"`);
      const versions: PolicyVersion[] = options.server
        ? (
            await callServer<{ versions: PolicyVersion[] }>(
              options.server,
              `/v1/admin/policy-versions?limit=${limit}`,
            )
          ).versions
        : await withPolicyDatabase('versions', async (db) =>
            (await import('../db/policy-versions.ts')).listPolicyVersions(db.pool, { limit }),
          );
      if (options.json) {
        process.stdout.write(`${JSON.stringify(versions)}\n`);
        return;
      }
      if (versions.length === 0) {
        process.stdout.write('no policy versions yet (a server registers the policy it starts with)\n');
        return;
      }
      for (const v of versions) {
        const note = v.refusedReason ? `  (${v.refusedReason})` : '';
        process.stdout.write(
          `${v.version.padEnd(24)} ${v.status.padEnd(9)} parent ${(v.parentVersion ?? '-').padEnd(20)} ` +
            `promoted ${v.promotedAt ?? '-'}  ${v.checkpointPath}${note}\n`,
        );
      }
    });
}

/** Opens `DATABASE_URL`'s database (with a TensorFlow.js backend for verifying checkpoints), or explains why not. */
async function withPolicyDatabase<T>(command: string, work: (db: Database) => Promise<T>): Promise<T> {
  if (!process.env.DATABASE_URL) {
    throw new Error(
      `${command}: DATABASE_URL is not set, and the embedded database lives inside the \`corgi serve\` process ` +
        '(nothing else may open it while the server runs). Go through the server instead: ' +
        `\`corgi ${command} ${command === 'promote' ? '<target> ' : ''}--server http://127.0.0.1:3000\`, or ` +
        (command === 'versions'
          ? 'GET /v1/admin/policy-versions.'
          : `POST /v1/admin/${command === 'promote' ? 'promote {"version": "<name>"} or {"checkpoint": "<dir>"}' : 'rollback {}'}.`),
    );
  }
  const [{ openDatabase }, { selectBackend }] = await Promise.all([
    import('../db/database.ts'),
    import('../model/tfjs/backend.ts'),
  ]);
  if (command !== 'versions') await selectBackend(backendOptionsFromEnv());
  const db = await openDatabase(databaseOptionsFromEnv());
  try {
    return await work(db);
  } finally {
    await db.close();
  }
}

/** An admin route of a running server: GET without a body, POST with one. */
const callServer = <T = PromotionSummary>(server: string, path: string, body?: unknown): Promise<T> =>
  callAdminRoute<T>(server, body === undefined ? 'GET' : 'POST', path, { body, apiKey: adminKeyFromEnv() });

function printSummary(summary: PromotionSummary, json?: boolean): void {
  if (json) {
    const { version, previous, changed, promotedAt } = summary;
    process.stdout.write(`${JSON.stringify({ version, previous, changed, promotedAt })}\n`);
  } else if (!summary.changed) {
    process.stdout.write(`${summary.version} is already the live version\n`);
  } else {
    process.stdout.write(
      `${summary.version} is live (was ${summary.previous ?? 'none'}); servers swap at their next attempt boundary\n`,
    );
  }
}
