/**
 * A smoke run of `npm run bench:cycle` (bench/cycle.ts) on a tiny model: three live sessions make
 * the server's own background trainer run a one-step round, the gate (tolerance 1) passes it, and
 * the server swaps to it. The measured run uses SmolLM2 (docs/benchmarks.md).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { saveTinyCheckpoint, tinyModel } from '../policy/tiny-policy.ts';
import { runNode } from '../support/run-corgi.ts';

const RUN_TS = fileURLToPath(new URL('../../bin/run-ts.js', import.meta.url));
const CYCLE = fileURLToPath(new URL('../../bench/cycle.ts', import.meta.url));

let root: string;
let policy: string;
beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'corgi-bench-cycle-test-'));
  // Room for the test split's longest instructions.
  const model = tinyModel(4, { max_position_embeddings: 2048 });
  policy = await saveTinyCheckpoint(model, root, 'tiny-live');
  model.dispose();
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

it('times traffic → round → gate → promotion → swap on a real server and reports it as JSON', async () => {
  const run = await runNode(
    [
      ...[RUN_TS, CYCLE, '--policy', policy, '--sessions', '3', '--clients', '3', '--steps', '1'],
      ...['--gate-cases', '2', '--tolerance', '1', '--max-attempts', '2', '--max-tokens', '4'],
      ...[
        '--trainer-args',
        '--lora-r 2 --pool-size 8 --tasks word_count --prompts-per-step 2 --group-size 2',
      ],
      ...['--timeout-minutes', '8'],
    ],
    { env: { ...process.env, CORGI_BACKEND: 'wasm', CORGI_LLAMA_THREADS: '1' } },
  );
  expect(run.code, run.stderr).toBe(0);
  const report = JSON.parse(run.stdout);
  expect(report).toMatchObject({
    bench: 'cycle',
    live_before: 'tiny-live',
    decision: 'promoted',
    gate: { passed: true },
    training: { step: 1 },
    sessions_after: 1,
  });
  expect(report.candidate).toMatch(/^corgi-\d{8}T\d{6}$/);
  // The session after the cycle ran on the promoted version.
  expect(report.served_after).toBe(report.candidate);
  expect(report.live_prompts_in_pool).toBe(3);
  for (const phase of ['traffic_s', 'round_s', 'swap_s'])
    expect(report[phase], phase).toBeGreaterThanOrEqual(0);
  expect(report.cycle_s).toBeGreaterThanOrEqual(report.round_s);
  expect(run.stderr).toMatch(/\[bench:cycle\] promoted: corgi-/);
}, 600_000);
