/**
 * One llama.cpp context, many sequences: every token a sequence samples must come from its own
 * next-token distribution, whatever else the batch holds. Checked on the built-in model as F32 GGUF
 * against TensorFlow.js's log-softmax over the same ids (independent of any batching): with prompts
 * prefilling while other sequences decode, node-llama-cpp's batches list sequences out of order,
 * llama.cpp reorders that batch's output rows lazily on the first logits access, and that access
 * comes from several sampling threads at once (see llama-logits-guard.ts).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadCheckpoint } from '../../src/model/checkpoint.ts';
import type { LlamaModel } from '../../src/model/llama.ts';
import { BUILTIN_MODEL_DIR } from '../../src/policy/builtin-model.ts';
import { LlamaCppPolicy } from '../../src/policy/llama-cpp-policy.ts';
import { convertedCheckpoint } from '../../src/policy/serving-loader.ts';
import { maskedLogProbs } from '../../src/training/lm/sequence-logprobs.ts';
import { useBackend } from './helpers.ts';

const SUBJECTS = ['a dog', 'the river', 'a red kite', 'the old mill', 'a lantern', 'the harbour'];
const SAMPLING = { temperature: 1, topK: 0, topP: 1, maxTokens: 40 } as const;

let root: string;
let gguf: string;
let model: LlamaModel;
beforeAll(async () => {
  await useBackend('wasm');
  root = mkdtempSync(join(tmpdir(), 'llama-batching-'));
  gguf = await convertedCheckpoint(BUILTIN_MODEL_DIR, root);
  model = await loadCheckpoint(BUILTIN_MODEL_DIR);
});
afterAll(() => {
  model?.dispose();
  rmSync(root, { recursive: true, force: true });
});

interface Decoded {
  prompt: number[];
  tokenIds: number[];
  logprobs: number[];
}

/**
 * `count` generations on one policy, generation i starting once the others have streamed 2·i
 * tokens in all: its prompt is evaluated in a batch with the running ones' single-token steps.
 */
async function staggered(policy: LlamaCppPolicy, count: number, seed: number): Promise<Decoded[]> {
  let streamed = 0;
  const waiting: { at: number; start: () => void }[] = [];
  const tick = () => {
    streamed++;
    for (const w of waiting.filter((w) => w.at <= streamed)) {
      waiting.splice(waiting.indexOf(w), 1);
      w.start();
    }
  };
  const one = async (i: number): Promise<Decoded> => {
    if (i > 0) await new Promise<void>((start) => waiting.push({ at: 2 * i, start }));
    const subject = SUBJECTS[i % SUBJECTS.length]!;
    const prompt = policy.encodePrompt(
      [{ role: 'user', content: `Write ${i + 1} short sentences about ${subject}.` }],
      SAMPLING,
    );
    const out: Decoded = { prompt, tokenIds: [], logprobs: [] };
    for await (const chunk of policy.generateFromIds(prompt, { ...SAMPLING, seed: seed + i })) {
      out.tokenIds.push(...chunk.tokenIds);
      out.logprobs.push(...chunk.logprobs);
      tick();
    }
    // A generation that ended before the later ones started lets them start now.
    for (const w of waiting.splice(0)) w.start();
    return out;
  };
  return Promise.all(Array.from({ length: count }, (_, i) => one(i)));
}

/** |log μ − log π| per sampled token: llama.cpp's behaviour log-prob against TensorFlow.js. */
function engineGaps(decoded: readonly Decoded[]): number[][] {
  const sequences = decoded.map(({ prompt, tokenIds }) => ({
    ids: [...prompt, ...tokenIds],
    mask: [...prompt.map(() => 0), ...tokenIds.map(() => 1)],
  }));
  const reference = maskedLogProbs(model, sequences);
  return decoded.map((d, b) => d.logprobs.map((mu, j) => Math.abs(mu - reference[b]![j]!)));
}

describe('LlamaCppPolicy: batched sequences sample from their own distributions', () => {
  it('agrees with TensorFlow.js on every token while prompts prefill among decoding sequences', async () => {
    const policy = await LlamaCppPolicy.load({
      modelPath: gguf,
      version: 'batching',
      sequences: 12,
      threads: 1,
      contextSize: 256,
    });
    try {
      const gaps: number[] = [];
      for (const seed of [11, 23, 37, 41, 53]) {
        const decoded = await staggered(policy, 12, seed);
        expect(decoded.every((d) => d.tokenIds.length > 0)).toBe(true);
        gaps.push(...engineGaps(decoded).flat());
      }
      const worst = Math.max(...gaps);
      const off = gaps.filter((g) => g > 0.01).length;
      // F32 weights on both sides; llama.cpp's F16 KV cache leaves ~1e-3.
      expect({ worst: worst < 0.01 ? 'below 0.01' : worst, off, of: gaps.length }).toEqual({
        worst: 'below 0.01',
        off: 0,
        of: gaps.length,
      });
    } finally {
      await policy.dispose();
    }
  }, 120_000);
});
