import { closeSync, copyFileSync, mkdtempSync, openSync, readSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CheckpointError } from '../../src/model/checkpoint.ts';
import { checkGgufFile } from '../../src/policy/gguf-file.ts';
import { loadLlamaCppPolicy } from '../../src/policy/llama-cpp-policy.ts';
import { noteSkip, smollm2GgufPath } from '../support/smollm2.ts';

const dir = mkdtempSync(join(tmpdir(), 'corgi-gguf-check-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A GGUF header announcing `keys` metadata entries that never follow. */
function header(magic: string, version: number, keys = 0): Buffer {
  const bytes = Buffer.alloc(24);
  bytes.write(magic, 0, 'latin1');
  bytes.writeUInt32LE(version, 4);
  bytes.writeBigUInt64LE(BigInt(keys), 16);
  return bytes;
}

describe('checkGgufFile', () => {
  it.each([
    ['a missing file', null, /cannot open \(ENOENT/],
    ['an empty file', Buffer.alloc(0), /file is 0 bytes, shorter than the 4-byte GGUF magic/],
    [
      'a file that is not GGUF',
      Buffer.from('{"not": "a model", "padding": "......"}'),
      /not a GGUF file: it starts with/,
    ],
    ['an unknown GGUF version', header('GGUF', 7), /GGUF version 7 is not supported \(2 and 3 are\)/],
    [
      'a header cut short',
      header('GGUF', 3, 5),
      /metadata count 5 needs at least \d+ bytes but the 24-byte file/,
    ],
  ])('refuses %s with the reason', async (_name, bytes, reason) => {
    const file = join(dir, `${Math.random().toString(36).slice(2)}.gguf`);
    if (bytes) writeFileSync(file, bytes);
    const error = await checkGgufFile(file).catch((e) => e);
    expect(CheckpointError.isInstance(error)).toBe(true);
    expect(error.message).toMatch(reason);
  });
});

const path = smollm2GgufPath();
noteSkip('checkGgufFile on SmolLM2', path);

describe.skipIf(!path)('checkGgufFile on SmolLM2', () => {
  it('reads the real file: flat metadata and every tensor inside the file', async () => {
    const checked = await checkGgufFile(path!);
    expect(checked.metadata['general.architecture']).toBe('llama');
    expect(checked.metadata['tokenizer.ggml.pre']).toBe('smollm');
    expect(checked.tensorCount).toBeGreaterThan(200);
  });

  it('refuses a truncated download before llama.cpp reads it, and loading fails cleanly', async () => {
    const truncated = join(dir, 'truncated.gguf');
    const source = openSync(path!, 'r');
    const bytes = Buffer.alloc(20 * 1024 * 1024);
    readSync(source, bytes, 0, bytes.length, 0);
    closeSync(source);
    writeFileSync(truncated, bytes);
    await expect(checkGgufFile(truncated)).rejects.toThrow(
      /tensor \S+: data ends at byte \d+ but the file has 20971520/,
    );
    await expect(loadLlamaCppPolicy({ modelPath: truncated, version: 'cut' })).rejects.toThrow(
      CheckpointError,
    );
  });

  it('refuses a model file given as a LoRA adapter', async () => {
    const copy = join(dir, 'not-an-adapter.gguf');
    copyFileSync(path!, copy);
    await expect(
      loadLlamaCppPolicy({ modelPath: path!, version: 'x', adapters: [{ path: copy }] }),
    ).rejects.toThrow(/is not a LoRA adapter GGUF \(general.type "model"/);
  });
});
