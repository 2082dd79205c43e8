import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createRng,
  GenerationScheduler,
  generateBatch,
  type SequenceOptions,
  sampleToken,
  samplingSupport,
  TextStream,
} from '../../src/policy/generate.ts';
import { KVCache, type LlamaModel } from '../../src/policy/model.ts';
import type { Generation, GenerationChunk } from '../../src/policy/types.ts';
import { maxAbsDiff, useBackend } from './helpers.ts';
import { tinyModel } from './tiny-policy.ts';

let model: LlamaModel;
beforeAll(async () => {
  await useBackend('wasm');
  model = tinyModel();
});
afterAll(() => model.dispose());

/** float64 log-softmax of x / T. */
function logSoftmax(x: ArrayLike<number>, T = 1): number[] {
  const z = Array.from(x, (v) => v / T);
  const max = Math.max(...z);
  const lse = max + Math.log(z.reduce((s, v) => s + Math.exp(v - max), 0));
  return z.map((v) => v - lse);
}

/** Logits drawn from a seeded normal-ish distribution. */
function randomLogits(n: number, seed: number, scale = 3): Float32Array {
  const random = createRng(seed);
  return Float32Array.from({ length: n }, () => (random() + random() + random() - 1.5) * scale);
}

/** Reference nucleus: sort everything, keep the shortest prefix reaching p. */
function referenceKept(logits: Float32Array, T: number, topK: number, topP: number): number[] {
  const lp = logSoftmax(logits, T);
  let order = lp.map((_, i) => i).sort((a, b) => lp[b]! - lp[a]! || a - b);
  if (topK > 0) order = order.slice(0, topK);
  const total = order.reduce((s, i) => s + Math.exp(lp[i]!), 0);
  let cumulative = 0;
  for (let n = 0; n < order.length; n++) {
    cumulative += Math.exp(lp[order[n]!]!);
    if (cumulative >= topP * total) return order.slice(0, n + 1);
  }
  return order;
}

describe('createRng', () => {
  it('gives the same stream for the same seed and different streams otherwise', () => {
    const take = (seed: number) => {
      const r = createRng(seed);
      return Array.from({ length: 5 }, () => r());
    };
    expect(take(42)).toEqual(take(42));
    expect(take(42)).not.toEqual(take(43));
    expect(take(2 ** 40)).not.toEqual(take(0)); // high bits count too
    const r = createRng(1);
    const xs = Array.from({ length: 20_000 }, () => r());
    expect(xs.every((x) => x >= 0 && x < 1)).toBe(true);
    expect(xs.reduce((s, x) => s + x, 0) / xs.length).toBeCloseTo(0.5, 2);
  });
});

describe('sampleToken', () => {
  it('decodes greedily at temperature 0: the argmax, ties to the lower id, log-prob 0', () => {
    const random = () => {
      throw new Error('greedy decoding draws no random number');
    };
    expect(sampleToken([0.1, 2, -1, 2], { temperature: 0, topK: 0, topP: 1 }, random)).toEqual({
      token: 1,
      logprob: 0,
    });
  });

  it('reports the log-prob of the tempered distribution it sampled from, and samples from it', () => {
    const logits = randomLogits(12, 7);
    const T = 0.7;
    const expected = logSoftmax(logits, T);
    const random = createRng(3);
    const counts = new Array(12).fill(0);
    const n = 20_000;
    for (let i = 0; i < n; i++) {
      const { token, logprob } = sampleToken(logits, { temperature: T, topK: 0, topP: 1 }, random);
      counts[token]++;
      expect(logprob).toBeCloseTo(expected[token]!, 10);
    }
    for (let i = 0; i < 12; i++) expect(Math.abs(counts[i] / n - Math.exp(expected[i]!))).toBeLessThan(0.012);
  });

  it('keeps the top-k, then the nucleus of the renormalized top-k, and renormalizes the log-prob', () => {
    for (const [topK, topP] of [
      [3, 1],
      [0, 0.6],
      [5, 0.5],
      [1, 1],
    ] as const) {
      const logits = randomLogits(40, topK * 10 + 1);
      const kept = referenceKept(logits, 1.3, topK, topP);
      const lp = logSoftmax(logits, 1.3);
      const keptLse = Math.log(kept.reduce((s, i) => s + Math.exp(lp[i]!), 0));
      const random = createRng(5);
      const seen = new Set<number>();
      for (let i = 0; i < 3000; i++) {
        const { token, logprob } = sampleToken(logits, { temperature: 1.3, topK, topP }, random);
        seen.add(token);
        expect(logprob).toBeCloseTo(lp[token]! - keptLse, 9);
      }
      expect([...seen].sort((a, b) => a - b)).toEqual([...kept].sort((a, b) => a - b));
    }
  });

  it('finds the same support as a full sort, also over a large flat vocabulary', () => {
    for (const [n, scale, topK, topP] of [
      [3000, 0.5, 0, 0.9],
      [3000, 0.5, 0, 0.99],
      [3000, 0.5, 100, 0.3],
      [50, 3, 7, 1],
      [50, 3, 0, 1],
    ] as const) {
      const logits = randomLogits(n, n + topK, scale);
      const sampling = { temperature: 0.9, topK, topP };
      const expected = referenceKept(logits, 0.9, topK, topP).sort((a, b) => a - b);
      expect(samplingSupport(logits, sampling)).toEqual(expected);
      const random = createRng(1);
      const kept = new Set(expected);
      for (let i = 0; i < 50; i++) expect(kept.has(sampleToken(logits, sampling, random).token)).toBe(true);
    }
    // Ties at the cut go to the lower ids.
    expect(samplingSupport([1, 2, 2, 2, 0], { temperature: 1, topK: 2, topP: 1 })).toEqual([1, 2]);
    expect(samplingSupport([1, 2, 0], { temperature: 0, topK: 0, topP: 1 })).toEqual([1]);
  });
});

