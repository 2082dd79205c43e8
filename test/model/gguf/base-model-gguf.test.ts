/**
 * The built-in model (models/base) converted to GGUF and run by llama.cpp: the same tokens for the
 * same text as our tokenizer, the same greedy reply as our TF.js model's forward, and a Q8_0 file
 * that stays close to F32 and loads back into TF.js.
 */
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import {
  JinjaTemplateChatWrapper,
  type LlamaContext,
  type LlamaModel as LlamaCppModel,
} from 'node-llama-cpp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadBrownCorpus } from '../../../src/data/brown.ts';
import { loadCheckpoint } from '../../../src/model/checkpoint.ts';
import { convertCheckpointToGguf } from '../../../src/model/gguf/checkpoint-to-gguf.ts';
import { loadGgufModel } from '../../../src/model/gguf/gguf-to-llama.ts';
import { loadGgufTokenizer } from '../../../src/model/gguf/gguf-tokenizer.ts';
import { inspectGguf } from '../../../src/model/gguf/reader.ts';
import type { LlamaModel } from '../../../src/model/llama.ts';
import { selectBackend } from '../../../src/model/tfjs/backend.ts';
import { CORGI_CHAT_TEMPLATE_JINJA, Tokenizer } from '../../../src/model/tokenizer.ts';
import { greedyByForward, maxAbsDiff } from '../../policy/helpers.ts';
import { createExactContext, llamaCppGreedy, llamaCppLogProbs, loadLlamaCppModel } from './llama-cpp.ts';

const BASE = fileURLToPath(new URL('../../../models/base', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'corgi-gguf-base-'));
const F32 = join(dir, 'base-f32.gguf');
const Q8 = join(dir, 'base-q8_0.gguf');
const MESSAGES = [{ role: 'user' as const, content: 'Write a sentence about a dog.' }];

