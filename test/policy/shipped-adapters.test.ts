/**
 * The two SmolLM2 adapters the repository ships (models/smollm2-corgi, models/smollm2-single-turn:
 * README's experiment): each names its base by store name and sha256 and verifies against its
 * checksums, `corgi eval` evaluates it, and a running server promotes it and answers with it.
 */
import { mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { sha256OfFile, verifyChecksums } from '../../src/model/checkpoint.ts';
import { readBaseModelRef } from '../../src/policy/adapter-base.ts';
import { corgiEnv, startServe, stopGently } from '../support/processes.ts';
import { runCorgi } from '../support/run-corgi.ts';
import { noteSkip, smollm2GgufPath } from '../support/smollm2.ts';

const GGUF = smollm2GgufPath();
noteSkip('shipped SmolLM2 adapters', GGUF);
const ADAPTERS = ['smollm2-corgi', 'smollm2-single-turn'];
const MINUTES = 60_000;

describe.skipIf(!GGUF)('the shipped SmolLM2 adapters', () => {
  const root = mkdtempSync(join(tmpdir(), 'corgi-shipped-adapters-'));
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  it.each(ADAPTERS)('%s names the store model it was trained on and verifies', async (name) => {
    const dir = resolve('models', name);
    await verifyChecksums(dir);
    const base = readBaseModelRef(dir);
    expect(base.name).toBe('smollm2-135m-instruct');
    expect(base.sha256).toBe(await sha256OfFile(GGUF!));
  });

  it.each(ADAPTERS)(
    '%s evaluates with corgi eval',
    async (name) => {
      const cases = join(root, `${name}.cases.jsonl`);
      writeFileSync(
        cases,
        [
          {
            id: 'no-comma',
            prompt: 'Describe a walk in the park.',
            constraints: [{ id: 'punctuation:no_comma' }],
          },
          { id: 'sentiment', constraints: [{ id: 'corgi:sentiment', kwargs: { label: 'positive' } }] },
        ]
          .map((line) => JSON.stringify(line))
          .join('\n'),
      );
      const run = await runCorgi(
        [
          'eval',
          '--policy',
          `models/${name}`,
          '--cases',
          cases,
          '--attempts',
          '2',
          '--max-tokens',
          '24',
          '--json',
        ],
        { env: { ...process.env, CORGI_LLAMA_THREADS: '1' } },
      );
      expect(run.code, run.stderr).toBe(0);
      const report = JSON.parse(run.stdout);
      expect(report).toMatchObject({ policy: name, attempts: 2, n: 2 });
      expect(report.success_at).toHaveLength(2);
    },
    5 * MINUTES,
  );

  it(
    'a server on the base promotes smollm2-corgi and answers with it',
    async () => {
      // The server's own data directory; the store's models are linked in.
      const dataDir = mkdtempSync(join(root, 'data-'));
      symlinkSync(dirname(dirname(GGUF!)), join(dataDir, 'models'), 'dir');
      const server = await startServe(
        ['--policy', 'smollm2-135m-instruct', '--no-trainer', '--host', '127.0.0.1'],
        corgiEnv(dataDir, { CORGI_LLAMA_THREADS: '1', CORGI_SPARE_CONTEXT: 'off' }),
        { timeoutMs: 3 * MINUTES },
      );
      try {
        const promoted = await fetch(`${server.url}/v1/admin/promote`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ checkpoint: resolve('models/smollm2-corgi') }),
        });
        expect(promoted.status, await promoted.clone().text()).toBe(200);
        expect(await promoted.json()).toMatchObject({
          version: 'smollm2-corgi',
          previous: 'smollm2-135m-instruct',
          serving: 'smollm2-corgi',
        });
        const session = await fetch(`${server.url}/v1/sessions`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({
            prompt: 'Write one sentence about a dog.',
            constraints: [{ id: 'punctuation:no_comma' }],
            maxAttempts: 1,
            sampling: { maxTokens: 24, seed: 1 },
          }),
        });
        expect(session.status).toBe(200);
        const body = (await session.json()) as { turns: { policyVersion: string; text: string }[] };
        expect(body.turns).toHaveLength(1);
        expect(body.turns[0]).toMatchObject({ policyVersion: 'smollm2-corgi' });
        expect(body.turns[0]!.text.trim().length).toBeGreaterThan(0);
      } finally {
        await stopGently(server);
      }
    },
    8 * MINUTES,
  );
});