/** A decoder whose ids are whole strings (ids index into `pieces`). */
function pieceDecoder(pieces: string[]) {
  return { push: (id: number) => pieces[id]!, flush: () => '' };
}

describe('TextStream', () => {
  it('holds back a possible stop string and cuts it (and what follows) when it completes', () => {
    const stream = new TextStream(pieceDecoder(['Hello', ' wor', 'ld', ' E', 'N', 'Dx', 'more']), ['END']);
    const out = [0, 1, 2, 3, 4, 5].map((id) => stream.push(id));
    expect(out.map((o) => o.text)).toEqual(['Hello', ' wor', 'ld', ' ', '', '']);
    expect(out.map((o) => o.stop)).toEqual([false, false, false, false, false, true]);
    expect(stream.emitted).toBe('Hello world ');
    expect(stream.push(6)).toEqual({ text: '', stop: true }); // nothing after a stop
  });

  it('releases held-back text once it cannot start a stop string, or at the end', () => {
    const stream = new TextStream(pieceDecoder(['a', 'E', 'Nx', 'E']), ['END']);
    expect(stream.push(0).text).toBe('a');
    expect(stream.push(1).text).toBe('');
    expect(stream.push(2).text).toBe('ENx');
    expect(stream.push(3).text).toBe('');
    expect(stream.finish()).toEqual({ text: 'E', stop: false });
    expect(stream.emitted).toBe('aENxE');
  });

  it('stops at the earliest of several stop strings', () => {
    const stream = new TextStream(pieceDecoder(['one. two\n\nthree']), ['\n\n', '.']);
    expect(stream.push(0)).toEqual({ text: 'one', stop: true });
  });
});