describe('the built-in model as GGUF in llama.cpp', () => {
  const tokenizer = Tokenizer.fromFile(BASE);
  const prompt = tokenizer.applyChatTemplate(MESSAGES, { addGenerationPrompt: true }).ids;
  let ours: LlamaModel;
  let cpp: LlamaCppModel;
  let context: LlamaContext;

  beforeAll(async () => {
    await selectBackend({ preferred: 'wasm', log: () => {} });
    ours = await loadCheckpoint(BASE);
    const f32 = await convertCheckpointToGguf(BASE, F32, { type: 'f32', name: 'corgi-base' });
    expect(f32).toMatchObject({ type: 'f32', tensors: 2 + 9 * 4, mergedAdapter: false });
    await convertCheckpointToGguf(BASE, Q8, { type: 'q8_0' });
    cpp = await loadLlamaCppModel(F32);
    context = await createExactContext(cpp, { contextSize: 256 });
  }, 120_000);
  afterAll(async () => {
    ours?.dispose();
    await context?.dispose();
    await cpp?.dispose();
    rmSync(dir, { recursive: true, force: true });
  });

  it('tokenizes Brown text as our tokenizer does (tokenizer.ggml.pre = gpt-2)', () => {
    const docs = loadBrownCorpus().documentsOf('validation').slice(0, 6);
    let tokens = 0;
    for (const doc of docs) {
      const text = doc.text.slice(0, 6000);
      const ours = tokenizer.encode(text);
      expect(cpp.tokenize(text, true)).toEqual(ours);
      tokens += ours.length;
    }
    // Odd whitespace, digits, contractions and non-ASCII go through the same split too.
    for (const text of [
      "It's 1,234.5 o'clock  --  naïve\tcafé\n\n\nyes!!  ",
      '  leading and trailing  ',
      '¿Qué?',
    ]) {
      expect(cpp.tokenize(text, true)).toEqual(tokenizer.encode(text));
    }
    expect(tokens).toBeGreaterThan(5000);
  });

  it('carries the special tokens and our chat template', async () => {
    const file = await inspectGguf(F32);
    expect(file.metadata['tokenizer.chat_template']).toBe(CORGI_CHAT_TEMPLATE_JINJA);
    expect(cpp.tokens.bos).toBe(tokenizer.bosId);
    expect(cpp.tokens.eos).toBe(tokenizer.eosId);
    expect(cpp.tokenize('<|user|>hi<|end|>', true)).toEqual(
      tokenizer.encode('<|user|>hi<|end|>', { allowSpecial: true }),
    );
  });

  it('loads back into TF.js from the .gguf path: same tokenizer, same greedy reply', async () => {
    const fromGguf = await loadGgufModel(F32);
    try {
      const ggufTokenizer = await loadGgufTokenizer(F32);
      const text = loadBrownCorpus().documentsOf('validation')[0]!.text.slice(0, 3000);
      expect(ggufTokenizer.encode(text)).toEqual(tokenizer.encode(text));
      expect(ggufTokenizer.stopIds).toEqual(tokenizer.stopIds);
      expect(ggufTokenizer.applyChatTemplate(MESSAGES, { addGenerationPrompt: true }).ids).toEqual(prompt);
      expect(greedyByForward(fromGguf.model, [prompt], 12)).toEqual(greedyByForward(ours, [prompt], 12));
    } finally {
      fromGguf.model.dispose();
    }
  });

  it('renders its chat template in node-llama-cpp to the prompt ids our tokenizer builds', async () => {
    const template = (await inspectGguf(F32)).metadata['tokenizer.chat_template'] as string;
    const wrapper = new JinjaTemplateChatWrapper({ template, tokenizer: cpp.tokenizer });
    const { contextText } = wrapper.generateContextState({
      chatHistory: [
        { type: 'user', text: MESSAGES[0]!.content },
        { type: 'model', response: [] },
      ],
    });
    expect(contextText.tokenize(cpp.tokenizer).map(Number)).toEqual(prompt);
  });

  it('greedily generates the tokens the TF.js forward picks', async () => {
    const [expected] = greedyByForward(ours, [prompt], 24);
    const stop = expected!.findIndex((id) => tokenizer.stopIds.includes(id));
    const greedy = stop < 0 ? expected! : expected!.slice(0, stop + 1);
    expect(greedy.length).toBeGreaterThan(3);
    expect(await llamaCppGreedy(context, prompt, greedy.length)).toEqual(greedy);
  });

  it('writes Q8_0 at about a quarter of F32’s size, close to F32 in llama.cpp and in TF.js', async () => {
    expect(statSync(Q8).size / statSync(F32).size).toBeLessThan(0.3);
    const exact = await llamaCppLogProbs(context, prompt);
    const q8 = await loadLlamaCppModel(Q8);
    const q8Context = await createExactContext(q8, { contextSize: 256 });
    try {
      const quantized = await llamaCppLogProbs(q8Context, prompt);
      const drift = maxAbsDiff(quantized.flat(), exact.flat());
      // Q8_0 keeps ~2.5 significant digits per weight, and llama.cpp also rounds activations to Q8_0:
      // measured 0.19 at most over the 4,096 log-probs of every prompt position.
      expect(drift).toBeLessThan(0.4);
      expect(drift).toBeGreaterThan(0); // the file really is quantized
      const { model } = await loadGgufModel(Q8);
      const ids = tf.tensor2d([prompt], undefined, 'int32');
      const logits = model.forward(ids);
      const logProbs = tf.logSoftmax(logits).arraySync() as number[][][];
      // Same dequantized weights, float32 activations in TF.js: measured 0.10 at most.
      expect(maxAbsDiff(logProbs[0]!.flat(), quantized.flat())).toBeLessThan(0.25);
      tf.dispose([ids, logits]);
      model.dispose();
    } finally {
      await q8Context.dispose();
      await q8.dispose();
    }
  });
});
