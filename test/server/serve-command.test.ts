/**
 * `corgi serve` as a user runs it: a real process with a checkpoint directory and the embedded
 * database (no DATABASE_URL), answering a session over HTTP.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { saveTinyCheckpoint, tinyModel } from '../policy/tiny-policy.ts';

const BIN = fileURLToPath(new URL('../../bin/corgi.js', import.meta.url));

describe('corgi serve', () => {
  const root = mkdtempSync(join(tmpdir(), 'corgi-serve-'));
  let child: ChildProcess;
  let url: string;
  let stderr = '';

  beforeAll(async () => {
    const model = tinyModel(3);
    const policyDir = await saveTinyCheckpoint(model, root, 'tiny-v1');
    model.dispose();
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      CORGI_DATA_DIR: join(root, 'data'),
      CORGI_BACKEND: 'wasm',
    };
    delete env.DATABASE_URL;
    child = spawn(process.execPath, [BIN, 'serve', '--port', '0', '--policy', policyDir], { env });
    url = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`serve did not start:\n${stderr}`)), 60_000);
      child.stderr!.on('data', (chunk) => {
        stderr += chunk;
        const match = /CORGI Live on (http:\/\/\S+)/.exec(stderr);
        if (match) {
          clearTimeout(timer);
          resolve(match[1]);
        }
      });
      child.once('exit', (code) => reject(new Error(`serve exited with ${code}:\n${stderr}`)));
    });
  }, 90_000);

  afterAll(async () => {
    if (child && child.exitCode === null) {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      await exited;
    }
    rmSync(root, { recursive: true, force: true });
  });

  it('serves the model on the embedded database and names both at start-up', async () => {
    expect(stderr).toMatch(/policy tiny-v1, database embedded \(PGlite\)/);
    const response = await fetch(`${url}/v1/sessions`, {
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
    const stored = await (await fetch(`${url}/v1/sessions/${body.sessionId}`)).json();
    expect(stored.turns[1]).toMatchObject({ role: 'assistant', policyVersion: 'tiny-v1' });
    expect(stored.turns[1].tokenIds.length).toBeGreaterThan(0);
    expect(stored.turns[1].logprobs).toHaveLength(stored.turns[1].tokenIds.length);
    expect((await fetch(`${url}/`)).headers.get('content-type')).toMatch(/text\/html/);
  });

  it('refuses a policy directory without a checkpoint with a clear error', async () => {
    const missing = spawn(process.execPath, [BIN, 'serve', '--port', '0', '--policy', join(root, 'nope')], {
      env: { ...process.env, CORGI_DATA_DIR: join(root, 'data2') },
    });
    let err = '';
    missing.stderr.on('data', (chunk) => {
      err += chunk;
    });
    const code = await new Promise((resolve) => missing.once('exit', resolve));
    expect(code).not.toBe(0);
    expect(err).toMatch(/nope/);
  });
});