describe('left padding in the model', () => {
  const rows = [
    [5, 9, 13, 40, 41, 42, 7],
    [100, 3],
    [17, 18, 19, 20],
  ];
  const L = Math.max(...rows.map((r) => r.length));
  const padded = rows.map((r) => [...new Array(L - r.length).fill(0), ...r]);
  const padding = rows.map((r) => L - r.length);

  function aloneLogits(row: number[]): Float32Array {
    return tf.tidy(() => model.forward(tf.tensor2d([row], undefined, 'int32')).dataSync() as Float32Array);
  }

  it('gives every padded row the logits it has alone', () => {
    const V = model.config.vocab_size;
    const logits = tf.tidy(
      () => model.forward(tf.tensor2d(padded, undefined, 'int32'), { padding }).dataSync() as Float32Array,
    );
    rows.forEach((row, b) => {
      const real = logits.subarray((b * L + padding[b]!) * V, (b + 1) * L * V);
      expect(maxAbsDiff(real, aloneLogits(row))).toBeLessThan(1e-5);
    });
  });

  it('keeps that through the KV cache, and through rows leaving and joining', () => {
    const V = model.config.vocab_size;
    const next = [
      [11, 12],
      [21, 22],
      [31, 32],
    ]; // two decode steps per row
    const cache = new KVCache();
    tf.dispose(model.forwardWithCache(tf.tensor2d(padded, undefined, 'int32'), cache, { padding }));
    tf.dispose(
      model.forwardWithCache(
        tf.tensor2d(
          next.map((n) => [n[0]!]),
          undefined,
          'int32',
        ),
        cache,
      ),
    );
    // Row 0 (the longest, unpadded) leaves: the common leading padding is trimmed.
    cache.keepRows([1, 2]);
    expect(cache.length).toBe(rows[2]!.length + 1);
    expect(cache.padding).toEqual([2, 0]);
    // A longer newcomer joins: the batch's rows get padded on the left.
    const newcomer = [1, 2, 3, 4, 5, 6, 7, 8];
    const other = new KVCache();
    tf.dispose(model.forwardWithCache(tf.tensor2d([newcomer], undefined, 'int32'), other));
    cache.append(other);
    expect(other.batchSize).toBe(0);
    expect(cache.batchSize).toBe(3);
    expect(cache.padding).toEqual([5, 3, 0]); // 8 columns: rows of 3, 5 and 8 tokens
    const step = model.forwardWithCache(tf.tensor2d([[22], [32], [9]], undefined, 'int32'), cache, {
      lastOnly: true,
    });
    const got = step.dataSync();
    const expected = [
      [...rows[1]!, 21, 22],
      [...rows[2]!, 31, 32],
      [...newcomer, 9],
    ];
    expected.forEach((sequence, b) => {
      const alone = aloneLogits(sequence);
      expect(maxAbsDiff(got.subarray(b * V, (b + 1) * V), alone.subarray(alone.length - V))).toBeLessThan(
        1e-5,
      );
    });
    step.dispose();
    cache.dispose();
  });
});

/** Drains a stream, returning the chunks and the result. */
async function drain(stream: AsyncGenerator<GenerationChunk, Generation>) {
  const chunks: GenerationChunk[] = [];
  for (;;) {
    const next = await stream.next();
    if (next.done) return { chunks, result: next.value };
    chunks.push(next.value);
  }
}

