/**
 * LlamaCppPolicy on the real SmolLM2-135M-Instruct GGUF: streaming, stop strings, length, seeds,
 * cancellation (generating and waiting for a sequence), batching, and behaviour log-probabilities
 * checked against a log-softmax computed here from llama.cpp's full next-token distribution.
 * One thread: on a shared 2-core machine llama.cpp's two-thread barrier stalls (0.7 vs 27 tokens/s).
 */
import type { LlamaContext, Token } from 'node-llama-cpp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type LlamaCppPolicy, loadLlamaCppPolicy } from '../../src/policy/llama-cpp-policy.ts';
import { acquireModel, type ModelLease } from '../../src/policy/llama-runtime.ts';
import type { ChatMessage, GenerateOptions, Generation, GenerationChunk } from '../../src/policy/types.ts';
import { noteSkip, smollm2GgufPath } from '../support/smollm2.ts';

const path = smollm2GgufPath();
noteSkip('LlamaCppPolicy', path);

const ASK: ChatMessage[] = [{ role: 'user', content: 'Write two sentences about a river and a lantern.' }];

async function collect(
  stream: AsyncGenerator<GenerationChunk, Generation>,
  onChunk?: (chunk: GenerationChunk, index: number) => void,
): Promise<{ chunks: GenerationChunk[]; result: Generation }> {
  const chunks: GenerationChunk[] = [];
  for (;;) {
    const next = await stream.next();
    if (next.done) return { chunks, result: next.value };
    onChunk?.(next.value, chunks.length);
    chunks.push(next.value);
  }
}

/** Cumulative mass this close to top-p makes the cut depend on float rounding: both cuts are right. */
const TOP_P_TIE = 1e-3;

/**
 * log q(token) for llama.cpp's sampler chain (top-k → top-p on the untempered distribution →
 * temperature), from the full next-token distribution at temperature 1. Returns every value a
 * correct engine may report: one, or two when the top-p cut sits on a rounding tie (the reference
 * logits come from a prompt batch, the engine's from one-token steps, which differ in the last bits).
 */
function expectedLogprobs(
  probabilities: Map<number, number>,
  token: number,
  { temperature, topK, topP }: { temperature: number; topK: number; topP: number },
): number[] {
  // log p up to a constant: the model's logits (a log-softmax is shift invariant).
  const sorted = [...probabilities]
    .map(([id, p]) => ({ id, logit: Math.log(p) }))
    .sort((a, b) => b.logit - a.logit);
  const candidates = topK > 0 ? sorted.slice(0, topK) : sorted;
  const cuts = [candidates.length];
  if (topP < 1) {
    const max = candidates[0]!.logit;
    const weights = candidates.map((c) => Math.exp(c.logit - max));
    const total = weights.reduce((a, b) => a + b, 0);
    let mass = 0;
    let n = 0;
    while (n < candidates.length) {
      mass += weights[n]! / total;
      n++;
      if (mass >= topP) break;
    }
    cuts[0] = n;
    if (mass - topP < TOP_P_TIE) cuts.push(n + 1);
    if (n > 1 && mass - weights[n - 1]! / total > topP - TOP_P_TIE) cuts.push(n - 1);
  }
  return cuts.flatMap((cut) => {
    const kept = candidates.slice(0, cut);
    const chosen = kept.find((c) => c.id === token);
    if (!chosen) return [];
    const scaled = kept.map((c) => c.logit / temperature);
    const max = Math.max(...scaled);
    const logSum = max + Math.log(scaled.reduce((a, x) => a + Math.exp(x - max), 0));
    return [chosen.logit / temperature - logSum];
  });
}

