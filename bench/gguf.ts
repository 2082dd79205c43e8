/**
 * `npm run bench:gguf -- [file.gguf]`: how long reading a GGUF header and dequantizing every
 * tensor to float32 take, one tensor at a time. Prints JSON.
 *
 * The file defaults to `CORGI_SMOLLM2_GGUF`, then the store's smollm2-135m-instruct.
 *   --repeat N   dequantize the whole file N times and report the fastest (default 1)
 */
import { existsSync, readdirSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { dequantize } from '../src/model/gguf/dequantize.ts';
import { ggmlTypeName } from '../src/model/gguf/ggml-types.ts';
import { countElements, inspectGguf, readTensorBytes } from '../src/model/gguf/reader.ts';

function findDefaultFile(): string | undefined {
  if (process.env.CORGI_SMOLLM2_GGUF) return process.env.CORGI_SMOLLM2_GGUF;
  const dir = join(process.env.CORGI_DATA_DIR ?? 'data', 'models', 'smollm2-135m-instruct');
  const file = existsSync(dir) ? readdirSync(dir).find((name) => name.endsWith('.gguf')) : undefined;
  return file ? join(dir, file) : undefined;
}

const { values: options, positionals } = parseArgs({
  options: { repeat: { type: 'string', default: '1' } },
  allowPositionals: true,
});
const path = positionals[0] ?? findDefaultFile();
if (!path) {
  console.error('usage: npm run bench:gguf -- <file.gguf> (or set CORGI_SMOLLM2_GGUF)');
  process.exit(2);
}
const repeat = Math.max(1, Number(options.repeat));

const headerStart = performance.now();
const file = await inspectGguf(path);
const headerMs = performance.now() - headerStart;

const handle = await open(path, 'r');
let readMs = 0;
let best = Number.POSITIVE_INFINITY;
let byType: Record<string, { tensors: number; values: number; ms: number }> = {};
try {
  for (let round = 0; round < repeat; round++) {
    const rounds: typeof byType = {};
    let total = 0;
    for (const info of file.tensors) {
      const readStart = performance.now();
      const bytes = await readTensorBytes(handle, info);
      if (round === 0) readMs += performance.now() - readStart;
      const start = performance.now();
      const values = dequantize(info.type, bytes, countElements(info));
      const ms = performance.now() - start;
      total += ms;
      const type = ggmlTypeName(info.type) ?? String(info.type);
      rounds[type] ??= { tensors: 0, values: 0, ms: 0 };
      const entry = rounds[type];
      entry.tensors += 1;
      entry.values += values.length;
      entry.ms += ms;
    }
    if (total < best) {
      best = total;
      byType = rounds;
    }
  }
} finally {
  await handle.close();
}

const values = file.tensors.reduce((n, t) => n + countElements(t), 0);
const round1 = (x: number) => Math.round(x * 10) / 10;
console.log(
  JSON.stringify(
    {
      file: path,
      bytes: file.fileSize,
      tensors: file.tensors.length,
      values,
      header_ms: round1(headerMs),
      read_ms: round1(readMs),
      dequantize_ms: round1(best),
      dequantize_values_per_s: Math.round(values / (best / 1000)),
      by_type: Object.fromEntries(
        Object.entries(byType).map(([type, e]) => [
          type,
          { ...e, ms: round1(e.ms), values_per_s: Math.round(e.values / (e.ms / 1000)) },
        ]),
      ),
    },
    null,
    2,
  ),
);
