/**
 * `npm run bench:cycle`: one learning-from-traffic cycle of a real `corgi serve`, timed. Prints JSON
 * on stdout; progress goes to stderr.
 *
 *   npm run bench:cycle -- [--policy smollm2-135m-instruct] [--sessions 16] [--clients 4]
 *                          [--steps 2] [--gate-cases 32] [--tolerance 0.02] [--seed 0]
 *                          [--max-attempts 4] [--max-tokens 48] [--trainer-args "<corgi trainer flags>"]
 *                          [--data-dir <dir>] [--timeout-minutes 120]
 *
 * The server is `corgi serve --policy <policy>` on the embedded database (what `npm start` runs) in a
 * fresh data directory (`--data-dir` keeps it; a store name is found through a link to
 * `$CORGI_DATA_DIR/models`, default ./data/models), rate limits off, with its own background trainer
 * on: a round becomes due after `--sessions` live sessions (`--trainer-min-sessions`) and trains
 * `--steps` steps from the live version (`--budget steps`, logged prompts join the task pools), the
 * eval gate compares the candidate with the live version on `--gate-cases` validation cases, and a
 * promotion is swapped into the running server. The bench:
 * 1. runs `--sessions` sessions over socket.io (`--clients` at a time, seeded test-split cases);
 * 2. waits for the round (the server polls every 2 s), its decision, and, when promoted, for the
 *    server to serve the new version (`GET /v1/policy`);
 * 3. reads the candidate's row (`GET /v1/admin/policy-versions`: the gate's comparisons, the last
 *    training step's metrics) and runs one more session to see which version answers.
 *
 * | field                    | meaning                                                              |
 * |--------------------------|----------------------------------------------------------------------|
 * | `traffic_s`              | first session started → last session ended                           |
 * | `round_wait_s`           | last session ended → the trainer's round started (poll period)       |
 * | `round_s`                | round started → the gate's decision (train, register, gate, promote) |
 * | `swap_s`                 | decision → `GET /v1/policy` reports the promoted version             |
 * | `cycle_s`                | first session started → serving the new version (or the refusal)     |
 * | `decision`               | `promoted` or `refused` (with the gate's reason)                     |
 * | `gate`                   | the gate's comparisons: success@K and mean best, candidate vs live    |
 * | `live_prompts_in_pool`   | logged live prompts the round drew from (a quarter of each step's prompts, `--production-fraction`) |
 * | `training`               | the candidate's last step: sessions trained on, reward, success@k, KL |
 * | `served_after`           | the version that answered a session after the cycle                  |
 */
import { mkdirSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import os from 'node:os';
import { join, resolve } from 'node:path';
import { Command } from 'commander';
import {
  buildCases,
  checkSessionOptions,
  machineReport,
  NO_RATE_LIMITS,
  nonNegativeInt,
  positiveInt,
  runClients,
  SESSION_TIMEOUT_MS,
  type ServeProcess,
  sessionPayload,
  startClientsWorker,
  startServe,
  stderrTail,
  stopGently,
} from './serve-harness.ts';
import { benchLog } from './serve-session.ts';
import { round } from './stats.ts';

const o = new Command('bench/cycle.ts')
  .option('--policy <spec>', 'what the server serves and the round trains from', 'smollm2-135m-instruct')
  .option('--sessions <n>', 'live sessions that make the round due', positiveInt, 16)
  .option('--clients <n>', 'socket.io clients running those sessions at once', positiveInt, 4)
  .option('--steps <n>', "the round's training steps", positiveInt, 2)
  .option('--gate-cases <n>', 'validation cases the gate compares on', positiveInt, 32)
  .option('--tolerance <x>', 'largest drop the gate accepts', Number, 0.02)
  .option('--seed <n>', 'seed of the cases, their sampling and the round', nonNegativeInt, 0)
  .option('--max-attempts <n>', 'attempts per live session', positiveInt, 4)
  .option('--max-tokens <n>', 'tokens per attempt at most (live sessions and rollouts)', positiveInt, 48)
  .option('--temperature <t>', 'sampling temperature of the live sessions', Number, 0.7)
  .option('--trainer-args <flags>', 'more `corgi trainer` flags for the round (space-separated)', '')
  .option('--data-dir <dir>', "the server's data directory, kept afterwards (default: a temporary one)")
  .option('--timeout-minutes <m>', 'give up on the cycle after this long', positiveInt, 120)
  .option('--json', 'print the result as JSON (the default output)')
  .parse()
  .opts<{
    policy: string;
    sessions: number;
    clients: number;
    steps: number;
    gateCases: number;
    tolerance: number;
    seed: number;
    maxAttempts: number;
    maxTokens: number;
    temperature: number;
    trainerArgs: string;
    dataDir?: string;
    timeoutMinutes: number;
  }>();
checkSessionOptions(o);
if (!(o.tolerance >= 0 && o.tolerance <= 1)) throw new Error('--tolerance: expected 0..1');

const log = benchLog('bench:cycle');

/**
 * The round: LoRA steps at the shapes the experiment trains SmolLM2 with (at `corgi trainer`'s own
 * learning rate), then the gate.
 */
const trainerArgs = [
  ...['--budget', 'steps', '--steps', String(o.steps), '--seed', String(o.seed)],
  ...['--prompts-per-step', '4', '--group-size', '4', '--epochs', '1', '--minibatch-size', '8'],
  ...['--temperature', '0.7', '--max-tokens', String(o.maxTokens)],
  ...['--skip-zero-advantage', '--gate-cases', String(o.gateCases), '--tolerance', String(o.tolerance)],
  ...o.trainerArgs.split(/\s+/).filter(Boolean),
].join(' ');

/** The server's data directory: the models of the user's store linked in, nothing else shared. */
function prepareDataDir(): { dir: string; remove: () => void } {
  const dir = o.dataDir ? resolve(o.dataDir) : mkdtempSync(join(os.tmpdir(), 'corgi-bench-cycle-'));
  mkdirSync(dir, { recursive: true });
  const store = resolve(process.env.CORGI_DATA_DIR || 'data', 'models');
  try {
    symlinkSync(store, join(dir, 'models'), 'dir');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
  }
  return { dir, remove: () => (o.dataDir ? undefined : rmSync(dir, { recursive: true, force: true })) };
}

interface VersionRow {
  version: string;
  status: string;
  parentVersion: string | null;
  metrics: Record<string, unknown> | null;
  eval: { passed: boolean; reason: string | null; comparisons: unknown } | null;
}

async function getJson<T>(server: ServeProcess, path: string): Promise<T> {
  const response = await fetch(`${server.url}${path}`);
  if (!response.ok) throw new Error(`GET ${path}: ${response.status} ${await response.text()}`);
  return (await response.json()) as T;
}

const seconds = (ms: number) => round(ms / 1000, 1);

async function main(): Promise<void> {
  const loadAtStart = os.loadavg()[0];
  const deadline = Date.now() + o.timeoutMinutes * 60_000;
  const remaining = () => Math.max(1_000, deadline - Date.now());
  const cases = buildCases(o.sessions + 1, {
    seed: o.seed,
    temperature: o.temperature,
    maxTokens: o.maxTokens,
  });
  const payloads = cases.map((item) => sessionPayload(item, o.maxAttempts));
  const data = prepareDataDir();
  // Plain log lines: the bench follows the round by the trainer's lines.
  const env: NodeJS.ProcessEnv = { ...process.env, CORGI_DATA_DIR: data.dir, CORGI_LOG_FORMAT: 'text' };
  delete env.DATABASE_URL;
  delete env.CORGI_TRAINER;
  let server: ServeProcess | undefined;
  const clients = startClientsWorker();
  try {
    log(`data dir ${data.dir}; starting corgi serve --policy ${o.policy} with its background trainer`);
    server = await startServe(
      [
        ...['--policy', o.policy, ...NO_RATE_LIMITS],
        ...['--trainer-min-sessions', String(o.sessions), '--trainer-poll-seconds', '2'],
        ...['--trainer-args', trainerArgs],
      ],
      env,
    );
    const before = await getJson<{ version: string }>(server, '/v1/policy');
    log(`server on ${server.url}, serving ${before.version}`);
    await server.waitFor(/\[trainer\] background trainer on/, 60_000);

    log(`traffic: ${o.sessions} sessions, ${o.clients} at a time`);
    const trafficStart = Date.now();
    const traffic = await runClients(clients, {
      url: server.url,
      payloads: payloads.slice(0, o.sessions),
      clients: o.clients,
      timeoutMs: SESSION_TIMEOUT_MS,
      bench: 'bench:cycle traffic',
    });
    const trafficEnd = trafficStart + traffic.wallMs;
    const failed = traffic.records.filter((r) => r.error !== undefined);
    if (failed.length > 0) throw new Error(`${failed.length} sessions failed: ${failed[0].error}`);

    log('waiting for the round');
    await server.waitFor(/\[trainer\] round started/, remaining());
    const roundStart = Date.now();
    log('round started: training, then the gate');
    // The round's own progress (its child's lines, relayed by the server), every 10 s when it moved.
    let shown = '';
    const progress = setInterval(() => {
      const lines = (server as ServeProcess).stderr().match(/^.*\[trainer \d+\].*$/gm) ?? [];
      const last = lines.at(-1)?.replace(/^.*\[trainer \d+\] /, '') ?? '';
      if (!last || last === shown) return;
      shown = last;
      log(`round: ${last}`);
    }, 10_000);
    const verdict = await server
      .waitFor(/\[trainer\] (promoted (\S+)|the eval gate refused (\S+): (.*)|round failed.*)/, remaining())
      .finally(() => clearInterval(progress));
    const decided = Date.now();
    const candidate = verdict[2] ?? verdict[3];
    if (!candidate) throw new Error(`the round did not end in a decision: ${verdict[0]}`);
    const decision = verdict[2] ? 'promoted' : 'refused';
    log(`${decision}: ${candidate}`);

    let swapped = decided;
    if (decision === 'promoted') {
      while ((await getJson<{ version: string }>(server, '/v1/policy')).version !== candidate) {
        if (Date.now() > deadline) throw new Error(`the server did not swap to ${candidate}`);
        await new Promise((done) => setTimeout(done, 100));
      }
      swapped = Date.now();
    }
    const { versions } = await getJson<{ versions: VersionRow[] }>(
      server,
      '/v1/admin/policy-versions?limit=10',
    );
    const row = versions.find((v) => v.version === candidate);
    const after = await runClients(clients, {
      url: server.url,
      payloads: payloads.slice(o.sessions),
      clients: 1,
      timeoutMs: SESSION_TIMEOUT_MS,
      bench: 'bench:cycle after',
    });
    const served = await getJson<{ version: string }>(server, '/v1/policy');
    const metrics = row?.metrics ?? {};
    const livePrompts = /train: (\d+) logged live prompts join the pool/.exec(server.stderr());
    const pick = (...keys: string[]) => Object.fromEntries(keys.map((key) => [key, metrics[key] ?? null]));

    const report = {
      bench: 'cycle',
      ...machineReport(loadAtStart),
      server: `corgi serve --policy ${o.policy}, embedded PGlite, its background trainer on (nice 19 child)`,
      config: {
        sessions: o.sessions,
        clients: o.clients,
        max_attempts: o.maxAttempts,
        max_tokens: o.maxTokens,
        temperature: o.temperature,
        seed: o.seed,
        trainer_args: trainerArgs,
      },
      traffic_s: seconds(traffic.wallMs),
      round_wait_s: seconds(roundStart - trafficEnd),
      round_s: seconds(decided - roundStart),
      swap_s: seconds(swapped - decided),
      cycle_s: seconds(swapped - trafficStart),
      live_before: before.version,
      candidate,
      decision,
      gate: row?.eval ?? null,
      live_prompts_in_pool: livePrompts ? Number(livePrompts[1]) : 0,
      training: pick('step', 'sessions', 'sessions_trained', 'pg_tokens_total', 'reward', 'success_at', 'kl'),
      sessions_after: after.records.filter((r) => r.error === undefined).length,
      served_after: served.version,
    };
    process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
  } catch (error) {
    if (server) log(`server stderr (tail):\n${stderrTail(server)}`);
    throw error;
  } finally {
    await clients.terminate();
    await stopGently(server);
    data.remove();
  }
}

await main();
