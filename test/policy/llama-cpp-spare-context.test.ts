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
import { LlamaModel } from 'node-llama-cpp';
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
  it('a swap takes the spare, applies its adapter, and the drained context becomes the next spare', async () => {
    // Counts the contexts llama.cpp creates (the call goes through unchanged).
    const createContext = LlamaModel.prototype.createContext;
    let created = 0;
    LlamaModel.prototype.createContext = function (this: LlamaModel, ...args) {
      created++;
      return createContext.apply(this, args);
    };
    try {
      // One thread: on a shared 2-core machine llama.cpp's two-thread barrier stalls.
      const engine = { cacheDir: join(dir, 'cache'), sequences: 2, contextSize: 256, threads: 1 };
      const withSpare = servingPolicyLoader({ ...engine, spareContext: true });
      const base = await withSpare(BUILTIN_MODEL_DIR, 'base'); // and a spare made in the background
      expect(base.contextFromSpare).toBe(false);
      const baseReply = await greedy(base);
      const adapterDir = join(dir, 'adapter');
      mkdirSync(adapterDir);
      await writeRandomLoraAdapter(base.modelPath, join(adapterDir, 'adapter.gguf'), {
        scale: 0.3,
        seed: 11,
      });
      const onBase = { ...engine, baseModelPath: base.modelPath };
      const adapterWithSpare = servingPolicyLoader({ ...onBase, spareContext: true });

      // Without a spare slot: a context created with the adapter, the reference.
      const fresh = await servingPolicyLoader(onBase)(adapterDir, 'fresh');
      expect(fresh.contextFromSpare).toBe(false);
      const reference = await greedy(fresh);
      await fresh.dispose();
      expect(reference).not.toEqual(baseReply);

      const swapped = await adapterWithSpare(adapterDir, 'adapter-1');
      expect(swapped.contextFromSpare).toBe(true);
      expect(await greedy(swapped)).toEqual(reference);
      await base.dispose(); // drained: the next spare

      // As a node-llama-cpp without the method would: the adapter load creates its own context…
      const { loraSetter } = _internal;
      let fallback: LlamaCppPolicy;
      try {
        _internal.loraSetter = () => null;
        fallback = await adapterWithSpare(adapterDir, 'adapter-2');
      } finally {
        _internal.loraSetter = loraSetter;
      }
      expect(fallback.contextFromSpare).toBe(false);
      expect(await greedy(fallback)).toEqual(reference);
      // …and the spare is left for an adapter-free load (a rollback to the base): the base's old context.
      const rollback = await withSpare(BUILTIN_MODEL_DIR, 'base-again');
      expect(rollback.contextFromSpare).toBe(true);
      expect(await greedy(rollback)).toEqual(baseReply);

      // The adapter's drained context, taken for the base: its adapter removed.
      await swapped.dispose();
      const rollbackAgain = await withSpare(BUILTIN_MODEL_DIR, 'base-again-2');
      expect(rollbackAgain.contextFromSpare).toBe(true);
      expect(await greedy(rollbackAgain)).toEqual(baseReply);

      await fallback.dispose();
      await rollback.dispose();
      await rollbackAgain.dispose();
      // The base, the first spare, the reference and the fallback: every other context was recycled.
      expect(created).toBe(4);
      // The last policy on the base freed the spare, and with it the model.
      expect(loadedModels().has(base.modelPath)).toBe(false);
    } finally {
      LlamaModel.prototype.createContext = createContext;
    }
  });
});
