/**
 * A smoke run of `npm run bench:load` (bench/load.ts) on a tiny model: a few seconds, a few
 * clients, so the bench itself keeps working. The measured run uses models/base (docs/benchmarks.md).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { saveTinyCheckpoint, tinyModel } from '../policy/tiny-policy.ts';
import { runNode } from '../support/run-corgi.ts';

const RUN_TS = fileURLToPath(new URL('../../bin/run-ts.js', import.meta.url));
const LOAD = fileURLToPath(new URL('../../bench/load.ts', import.meta.url));

let root: string;
let policy: string;
beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'corgi-bench-load-test-'));
  // Room for the test split's longest instructions.
  const model = tinyModel(2, { max_position_embeddings: 2048 });
  policy = await saveTinyCheckpoint(model, root, 'tiny');
  model.dispose();
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

const runBench = (args: string[]) =>
  runNode([RUN_TS, LOAD, ...args], { env: { ...process.env, CORGI_BACKEND: 'wasm', DATABASE_URL: '' } });

it('runs sessions and checks against a real server, and reports them as JSON', async () => {
  const run = await runBench([
    ...['--policy', policy, '--db', 'embedded'],
    ...['--seconds', '2', '--warmup-seconds', '1', '--clients', '4', '--check-connections', '2'],
    ...['--max-attempts', '2', '--max-tokens', '4'],
  ]);
  expect(run.code, run.stderr).toBe(0);
  const report = JSON.parse(run.stdout);
  expect(report).toMatchObject({
    bench: 'load',
    errors: 0,
    config: { seconds: 2, clients: 4, check_connections: 2 },
    targets: { errors: { met: true } },
  });
  expect(report.sessions_completed).toBeGreaterThan(0);
  expect(report.checks_completed).toBeGreaterThan(0);
  expect(report.session_ms.p99).toBeGreaterThan(0);
  expect(report.check_ms.p99).toBeGreaterThanOrEqual(0);
  for (const phase of ['before', 'after'])
    expect(report.server_memory[phase].rss_mb).toBeGreaterThan(report.server_memory[phase].heap_used_mb);
  expect(typeof report.server_memory.growth.rss).toBe('number');
  // Progress went to stderr.
  expect(run.stderr).toMatch(/\[bench:load\] server on http:\/\/127\.0\.0\.1:\d+/);
}, 180_000);
