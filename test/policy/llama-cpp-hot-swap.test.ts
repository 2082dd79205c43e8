/**
 * Hot swap under load with llama.cpp: 8 sessions run through `runSession` and a `PolicyRegistry` on
 * SmolLM2 while the registry swaps to a new context with a LoRA adapter on the same loaded base.
 * No session fails; every attempt ends on the version it started with; attempts started before the
 * swap ran on the base, later ones on the adapter; the base's context is disposed once its last
 * attempt ended, and the base model stays loaded once for both.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseConstraints } from '../../src/checkers/registry.ts';
import { type LlamaCppPolicy, loadLlamaCppPolicy } from '../../src/policy/llama-cpp-policy.ts';
import { loadedModels } from '../../src/policy/llama-runtime.ts';
import { PolicyRegistry } from '../../src/policy/policy-registry.ts';
import { runSession, type SessionPart } from '../../src/session/session-runner.ts';
import { writeSmolLm2LoraAdapter } from '../support/lora-adapter-gguf.ts';
import { noteSkip, smollm2GgufPath } from '../support/smollm2.ts';

const path = smollm2GgufPath();
noteSkip('llama.cpp hot swap', path);
const dir = mkdtempSync(join(tmpdir(), 'corgi-hot-swap-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Sessions running at once, and attempts each makes. */
const SESSIONS = 8;
const ATTEMPTS = 3;

describe.skipIf(!path)('hot swap on llama.cpp (SmolLM2)', () => {
  it('swaps base → base + LoRA adapter under load: none fails, attempts finish on their version', async () => {
    const adapterPath = join(dir, 'adapter.gguf');
    writeSmolLm2LoraAdapter(adapterPath);
    // One thread: on a shared 2-core machine llama.cpp's two-thread barrier stalls.
    const common = { modelPath: path!, sequences: SESSIONS, contextSize: 768, threads: 1 };
    const base = await loadLlamaCppPolicy({ ...common, version: 'base' });
    let baseDisposed = false;
    const disposeBase = base.dispose.bind(base);
    base.dispose = async () => {
      expect(base.generating).toBe(0); // the registry waits for the last attempt on it
      baseDisposed = true;
      await disposeBase();
    };
    const registry = new PolicyRegistry(base);
    // At least 400 words in 8 tokens: never satisfied, so every session makes all its attempts.
    const constraints = parseConstraints([
      { id: 'length_constraints:number_words', kwargs: { num_words: 400, relation: 'at least' } },
    ]);
    const parts: SessionPart[][] = Array.from({ length: SESSIONS }, () => []);
    let swapStarted = 0;
    let firstNewAttempt: number | null = null;
    const startedBeforeSwap = new Set<string>();
    let swapped = false;

    const sessions = parts.map(async (list, s) => {
      const run = runSession(
        {
          prompt: `Write a sentence about lantern number ${s + 1}.`,
          constraints,
          maxAttempts: ATTEMPTS,
          sampling: { temperature: 0, maxTokens: 8 },
        },
        { policy: registry },
      );
      for await (const part of run) {
        list.push(part);
        if (part.type === 'attempt:start') {
          if (!swapped) startedBeforeSwap.add(`${s}:${part.attempt}`);
          if (part.policyVersion === 'adapter') firstNewAttempt ??= performance.now();
        }
      }
    });

    // Promote once every session is generating its first attempt.
    while (parts.some((list) => !list.some((p) => p.type === 'token'))) {
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    swapStarted = performance.now();
    const adapter: LlamaCppPolicy = await loadLlamaCppPolicy({
      ...common,
      version: 'adapter',
      adapters: [{ path: adapterPath, scale: 1 }],
    });
    const loaded = performance.now();
    expect(loadedModels().get(path!)).toBe(2); // both contexts on one loaded model
    await registry.swap(adapter);
    swapped = true;
    const swappedAt = performance.now();
    await Promise.all(sessions);

    for (const [s, list] of parts.entries()) {
      expect(list.filter((p) => p.type === 'error')).toEqual([]);
      expect(list.at(-1)).toMatchObject({ type: 'session:end', attempts: ATTEMPTS });
      for (const end of list.filter((p) => p.type === 'attempt:end')) {
        const start = list.find((p) => p.type === 'attempt:start' && p.attempt === end.attempt);
        expect(end.policyVersion).toBe((start as { policyVersion: string }).policyVersion);
        const before = startedBeforeSwap.has(`${s}:${end.attempt}`);
        expect(end.policyVersion, `session ${s} attempt ${end.attempt}`).toBe(before ? 'base' : 'adapter');
        expect(end.tokenIds.length).toBeGreaterThan(0);
      }
    }
    expect(startedBeforeSwap.size).toBeGreaterThanOrEqual(SESSIONS);
    expect(startedBeforeSwap.size).toBeLessThan(SESSIONS * ATTEMPTS);
    expect(baseDisposed).toBe(true);
    expect(firstNewAttempt).not.toBeNull();
    console.log(
      JSON.stringify({
        adapter_load_ms: Math.round(loaded - swapStarted),
        swap_ms: Math.round(swappedAt - loaded),
        promote_to_next_attempt_ms: Math.round(firstNewAttempt! - swapStarted),
      }),
    );
    await registry.close();
    expect(loadedModels().has(path!)).toBe(false);
  }, 300_000);
});
