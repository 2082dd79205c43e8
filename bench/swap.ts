/**
 * `npm run bench:swap`: hot swap of LoRA adapters on llama.cpp under load. Prints JSON on stdout;
 * progress goes to stderr.
 *
 *   npm run bench:swap -- [--model builtin|smollm2|both] [--swaps 6] [--sessions 8] [--max-tokens 24]
 *                         [--context-size N] [--spare-context on|off]
 *
 * For each model one process serves the base (the built-in model converted to GGUF, or
 * SmolLM2-135M-Instruct from the store) exactly as `corgi serve` does (`servingPolicyLoader`,
 * `PolicyRegistry`, `followPromotions` on PostgreSQL — TEST_DATABASE_URL or the tests' local server,
 * in a schema of its own, dropped afterwards), with its spare context (`--spare-context`, default
 * as `corgi serve`: CORGI_SPARE_CONTEXT, else on). `--sessions` sessions run back to back through
 * `runSession` (three attempts each, a constraint never met, so every session retries), and
 * `--swaps` times a fresh LoRA adapter version (seeded random weights, written by the product's
 * adapter writer, `loraGgufContent`) is promoted through `PolicyFollower.promote`, the call behind
 * `POST /v1/admin/promote`. Around each promotion:
 *
 * | field | meaning |
 * |-------|---------|
 * | `promote_to_ready_ms` | `promote` called → it resolved: the version recorded live and swapped in (load, database, swap) |
 * | `load_ms` | of that, the loader: checks, the new context with the adapter (or the spare, the adapter applied) |
 * | `from_spare` | promotions whose policy started on the spare context |
 * | `promote_to_next_attempt_ms` | `promote` called → `attempt:start` on the new version of a session started the moment promote resolved |
 * | `promote_to_next_first_token_ms` | … → that attempt's first token |
 * | `running_next_attempt_ms` | `promote` called → the first `attempt:start` on the new version of each session already running (it first finishes the attempt it is in) |
 * | `running_attempt_left_ms` | `promote` called → the end of the attempt each running session was in: the part of the above a swap cannot shorten |
 * | `in_flight_at_promote` / `in_flight_completed` | attempts generating when promote was called / of those, ended without error on the version they started on |
 * | `new_version_used` | the new session, and every attempt started after promote resolved, ran on the new version |
 * | `old_disposed_after_last_attempt` | swapped-out versions disposed (context freed, or kept as the spare), each only when no attempt was generating on it |
 * | `failures` | sessions that ended with an error part |
 */

import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import { join, resolve } from 'node:path';
import { Command, Option } from 'commander';
import { parseConstraints } from '../src/checkers/registry.ts';
import { runtimeSettingsFromEnv, spareContextFromEnv } from '../src/cli/command-env.ts';
import { silentLogger } from '../src/common/logger.ts';
import { configureRuntime } from '../src/common/runtime-settings.ts';
import { openDatabase } from '../src/db/database.ts';
import { expandStoreName } from '../src/model/store/resolve-policy-spec.ts';
import { BUILTIN_MODEL_DIR } from '../src/policy/builtin-model.ts';
import type { LlamaCppPolicy } from '../src/policy/llama-cpp-policy.ts';
import { defaultThreads } from '../src/policy/llama-runtime.ts';
import { type DisposablePolicy, PolicyRegistry } from '../src/policy/policy-registry.ts';
import { servingPolicyLoader } from '../src/policy/serving-loader.ts';
import { followPromotions } from '../src/promotion/follower.ts';
import { runSession, type SessionPart } from '../src/session/session-runner.ts';
import { preloadTextModels } from '../src/text/preload.ts';
import { writeRandomLoraAdapter } from '../test/support/lora-adapter-gguf.ts';
import { LOCAL_POSTGRES_URL, machineReport, positiveInt } from './serve-harness.ts';
import { summarize } from './stats.ts';

/** Promote → the next attempt on the new version, for an adapter swap. */
const TARGET_MS = 200;
const ATTEMPTS = 3;
const SMOLLM2 = 'smollm2-135m-instruct';

const program = new Command('bench/swap.ts')
  .addOption(
    new Option(
      '--model <model>',
      'the base to swap adapters on (both: builtin, then smollm2 when in the store)',
    )
      .choices(['builtin', 'smollm2', 'both'])
      .default('both'),
  )
  .option('--swaps <n>', 'promotions per model', positiveInt, 6)
  .option('--sessions <n>', 'sessions running at once (and llama.cpp sequences)', positiveInt, 8)
  .option('--max-tokens <n>', 'tokens per attempt at most', positiveInt, 24)
  .option('--context-size <n>', "tokens per sequence (default: the engine's, as corgi serve)", positiveInt)
  .addOption(
    new Option('--spare-context <on|off>', 'keep a spare context for the next swap (default as corgi serve)')
      .choices(['on', 'off'])
      .default(spareContextFromEnv() ? 'on' : 'off'),
  )
  .option('--json', 'print the result as JSON (the default output)')
  .parse();