describe.skipIf(!path)('LlamaCppPolicy (SmolLM2)', () => {
  let policy: LlamaCppPolicy;
  let lease: ModelLease;
  let reference: LlamaContext;

  beforeAll(async () => {
    policy = await loadLlamaCppPolicy({
      modelPath: path!,
      version: 'smollm2',
      sequences: 4,
      contextSize: 512,
      threads: 1,
    });
    lease = await acquireModel(path!);
    reference = await lease.model.createContext({ contextSize: 512, threads: 1 });
  }, 120_000);
  afterAll(async () => {
    await reference?.dispose();
    await policy?.dispose();
    await lease?.release();
  });

  it('streams chunks whose texts and ids make up the generation, greedy log-probs 0', async () => {
    const { chunks, result } = await collect(policy.generate(ASK, { temperature: 0, maxTokens: 60 }));
    expect(result.text.length).toBeGreaterThan(10);
    expect(chunks.map((c) => c.text).join('')).toBe(result.text);
    expect(chunks.flatMap((c) => c.tokenIds)).toEqual(result.tokenIds);
    expect(result.logprobs).toEqual(result.tokenIds.map(() => 0));
    expect(['stop', 'length']).toContain(result.finishReason);
    if (result.finishReason === 'stop') expect(policy.tokenizer.stopIds).toContain(result.tokenIds.at(-1));
    expect(result.text).not.toMatch(/<\|im_end\|>|<\|im_start\|>/);
  }, 120_000);

  it('ends with "length" after maxTokens tokens', async () => {
    const { result } = await collect(policy.generate(ASK, { temperature: 0, maxTokens: 5 }));
    expect(result.finishReason).toBe('length');
    expect(result.tokenIds).toHaveLength(5);
    expect(result.text).toBe(policy.tokenizer.decode(result.tokenIds, { skipSpecialTokens: true }));
  }, 60_000);

  it('stops at a stop string, leaving it and what follows out of the text', async () => {
    const { result: free } = await collect(policy.generate(ASK, { temperature: 0, maxTokens: 40 }));
    const words = free.text.split(' ');
    const stop = ` ${words[4]}`;
    const expected = free.text.slice(0, free.text.indexOf(stop));
    const { chunks, result } = await collect(
      policy.generate(ASK, { temperature: 0, maxTokens: 40, stop: [stop] }),
    );
    expect(result.finishReason).toBe('stop');
    expect(result.text).toBe(expected);
    expect(chunks.map((c) => c.text).join('')).toBe(expected);
    expect(result.tokenIds.length).toBeLessThan(free.tokenIds.length);
  }, 120_000);

  it('gives the same tokens for the same seed, other tokens for another', async () => {
    const options: GenerateOptions = { temperature: 1, maxTokens: 24 };
    const a = await collect(policy.generate(ASK, { ...options, seed: 11 }));
    const b = await collect(policy.generate(ASK, { ...options, seed: 11 }));
    const c = await collect(policy.generate(ASK, { ...options, seed: 12 }));
    expect(b.result.tokenIds).toEqual(a.result.tokenIds);
    expect(b.result.logprobs).toEqual(a.result.logprobs);
    expect(c.result.tokenIds).not.toEqual(a.result.tokenIds);
  }, 120_000);

  it('stops at once when aborted mid-generation and reports "cancelled"', async () => {
    const controller = new AbortController();
    const { chunks, result } = await collect(
      policy.generate(ASK, { temperature: 0, maxTokens: 100, signal: controller.signal }),
      (_chunk, index) => {
        if (index === 2) controller.abort();
      },
    );
    expect(result.finishReason).toBe('cancelled');
    expect(chunks).toHaveLength(3);
    expect(chunks.map((c) => c.text).join('')).toBe(result.text);
    expect(result.tokenIds).toHaveLength(3);
    // The sequence went back to the pool: the next generation runs.
    const after = await collect(policy.generate(ASK, { temperature: 0, maxTokens: 3 }));
    expect(after.result.tokenIds).toHaveLength(3);
  }, 60_000);

  it('queues callers first come first served when every sequence is busy; an abort leaves the queue', async () => {
    const long = Array.from({ length: 4 }, () =>
      collect(policy.generate(ASK, { temperature: 0, maxTokens: 30 })),
    );
    const waiting = new AbortController();
    const queued = collect(policy.generate(ASK, { temperature: 0, maxTokens: 30, signal: waiting.signal }));
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(policy.load.waiting).toBe(1);
    waiting.abort();
    const cancelled = await queued;
    expect(cancelled.result).toEqual({
      text: '',
      tokenIds: [],
      logprobs: [],
      finishReason: 'cancelled',
      promptTokens: policy.encodePrompt(ASK, { maxTokens: 30 }).length,
    });
    expect(policy.load.waiting).toBe(0);
    const done = await Promise.all(long);
    for (const { result } of done) expect(result.tokenIds.length).toBeGreaterThan(0);
    expect(policy.load).toEqual({ busy: 0, waiting: 0, free: 4 });
  }, 180_000);

  it.each([
    { temperature: 1, topK: 0, topP: 1 },
    { temperature: 0.7, topK: 50, topP: 0.9 },
    { temperature: 1.3, topK: 0, topP: 0.8 },
    { temperature: 0.5, topK: 20, topP: 1 },
  ])(
    'reports log q(token) of the distribution it sampled from: %o',
    async (sampling) => {
      const { result } = await collect(policy.generate(ASK, { ...sampling, seed: 3, maxTokens: 12 }));
      const prompt = policy.encodePrompt(ASK, { maxTokens: 12 });
      // The full next-token distribution after the prompt and after each generated token.
      const sequence = reference.getSequence();
      try {
        const full = { generateNext: { probabilities: true, options: { temperature: 1, topK: 0, topP: 1 } } };
        const input = [...prompt, ...result.tokenIds.slice(0, -1)].map((id, i) =>
          i >= prompt.length - 1 ? ([id as Token, full] as const) : (id as Token),
        );
        const outputs = await sequence.controlledEvaluate(input as never);
        result.tokenIds.forEach((token, i) => {
          const probabilities = outputs[prompt.length - 1 + i]!.next.probabilities as Map<number, number>;
          expect(probabilities.size).toBe(49152);
          const expected = expectedLogprobs(probabilities, token, sampling);
          expect(expected.length, `token ${i} outside the recomputed candidate set`).toBeGreaterThan(0);
          const nearest = expected.reduce((a, b) =>
            Math.abs(b - result.logprobs[i]!) < Math.abs(a - result.logprobs[i]!) ? b : a,
          );
          expect(result.logprobs[i]).toBeCloseTo(nearest, 2);
        });
      } finally {
        await sequence.dispose();
      }
    },
    120_000,
  );
});
