/**
 * The spare context (`spareContext`) on the built-in model, converted to GGUF and served as
 * `corgi serve` does: a policy loaded while another uses the base starts on the spare made in the
 * background, with its adapter applied (greedy output equal to a freshly created context with that
 * adapter, and unlike the base's); where node-llama-cpp lacks `LlamaContext._setLoras` (3.21's
 * internal method, feature-detected), an adapter
 * load creates its own context and the spare stays for an adapter-free one; the spare is freed with
 * the last policy on the base.
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { BUILTIN_MODEL_DIR } from '../../src/policy/builtin-model.ts';
import { _internal, type LlamaCppPolicy } from '../../src/policy/llama-cpp-policy.ts';
import { loadedModels } from '../../src/policy/llama-runtime.ts';
import { servingPolicyLoader } from '../../src/policy/serving-loader.ts';
import { writeRandomLoraAdapter } from '../support/lora-adapter-gguf.ts';

const dir = mkdtempSync(join(tmpdir(), 'corgi-spare-context-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const messages = [{ role: 'user' as const, content: 'Write a sentence about a river and a lantern.' }];

/** The greedy reply's token ids. */
async function greedy(policy: LlamaCppPolicy): Promise<number[]> {
  const stream = policy.generate(messages, { temperature: 0, maxTokens: 24 });
  for (;;) {
    const step = await stream.next();
    if (step.done) return step.value.tokenIds;
  }
}

describe('spare context on llama.cpp (built-in model)', () => {
  it('a swap takes the spare and applies its adapter; without _setLoras it creates its own context', async () => {
    // One thread: on a shared 2-core machine llama.cpp's two-thread barrier stalls.
    const engine = { cacheDir: join(dir, 'cache'), sequences: 2, contextSize: 256, threads: 1 };
    const base = await servingPolicyLoader({ ...engine, spareContext: true })(BUILTIN_MODEL_DIR, 'base');
    expect(base.contextFromSpare).toBe(false);
    const adapterDir = join(dir, 'adapter');
    mkdirSync(adapterDir);
    await writeRandomLoraAdapter(base.modelPath, join(adapterDir, 'adapter.gguf'), { scale: 0.3, seed: 11 });
    const onBase = { ...engine, baseModelPath: base.modelPath };
    const withSpare = servingPolicyLoader({ ...onBase, spareContext: true });

    // Made without a spare slot: a context created with the adapter, the reference.
    const fresh = await servingPolicyLoader(onBase)(adapterDir, 'fresh');
    expect(fresh.contextFromSpare).toBe(false);
    const reference = await greedy(fresh);
    await fresh.dispose();
    expect(reference).not.toEqual(await greedy(base));

    const swapped = await withSpare(adapterDir, 'adapter-1');
    expect(swapped.contextFromSpare).toBe(true);
    expect(await greedy(swapped)).toEqual(reference);
    // The base drains: the adapter's policy is the one left, and a spare is made for the next swap.
    await base.dispose();

    // As a node-llama-cpp without the method would: the adapter load creates its own context.
    const { loraSetter } = _internal;
    let fallback: LlamaCppPolicy;
    try {
      _internal.loraSetter = () => null;
      fallback = await withSpare(adapterDir, 'adapter-2');
    } finally {
      _internal.loraSetter = loraSetter;
    }
    expect(fallback.contextFromSpare).toBe(false);
    expect(await greedy(fallback)).toEqual(reference);
    // The spare was left in place: an adapter-free load (a rollback to the base) takes it.
    const rollback = await withSpare(BUILTIN_MODEL_DIR, 'base-again');
    expect(rollback.contextFromSpare).toBe(true);
    expect(rollback.adapters).toEqual([]);

    await Promise.all([swapped.dispose(), fallback.dispose(), rollback.dispose()]);
    // The last policy on the base freed the spare, and with it the model.
    expect(loadedModels().has(base.modelPath)).toBe(false);
  });
});
