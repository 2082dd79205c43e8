/**
 * `npm run bench:cli`: how long `corgi --help` and `corgi check` take to start, from the built
 * JavaScript (what `npx corgi` runs after `npm ci`) and from the TypeScript sources through tsx (what
 * it falls back to when dist/ is missing or older than src/). Prints JSON; progress goes to stderr.
 *   --runs N   runs per command and route (default 5); the median and the fastest are reported
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const TARGET_MS = 1_000;
const BIN = fileURLToPath(new URL('../bin/corgi.js', import.meta.url));
const BUILT = fileURLToPath(new URL('../dist/cli/main.js', import.meta.url));
const CHECK_INPUT = JSON.stringify({
  response: 'The dog ran, then slept.',
  constraints: [{ id: 'punctuation:no_comma' }, { id: 'keywords:existence', kwargs: { keywords: ['dog'] } }],
});

const { values } = parseArgs({
  options: { runs: { type: 'string', default: '5' }, json: { type: 'boolean' } },
});
const runs = Number(values.runs);
if (!Number.isInteger(runs) || runs < 1)
  throw new Error(`--runs: expected a positive integer, got "${values.runs}"`);

/** Wall-clock milliseconds of one `node bin/corgi.js args`; throws when the command fails. */
function timeOnce(args: string[], input: string, fromSource: boolean): number {
  const start = process.hrtime.bigint();
  const result = spawnSync(process.execPath, [BIN, ...args], {
    input,
    env: { ...process.env, CORGI_FROM_SOURCE: fromSource ? '1' : '0' },
    encoding: 'utf8',
  });
  const ms = Number(process.hrtime.bigint() - start) / 1e6;
  if (result.status !== 0)
    throw new Error(`corgi ${args.join(' ')} exited ${result.status}: ${result.stderr}`);
  return ms;
}

function measure(args: string[], input: string, fromSource: boolean) {
  const times: number[] = [];
  for (let i = 0; i < runs; i++) times.push(timeOnce(args, input, fromSource));
  times.sort((a, b) => a - b);
  const round = (ms: number) => Math.round(ms);
  return { median_ms: round(times[Math.floor(times.length / 2)]), min_ms: round(times[0]), runs };
}

/** The newest modification time under `dir`, in ms (bin/corgi.js's freshness rule). */
function newestMtime(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = `${dir}/${entry.name}`;
    newest = Math.max(newest, entry.isDirectory() ? newestMtime(path) : statSync(path).mtimeMs);
  }
  return newest;
}

const SRC = fileURLToPath(new URL('../src', import.meta.url));
const built = existsSync(BUILT) && statSync(BUILT).mtimeMs >= newestMtime(SRC);
const report: Record<string, unknown> = {
  bench: 'cli-startup',
  target_ms: TARGET_MS,
  node: process.version,
  load_average_1m: Number(os.loadavg()[0].toFixed(2)),
  dist_fresh: built,
  ...(built
    ? {}
    : { note: 'dist/ missing or older than src/: run `npm run build` to measure the built route' }),
};
for (const [name, args, input] of [
  ['help', ['--help'], ''],
  ['check', ['check'], CHECK_INPUT],
] as const) {
  process.stderr.write(`bench: corgi ${args.join(' ')} …\n`);
  const fromSource = measure([...args], input, true);
  const fromBuild = built ? measure([...args], input, false) : null;
  report[name] = {
    built: fromBuild,
    source_tsx: fromSource,
    meets_target: fromBuild ? fromBuild.median_ms < TARGET_MS : null,
  };
}
process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
