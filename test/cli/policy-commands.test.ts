import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Command } from 'commander';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { registerBenchCommand } from '../../src/cli/bench-command.ts';
import { registerGenerateCommand } from '../../src/cli/generate-command.ts';
import { servingPolicyLoader } from '../../src/policy/serving-loader.ts';
import type { PolicyBenchOptions } from '../../src/training/lm/bench.ts';
import type { LoraTrainBenchOptions } from '../../src/training/lm/lora-bench.ts';
import { useBackend } from '../policy/helpers.ts';
import { saveTinyCheckpoint, tinyModel } from '../policy/tiny-policy.ts';
import { useDataDir } from '../support/data-dir.ts';

const root = mkdtempSync(join(tmpdir(), 'corgi-policy-commands-test-'));
useDataDir(join(root, 'data'));
let dir: string;
beforeAll(async () => {
  await useBackend('wasm');
  const model = tinyModel(6);
  dir = await saveTinyCheckpoint(model, root, 'base');
  model.dispose();
});
afterAll(() => rmSync(root, { recursive: true, force: true }));
afterEach(() => {
  vi.restoreAllMocks();
  process.exitCode = undefined;
});

/** Runs `corgi <args>` with only the policy commands, capturing stdout and stderr. */
async function run(
  args: string[],
  bench?: (o: PolicyBenchOptions) => Promise<never>,
  train?: (o: LoraTrainBenchOptions) => Promise<never>,
) {
  const program = new Command('corgi').exitOverride();
  registerGenerateCommand(program);
  registerBenchCommand(program, bench, undefined, train);
  const out: string[] = [];
  const err: string[] = [];
  vi.spyOn(process.stdout, 'write').mockImplementation((chunk) => out.push(String(chunk)) > 0);
  vi.spyOn(process.stderr, 'write').mockImplementation((chunk) => err.push(String(chunk)) > 0);
  await program.parseAsync(['node', 'corgi', ...args]);
  vi.restoreAllMocks();
  return { stdout: out.join(''), stderr: err.join(''), exitCode: process.exitCode };
}

describe('corgi generate', () => {
  it('streams the reply of the checkpoint to stdout', async () => {
    const { stdout, exitCode } = await run([
      'generate',
      '--policy',
      dir,
      '--max-tokens',
      '12',
      '--temperature',
      '0.9',
      '--seed',
      '4',
      'Use the word dog.',
    ]);
    expect(exitCode ?? 0).toBe(0);
    const policy = await servingPolicyLoader({ sequences: 1 })(dir, 'base');
    const stream = policy.generate([{ role: 'user', content: 'Use the word dog.' }], {
      maxTokens: 12,
      temperature: 0.9,
      seed: 4,
    });
    let next = await stream.next();
    while (!next.done) next = await stream.next();
    await policy.dispose();
    expect(next.value.tokenIds.length).toBeGreaterThan(0);
    expect(stdout).toBe(`${next.value.text}\n`);
  });

  it('says clearly when the directory holds no checkpoint yet', async () => {
    const missing = join(root, 'nothing-here');
    const { stdout, stderr, exitCode } = await run(['generate', '--policy', missing, 'hi']);
    expect(exitCode).toBe(1);
    expect(stdout).toBe('');
    expect(stderr).toContain(`corgi generate: no checkpoint in ${missing}`);
    expect(stderr).toContain('--policy <dir> or set CORGI_POLICY');
  });

  it('defaults to $CORGI_POLICY', async () => {
    vi.stubEnv('CORGI_POLICY', join(root, 'from-env'));
    const { stderr } = await run(['generate', 'hi']);
    vi.unstubAllEnvs();
    expect(stderr).toContain(`no checkpoint in ${join(root, 'from-env')}`);
  });
});

describe('corgi bench', () => {
  it('passes the model flags to the bench and prints exactly the contract fields', async () => {
    const bench = vi.fn(async (_: PolicyBenchOptions) => ({
      backend: 'wasm',
      config: { hidden_size: 64 },
      train_tokens_per_s: 1000,
      gen_tokens_per_s_b1: 50,
      gen_tokens_per_s_b32: 900,
      train_threads: 2,
    }));
    const { stdout } = await run(
      [
        'bench',
        '--layers',
        '3',
        '--dim',
        '64',
        '--heads',
        '2',
        '--vocab',
        '512',
        '--ctx',
        '32',
        '--batch',
        '4',
        '--json',
      ],
      bench as never,
    );
    expect(bench).toHaveBeenCalledWith({ layers: 3, dim: 64, heads: 2, vocab: 512, ctx: 32, batch: 4 });
    expect(JSON.parse(stdout)).toEqual({
      backend: 'wasm',
      config: { hidden_size: 64 },
      train_tokens_per_s: 1000,
      gen_tokens_per_s_b1: 50,
      gen_tokens_per_s_b32: 900,
    });
  });

  it('--train runs the LoRA training bench on the named model and prints its JSON', async () => {
    const result = { train_tokens_per_s: 20, peer_train_tokens_per_s: 80, train_ratio: 0.25, threads: 1 };
    const train = vi.fn(async (_: LoraTrainBenchOptions) => result);
    const { stdout } = await run(
      [
        'bench',
        '--policy',
        'smollm2-135m-instruct',
        '--train',
        '--length',
        '300',
        '--completion',
        '60',
        '--json',
      ],
      undefined,
      train as never,
    );
    expect(train).toHaveBeenCalledWith({
      policy: 'smollm2-135m-instruct',
      sequences: 4,
      length: 300,
      completion: 60,
      rank: 16,
      threads: 1,
      rounds: 3,
    });
    expect(JSON.parse(stdout)).toEqual(result);
  });

  it('--train refuses a completion as long as the row, naming both flags', async () => {
    const train = vi.fn();
    await expect(
      run(
        ['bench', '--policy', 'm', '--train', '--length', '50', '--completion', '50', '--json'],
        undefined,
        train as never,
      ),
    ).rejects.toThrow('--completion (50) must be smaller than --length (50)');
    expect(train).not.toHaveBeenCalled();
  });
});
