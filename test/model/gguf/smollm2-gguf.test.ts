/**
 * The real SmolLM2-135M-Instruct GGUF (Q4_1, the product's default model) loaded into TF.js against
 * llama.cpp on the same file. Runs when the file is in the model store
 * ($CORGI_DATA_DIR/models/smollm2-135m-instruct/*.gguf) or named by CORGI_SMOLLM2_GGUF; skips otherwise.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, describe, expect, it } from 'vitest';
import { llamaGgufMetadata, llamaGgufTensors } from '../../../src/model/gguf/checkpoint-to-gguf.ts';
import { copyGgufMetadata, loadGgufModel } from '../../../src/model/gguf/gguf-to-llama.ts';
import { loadGgufTokenizer } from '../../../src/model/gguf/gguf-tokenizer.ts';
import { writeGguf } from '../../../src/model/gguf/writer.ts';
import { selectBackend } from '../../../src/model/tfjs/backend.ts';
import { maxAbsDiff } from '../../policy/helpers.ts';
import { noteSkip, smollm2GgufPath } from '../../support/smollm2.ts';
import { createExactContext, llamaCppLogProbs, loadLlamaCppModel } from './llama-cpp.ts';

const path = smollm2GgufPath();
noteSkip('smollm2-gguf.test', path);

/** KL(p‖q) per position in nats, and the largest |Δ log p| over tokens p gives at least 1e-3. */
function compare(p: number[][], q: number[][]) {
  let kl = 0;
  let likelyDrift = 0;
  p.forEach((row, t) =>
    row.forEach((lp, v) => {
      const lq = q[t]![v]!;
      kl += Math.exp(lp) * (lp - lq);
      if (lp > Math.log(1e-3)) likelyDrift = Math.max(likelyDrift, Math.abs(lp - lq));
    }),
  );
  return { kl: kl / p.length, likelyDrift, maxDrift: maxAbsDiff(p.flat(), q.flat()) };
}

const TEXT = "In 1961, the river's 12,345 barges -- naïve, aren't they?  Moved\n\n  42 tons.";

const argmax = (row: number[]) => row.indexOf(Math.max(...row));

describe.skipIf(!path)('SmolLM2-135M-Instruct Q4_1 in TF.js and llama.cpp', () => {
  const dir = mkdtempSync(join(tmpdir(), 'corgi-smollm2-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('gives llama.cpp’s next-token distribution: its own exactly once llama.cpp runs the dequantized weights', async () => {
    await selectBackend({ preferred: 'wasm', log: () => {} });
    const run = async (file: string, text: string | number[]) => {
      const cpp = await loadLlamaCppModel(file);
      const context = await createExactContext(cpp, { contextSize: 64 });
      try {
        const ids = typeof text === 'string' ? cpp.tokenize(text, true).map(Number) : text;
        const textIds = cpp.tokenize(TEXT, false).map(Number);
        return { ids, textIds, logProbs: await llamaCppLogProbs(context, ids) };
      } finally {
        await context.dispose();
        await cpp.dispose();
      }
    };
    // The GGUF's Jinja template adds its default system message when a conversation has none.
    const q41 = await run(
      path!,
      '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' +
        '<|im_start|>user\nName a large river.<|im_end|>\n<|im_start|>assistant\n',
    );

    const { model, config, gguf } = await loadGgufModel(path!);
    // Its tokenizer ("smollm" pre-tokenizer: digits split, then GPT-2's regex) as llama.cpp's.
    const tokenizer = await loadGgufTokenizer(path!, gguf);
    expect(tokenizer.chatTemplate).toBe('chatml');
    expect(
      tokenizer.applyChatTemplate([{ role: 'user', content: 'Name a large river.' }], {
        addGenerationPrompt: true,
      }).ids,
    ).toEqual(q41.ids);
    expect(tokenizer.encode(TEXT)).toEqual(q41.textIds);
    expect(config).toMatchObject({
      num_hidden_layers: 30,
      hidden_size: 576,
      num_attention_heads: 9,
      num_key_value_heads: 3,
    });
    expect(config.tie_word_embeddings).toBe(true);
    const ids = tf.tensor2d([q41.ids], undefined, 'int32');
    const logits = model.forward(ids);
    const ours = (tf.logSoftmax(logits).arraySync() as number[][][])[0]!;
    tf.dispose([ids, logits]);
    // The same weights back out as F32, tokenizer keys copied: llama.cpp then computes what we do.
    const f32 = join(dir, 'smollm2-f32.gguf');
    const metadata = llamaGgufMetadata(config, { name: 'smollm2-f32' });
    for (const [key, value] of copyGgufMetadata(gguf, 'tokenizer.')) metadata.set(key, value);
    await writeGguf(f32, metadata, llamaGgufTensors(model));
    model.dispose();
    const exact = await run(f32, q41.ids);

    // Against llama.cpp on the dequantized weights: float32 summation order only.
    const same = compare(exact.logProbs, ours);
    expect(same.maxDrift).toBeLessThan(1e-3);
    // Against llama.cpp on Q4_1: it rounds activations to Q8_1 for its Q4_1 dot products (TF.js
    // does not), over 30 layers.
    const quantized = compare(q41.logProbs, ours);
    // The same top token almost everywhere; where they differ, llama.cpp's choice is a near-tie in ours
    // (Q4_1's rounding decides between two tokens a fraction of a nat apart).
    const disagree = ours
      .map((row, p) => ({ row, theirs: argmax(q41.logProbs[p]!) }))
      .filter(({ row, theirs }) => argmax(row) !== theirs);
    expect(disagree.length).toBeLessThanOrEqual(2);
    for (const { row, theirs } of disagree) expect(Math.max(...row) - row[theirs]!).toBeLessThan(0.5);
    expect(quantized.kl).toBeLessThan(0.02);
    // Measured on this 30-token prompt: largest drift on a likely token 1.14 (the F32 run above is exact).
    expect(quantized.likelyDrift).toBeLessThan(1.5);
    console.log(JSON.stringify({ smollm2_vs_llama_cpp_q4_1: quantized, smollm2_vs_llama_cpp_f32: same }));
  }, 600_000);
});