const o = program.opts<{
  model: 'builtin' | 'smollm2' | 'both';
  swaps: number;
  sessions: number;
  maxTokens: number;
  contextSize?: number;
  spareContext: 'on' | 'off';
}>();
const log = (line: string) => process.stderr.write(`[bench:swap] ${line}\n`);
const now = () => performance.now();

/** One promotion, times in ms from the promote call. */
interface SwapRow {
  version: string;
  previous: string;
  ready: number;
  load: number;
  nextAttempt: number;
  firstToken: number;
  newVersionUsed: boolean;
  runningNext: number[];
  attemptLeft: number[];
}

interface SessionState {
  /** The attempt generating now: its version and start, or null between attempts. */
  current: { version: string; startedAt: number } | null;
  /** Every attempt:start and attempt:end, timed. */
  events: { type: 'start' | 'end'; version: string; at: number }[];
}

async function benchModel(model: 'builtin' | 'smollm2', root: string) {
  const dataDir = resolve(process.env.CORGI_DATA_DIR ?? 'data');
  const cacheDir = join(root, 'gguf-cache');
  const engine = {
    sequences: o.sessions,
    spareContext: o.spareContext === 'on',
    ...(o.contextSize ? { contextSize: o.contextSize } : {}),
  };
  const baseSpec = model === 'builtin' ? BUILTIN_MODEL_DIR : expandStoreName(SMOLLM2, { dataDir });
  log(`[${model}] loading the base ${baseSpec}`);
  const base = (await servingPolicyLoader({ cacheDir, ...engine })(baseSpec, 'base')) as LlamaCppPolicy;
  const basePath = base.modelPath;

  const loadMs = new Map<string, number>();
  const fromSpare = new Set<string>();
  const disposals = new Map<string, { at: number; generating: number }>();
  /** The loaded policy, its dispose noted (when, and how many attempts were still generating). */
  const observed = (policy: LlamaCppPolicy): DisposablePolicy => ({
    version: policy.version,
    generate: (messages, options) => policy.generate(messages, options),
    measurePrompt: (messages, options) => policy.measurePrompt(messages, options),
    dispose: async () => {
      disposals.set(policy.version, { at: now(), generating: policy.generating });
      await policy.dispose();
    },
  });
  const loader = servingPolicyLoader({ cacheDir, baseModelPath: basePath, ...engine });
  const load = async (dir: string, version: string) => {
    const started = now();
    const policy = await loader(dir, version);
    loadMs.set(version, now() - started);
    if (policy.contextFromSpare) fromSpare.add(version);
    return observed(policy);
  };

  const versions: { version: string; dir: string }[] = [];
  for (let i = 1; i <= o.swaps; i++) {
    const dir = join(root, model, `adapter-${i}`);
    mkdirSync(dir, { recursive: true });
    await writeRandomLoraAdapter(basePath, join(dir, 'adapter.gguf'), { seed: 1000 * i + 7 });
    versions.push({ version: `${model}-adapter-${i}`, dir });
  }

  const schema = `corgi_bench_swap_${randomBytes(4).toString('hex')}`;
  const db = await openDatabase({
    url: process.env.TEST_DATABASE_URL ?? LOCAL_POSTGRES_URL,
    schema,
    poolSize: 4,
  });
  const registry = new PolicyRegistry(observed(base));
  const follower = await followPromotions({ db, registry, load, pollMs: 0, logger: silentLogger });

  const constraints = parseConstraints([
    { id: 'length_constraints:number_words', kwargs: { num_words: 400, relation: 'at least' } },
  ]);
  const request = (n: number, maxAttempts: number) => ({
    prompt: `Write a sentence about lantern number ${n}.`,
    constraints,
    maxAttempts,
    sampling: { temperature: 0, maxTokens: o.maxTokens },
  });
  let failures = 0;
  let stop = false;
  const states: SessionState[] = Array.from({ length: o.sessions }, () => ({ current: null, events: [] }));
  const track = (state: SessionState, part: SessionPart) => {
    if (part.type === 'attempt:start') {
      state.current = { version: part.policyVersion, startedAt: now() };
      state.events.push({ type: 'start', version: part.policyVersion, at: now() });
    } else if (part.type === 'attempt:end') {
      state.current = null;
      state.events.push({ type: 'end', version: part.policyVersion, at: now() });
    } else if (part.type === 'error') {
      failures++;
      log(`[${model}] session error: ${part.code}: ${part.message}`);
    }
  };
  let n = 0;
  const running = states.map(async (state) => {
    while (!stop)
      for await (const part of runSession(request(++n, ATTEMPTS), { policy: registry })) track(state, part);
  });

  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
  const until = async (condition: () => boolean) => {
    while (!condition()) await sleep(2);
  };
  // Warm-up: every session past its first attempt, so the base has decoded at full batch.
  await until(() => states.every((s) => s.events.filter((e) => e.type === 'end').length >= 1));

  const rows: SwapRow[] = [];
  let inFlightAtPromote = 0;
  let inFlightCompleted = 0;
  for (const { version, dir } of versions) {
    // Promote while every session is generating.
    await until(() => states.every((s) => s.current !== null));
    await sleep(50);
    const before = registry.version;
    const inFlight = states.map((s) => s.current && { ...s.current, from: s.events.length });
    inFlightAtPromote += inFlight.filter(Boolean).length;
    const t0 = now();
    await follower.promote({ checkpoint: dir, version });
    const ready = now() - t0;

    // A session started the moment the promotion resolved: its first attempt.
    let nextAttempt = Number.NaN;
    let firstToken = Number.NaN;
    let nextVersion = '';
    for await (const part of runSession(request(++n, 1), { policy: registry })) {
      if (part.type === 'attempt:start') {
        nextAttempt = now() - t0;
        nextVersion = part.policyVersion;
      } else if (part.type === 'token' && Number.isNaN(firstToken)) firstToken = now() - t0;
      else if (part.type === 'error') failures++;
    }
    // Every running session's next attempt on the new version (one started while the promotion was
    // under way may still be on the old one: swaps land between attempts).
    await until(() => states.every((s) => s.events.some((e) => e.type === 'start' && e.version === version)));
    const runningNext = states.map((s) => s.events.find((e) => e.type === 'start' && e.version === version)!);
    const startedAfterReady = states.flatMap((s) =>
      s.events.filter((e) => e.type === 'start' && e.at >= t0 + ready),
    );
    const attemptLeft = states.flatMap((s, i) =>
      inFlight[i] ? [s.events.slice(inFlight[i].from).find((e) => e.type === 'end')!.at - t0] : [],
    );
    inFlightCompleted += states.filter((s, i) => {
      const end = inFlight[i] && s.events.slice(inFlight[i].from).find((e) => e.type === 'end');
      return end && end.version === inFlight[i]!.version;
    }).length;
    rows.push({
      version,
      ready,
      load: loadMs.get(version)!,
      nextAttempt,
      firstToken,
      newVersionUsed: nextVersion === version && startedAfterReady.every((e) => e.version === version),
      runningNext: runningNext.map((e) => e.at - t0),
      attemptLeft,
      previous: before,
    });
    log(
      `[${model}] ${before} → ${version}: ready ${ready.toFixed(0)} ms (load ${loadMs.get(version)!.toFixed(0)}), ` +
        `new session's attempt ${nextAttempt.toFixed(0)} ms, first token ${firstToken.toFixed(0)} ms`,
    );
  }
  stop = true;
  await Promise.all(running);
  await follower.close();
  await registry.close();

  // Each swapped-out version: disposed, and only when no attempt was generating on it.
  const swappedOut = rows.map((row) => row.previous);
  const disposedClean = swappedOut.filter((version) => disposals.get(version)?.generating === 0).length;
  await db.pool.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`).catch(() => {});
  await db.close();

  const all = (pick: (row: SwapRow) => number | number[]) => rows.flatMap(pick);
  return {
    model,
    base: basePath,
    sequences: o.sessions,
    context_size: base.contextSize,
    threads: defaultThreads(),
    max_tokens: o.maxTokens,
    spare_context: engine.spareContext,
    swaps: rows.length,
    from_spare: fromSpare.size,
    promote_to_ready_ms: summarize(all((r) => r.ready)),
    load_ms: summarize(all((r) => r.load)),
    promote_to_next_attempt_ms: summarize(all((r) => r.nextAttempt)),
    promote_to_next_first_token_ms: summarize(all((r) => r.firstToken)),
    running_next_attempt_ms: summarize(all((r) => r.runningNext)),
    running_attempt_left_ms: summarize(all((r) => r.attemptLeft)),
    new_version_used: rows.every((r) => r.newVersionUsed),
    in_flight_at_promote: inFlightAtPromote,
    in_flight_completed: inFlightCompleted,
    old_disposed_after_last_attempt: `${disposedClean}/${swappedOut.length}`,
    failures,
    target_next_attempt_ms: TARGET_MS,
  };
}

async function main(): Promise<void> {
  configureRuntime(runtimeSettingsFromEnv());
  preloadTextModels();
  const loadAtStart = os.loadavg()[0];
  const root = mkdtempSync(join(os.tmpdir(), 'corgi-bench-swap-'));
  const models: ('builtin' | 'smollm2')[] = o.model === 'both' ? ['builtin', 'smollm2'] : [o.model];
  const results = [];
  try {
    for (const model of models) {
      if (model === 'smollm2' && o.model === 'both') {
        const dataDir = resolve(process.env.CORGI_DATA_DIR ?? 'data');
        if (expandStoreName(SMOLLM2, { dataDir }) === SMOLLM2) {
          log(`[smollm2] not in the store (corgi pull ${SMOLLM2}): skipped`);
          continue;
        }
      }
      results.push(await benchModel(model, root));
    }
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
  process.stdout.write(`${JSON.stringify({ results, machine: machineReport(loadAtStart) }, null, 2)}\n`);
}

await main();
