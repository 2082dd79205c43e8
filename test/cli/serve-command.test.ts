/**
 * `corgi serve` as a user runs it: a real process with a checkpoint directory and the embedded
 * database (no DATABASE_URL), answering a session over HTTP.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { saveTinyCheckpoint, tinyModel } from '../policy/tiny-policy.ts';
import { corgiEnv, type ServeProcess, startServe, stopGently } from '../support/processes.ts';
import { runCorgi } from '../support/run-corgi.ts';

describe('corgi serve', () => {
  const root = mkdtempSync(join(tmpdir(), 'corgi-serve-'));
  let server: ServeProcess;

  beforeAll(async () => {
    const model = tinyModel(3);
    const policyDir = await saveTinyCheckpoint(model, root, 'tiny-v1');
    model.dispose();
    const env = corgiEnv(join(root, 'data'), { CORGI_BACKEND: 'wasm' });
    server = await startServe(['--policy', policyDir], env, { timeoutMs: 60_000 });
  }, 90_000);

  afterAll(async () => {
    await stopGently(server);
    rmSync(root, { recursive: true, force: true });
  });

  it('serves the model on the embedded database and names both at start-up', async () => {
    expect(server.stderr()).toMatch(/policy tiny-v1, database embedded \(PGlite\)/);
    const response = await fetch(`${server.url}/v1/sessions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        prompt: 'Write about a dog.',
        constraints: [{ id: 'punctuation:no_comma' }],
        maxAttempts: 2,
        sampling: { maxTokens: 8, seed: 1 },
      }),
    });
    expect(response.status).toBe(200);
    const body = await response.json();
    expect(body.turns.length).toBeGreaterThanOrEqual(1);
    expect(body.turns[0].policyVersion).toBe('tiny-v1');
    const stored = await (await fetch(`${server.url}/v1/sessions/${body.sessionId}`)).json();
    expect(stored.turns[1]).toMatchObject({ role: 'assistant', policyVersion: 'tiny-v1' });
    expect(stored.turns[1].tokenIds.length).toBeGreaterThan(0);
    expect(stored.turns[1].logprobs).toHaveLength(stored.turns[1].tokenIds.length);
    expect((await fetch(`${server.url}/`)).headers.get('content-type')).toMatch(/text\/html/);
  });

  it('logs its start-up as JSON lines when asked to, the backend notice included', async () => {
    expect(server.stderr()).toMatch(/^\[backend\] tensorflow\.js backend wasm/m);
    const json = await startServe(
      ['--policy', join(root, 'tiny-v1'), '--no-trainer'],
      corgiEnv(join(root, 'data-json'), { CORGI_BACKEND: 'wasm', CORGI_LOG_FORMAT: 'json' }),
      { timeoutMs: 60_000 },
    );
    try {
      const lines = json.stderr().trim().split('\n');
      const records = lines.map(
        (line) => JSON.parse(line) as { level: string; component?: string; msg: string },
      );
      expect(records).toContainEqual(
        expect.objectContaining({
          level: 'info',
          component: 'backend',
          msg: expect.stringMatching(/^tensorflow\.js backend wasm/),
        }),
      );
    } finally {
      await stopGently(json);
    }
  }, 90_000);

  it('refuses a policy directory without a checkpoint with a clear error', async () => {
    const missing = await runCorgi(['serve', '--port', '0', '--policy', join(root, 'nope')], {
      env: { ...process.env, CORGI_DATA_DIR: join(root, 'data2') },
    });
    expect(missing.code).not.toBe(0);
    expect(missing.stderr).toMatch(/nope/);
  });

  it('refuses a sequence count llama.cpp cannot serve, naming the flag', async () => {
    const bad = await runCorgi(['serve', '--port', '0', '--sequences', '0'], {
      env: { ...process.env, CORGI_DATA_DIR: join(root, 'data3') },
    });
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toMatch(/--sequences: expected an integer in 1\.\.256, got "0"/);
  });
});