describe('generateBatch', () => {
  const prompts = [[3, 7, 9], [40, 41, 42, 43, 44, 45, 46, 47, 48], [12], [100, 101, 102, 103, 104]];

  it.each([
    ['sampling at temperature 1', { temperature: 1 }],
    ['top-k and top-p sampling', { temperature: 0.8, topK: 20, topP: 0.9 }],
    ['greedy decoding', { temperature: 0 }],
  ])(
    'gives each prompt of a padded batch the tokens and log-probs it gets alone (%s)',
    async (_, sampling) => {
      const options = prompts.map((_, i) => ({ ...sampling, maxTokens: 12, seed: 100 + i }));
      const batch = await generateBatch(model, prompts, options);
      for (let i = 0; i < prompts.length; i++) {
        const [alone] = await generateBatch(model, [prompts[i]!], [options[i]!]);
        expect(batch[i]!.tokenIds).toEqual(alone!.tokenIds);
        expect(maxAbsDiff(batch[i]!.logprobs, alone!.logprobs)).toBeLessThan(1e-5);
        expect(batch[i]!.finishReason).toBe('length');
      }
    },
  );

  it('gives the same output for the same seed whoever joins the batch, and whenever', async () => {
    const options: SequenceOptions = { temperature: 1, maxTokens: 20, seed: 7 };
    const [alone] = await generateBatch(model, [prompts[1]!], options);
    const [otherAlone] = await generateBatch(model, [prompts[3]!], { ...options, seed: 8, maxTokens: 6 });
    const scheduler = new GenerationScheduler(model);
    const stream = scheduler.generate(prompts[1]!, options);
    const early: GenerationChunk[] = [];
    for (let i = 0; i < 5; i++) early.push((await stream.next()).value as GenerationChunk);
    // Companions arrive mid-generation; one leaves early.
    const companions = [
      drain(scheduler.generate(prompts[3]!, { ...options, seed: 8, maxTokens: 6 })),
      drain(scheduler.generate(prompts[0]!, { ...options, seed: 9, maxTokens: 30 })),
    ];
    const rest = await drain(stream);
    const [other] = await Promise.all(companions);
    expect([...early, ...rest.chunks].flatMap((c) => c.tokenIds)).toEqual(alone!.tokenIds);
    expect(rest.result.tokenIds).toEqual(alone!.tokenIds);
    expect(maxAbsDiff(rest.result.logprobs, alone!.logprobs)).toBeLessThan(1e-5);
    expect(other!.result.tokenIds).toEqual(otherAlone!.tokenIds);
    scheduler.close();
  });

  it('prefills in chunks between decode steps without changing the output', async () => {
    const options = prompts.map((_, i) => ({ temperature: 1, maxTokens: 6, seed: i }));
    const whole = await generateBatch(model, prompts, options);
    const chunked = await generateBatch(model, prompts, options, { prefillTokens: 3 });
    expect(chunked.map((g) => g.tokenIds)).toEqual(whole.map((g) => g.tokenIds));
  });

  /** Records every forward the scheduler runs: rows, columns, cached columns before, padding. */
  function recordForwards(): {
    calls: { rows: number; columns: number; cached: number; padding: number[] | null }[];
    restore: () => void;
  } {
    const calls: { rows: number; columns: number; cached: number; padding: number[] | null }[] = [];
    const original = model.forwardWithCache.bind(model);
    model.forwardWithCache = (ids, cache, options) => {
      const [rows, columns] = ids.shape;
      calls.push({
        rows,
        columns,
        cached: cache.length,
        padding: options?.padding ? [...options.padding] : null,
      });
      return original(ids, cache, options);
    };
    return { calls, restore: () => Reflect.deleteProperty(model, 'forwardWithCache') };
  }

  it('prefills prompts of similar length together, the oldest first, each still getting its solo output', async () => {
    const lengths = [40, 3, 38, 4, 36, 5, 90, 41];
    const mixed = lengths.map((n, i) => Array.from({ length: n }, (_, j) => 10 + ((i * 7 + j) % 200)));
    const options = mixed.map((_, i) => ({ temperature: 1, maxTokens: 5, seed: 50 + i }));
    const { calls, restore } = recordForwards();
    let batch: Generation[];
    try {
      // 32-token chunks: a group holds at most 4 chunks' worth (128 padded tokens).
      batch = await generateBatch(model, mixed, options, { prefillTokens: 32 });
    } finally {
      restore();
    }
    // Prefill forwards carry the group's padding (decode forwards none); a group's first chunk
    // starts from an empty cache, and its members' lengths are the group's length less their pads.
    const groups: { padding: number[]; length: number }[] = [];
    for (const call of calls.filter((c) => c.padding !== null)) {
      if (call.cached === 0) groups.push({ padding: call.padding!, length: call.columns });
      else groups.at(-1)!.length += call.columns;
    }
    const members = groups.map((g) => g.padding.map((pad) => g.length - pad));
    // The oldest (40) leads with those within 25% of every member (38, 36; 41 would make 4 × 41
    // padded tokens, over 128), then the short ones (within 16 tokens), then 90 alone, then 41.
    expect(members).toEqual([[40, 38, 36], [3, 4, 5], [90], [41]]);
    for (let i = 0; i < mixed.length; i++) {
      const [alone] = await generateBatch(model, [mixed[i]!], [options[i]!]);
      expect(batch![i]!.tokenIds).toEqual(alone!.tokenIds);
    }
  });

  it('sizes prefill chunks by measured cost with stepMilliseconds, and by prefillTokens without', async () => {
    const long = Array.from({ length: 120 }, (_, j) => 10 + (j % 200));
    const options = { temperature: 0, maxTokens: 3 };
    const chunkColumns = async (schedulerOptions: { prefillTokens: number; stepMilliseconds?: number }) => {
      const { calls, restore } = recordForwards();
      try {
        const [result] = await generateBatch(model, [long], options, schedulerOptions);
        return { columns: calls.filter((c) => c.columns > 1).map((c) => c.columns), result: result! };
      } finally {
        restore();
      }
    };
    const fixed = await chunkColumns({ prefillTokens: 8 });
    expect(fixed.columns).toEqual(new Array(15).fill(8));
    // A generous time target: after one timed chunk of 8, the rest fits in the next step.
    const timed = await chunkColumns({ prefillTokens: 8, stepMilliseconds: 60_000 });
    expect(timed.columns).toEqual([8, 112]);
    expect(timed.result.tokenIds).toEqual(fixed.result.tokenIds);
    expect(() => new GenerationScheduler(model, { stepMilliseconds: 0 })).toThrow(
      'stepMilliseconds must be a positive number',
    );
  });

  it('stops at a stop id (kept in tokenIds), at maxTokens, and when the context is full', async () => {
    const [free] = await generateBatch(model, [prompts[0]!], { temperature: 0, maxTokens: 8 });
    const stopId = free!.tokenIds[3]!;
    const firstStop = free!.tokenIds.indexOf(stopId);
    const [stopped] = await generateBatch(model, [prompts[0]!], {
      temperature: 0,
      maxTokens: 8,
      stopIds: [stopId],
    });
    expect(stopped!.finishReason).toBe('stop');
    expect(stopped!.tokenIds).toEqual(free!.tokenIds.slice(0, firstStop + 1));
    expect(stopped!.logprobs).toHaveLength(firstStop + 1);

    const limit = model.config.max_position_embeddings;
    const long = Array.from({ length: limit - 3 }, (_, i) => 10 + (i % 50));
    const [full] = await generateBatch(model, [long], { temperature: 0, maxTokens: 100 });
    expect(full!.finishReason).toBe('length');
    expect(full!.tokenIds).toHaveLength(3); // positions limit−3 .. limit−1
    await expect(generateBatch(model, [[...long, 1, 2, 3]], {})).rejects.toThrow(
      `prompt of ${limit} tokens leaves no room to generate: max_position_embeddings is ${limit}`,
    );
  });

  it('streams one chunk per token whose ids concatenate to the result', async () => {
    const scheduler = new GenerationScheduler(model);
    const { chunks, result } = await drain(
      scheduler.generate(prompts[2]!, { temperature: 1, maxTokens: 9, seed: 1 }),
    );
    expect(chunks).toHaveLength(9);
    expect(chunks.flatMap((c) => c.tokenIds)).toEqual(result.tokenIds);
    expect(chunks.flatMap((c) => c.logprobs)).toEqual(result.logprobs);
    expect(result.logprobs.every((lp) => lp < 0 && Number.isFinite(lp))).toBe(true);
    scheduler.close();
  });

  it('stops promptly on abort with what was streamed, leaving the other sequences alone', async () => {
    const scheduler = new GenerationScheduler(model);
    const controller = new AbortController();
    const options: SequenceOptions = { temperature: 1, maxTokens: 40, seed: 3 };
    const other = drain(scheduler.generate(prompts[0]!, { ...options, seed: 4 }));
    const stream = scheduler.generate(prompts[1]!, { ...options, signal: controller.signal });
    await stream.next();
    await stream.next();
    controller.abort();
    const { chunks, result } = await drain(stream);
    expect(chunks.length).toBeLessThanOrEqual(1); // at most a chunk already queued
    expect(result.finishReason).toBe('cancelled');
    expect(result.tokenIds.length).toBeLessThanOrEqual(3);
    const [otherAlone] = await generateBatch(model, [prompts[0]!], { ...options, seed: 4 });
    expect((await other).result.tokenIds).toEqual(otherAlone!.tokenIds);
    // An already aborted signal returns at once.
    const none = await drain(scheduler.generate(prompts[0]!, { signal: AbortSignal.abort() }));
    expect(none.result).toEqual({ text: '', tokenIds: [], logprobs: [], finishReason: 'cancelled' });
    scheduler.close();
  });

  it('frees the row of a consumer that stops reading', async () => {
    const scheduler = new GenerationScheduler(model);
    const stream = scheduler.generate(prompts[0]!, { temperature: 1, maxTokens: 50, seed: 1 });
    await stream.next();
    expect(scheduler.load.active).toBe(1);
    await stream.return(undefined as never);
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(scheduler.load).toEqual({ active: 0, waiting: 0 });
    scheduler.close();
  });

  it('yields to the event loop between decode steps', async () => {
    let ticks = 0;
    const timer = setInterval(() => ticks++, 0);
    const [result] = await generateBatch(model, [prompts[0]!], { temperature: 0, maxTokens: 60 });
    clearInterval(timer);
    expect(result!.tokenIds).toHaveLength(60);
    expect(ticks).toBeGreaterThan(5);
  });

  it('refuses bad options, naming them', async () => {
    await expect(generateBatch(model, [[1]], { temperature: -1 })).rejects.toThrow('temperature must be ≥ 0');
    await expect(generateBatch(model, [[1]], { topP: 0 })).rejects.toThrow('topP must be in (0, 1]');
    await expect(generateBatch(model, [[1]], { topK: 1.5 })).rejects.toThrow('topK must be an integer');
    await expect(generateBatch(model, [[1]], { stop: ['x'] })).rejects.toThrow('stop strings need a decoder');
    await expect(generateBatch(model, [[]], {})).rejects.toThrow('empty prompt');
    await expect(generateBatch(model, [[99999]], {})).rejects.toThrow('prompt token 99999 is outside');
  });
});
