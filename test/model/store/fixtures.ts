/**
 * Test material for the model store: a minimal valid GGUF built byte by byte, a stand-in for the
 * Hub's `resolve` endpoint on loopback, and a wheel in a local PyPI index.
 */

import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import {
  GGML_BLOCK_LAYOUT,
  GGUF_MAGIC,
  GgmlType,
  GgufValueType,
} from '../../../src/model/gguf/ggml-types.ts';

function u32(value: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(value);
  return b;
}
function u64(value: number): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(BigInt(value));
  return b;
}
function str(text: string): Buffer {
  const bytes = Buffer.from(text, 'utf8');
  return Buffer.concat([u64(bytes.length), bytes]);
}

export const TINY_CHAT_TEMPLATE =
  "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}";

/**
 * A GGUF v3 file with llama metadata and one tensor `token_embd.weight` of `rows`×`cols` in `type`
 * (F32 values 0, 0.5, 1, … ; other types zero-filled blocks).
 * @default type F32, rows 64, cols 256
 */
export function buildTinyGguf({ type = GgmlType.F32 as number, rows = 64, cols = 256 } = {}): Buffer {
  const header = Buffer.concat([
    u32(GGUF_MAGIC),
    u32(3),
    u64(1),
    u64(3),
    str('general.architecture'),
    u32(GgufValueType.STRING),
    str('llama'),
    str('general.alignment'),
    u32(GgufValueType.UINT32),
    u32(32),
    str('tokenizer.chat_template'),
    u32(GgufValueType.STRING),
    str(TINY_CHAT_TEMPLATE),
    str('token_embd.weight'),
    u32(2),
    u64(cols),
    u64(rows),
    u32(type),
    u64(0),
  ]);
  const padded = Buffer.concat([header, Buffer.alloc((32 - (header.length % 32)) % 32)]);
  const layout = GGML_BLOCK_LAYOUT[type as GgmlType];
  const data = Buffer.alloc(((rows * cols) / layout.elements) * layout.bytes);
  if (type === GgmlType.F32) for (let i = 0; i < rows * cols; i++) data.writeFloatLE(i / 2, i * 4);
  return Buffer.concat([padded, data]);
}

/**
 * The files of a tiny HF Llama directory: config.json, a model.safetensors of two tensors in
 * `dtype` (its last `cut` bytes missing), tokenizer.json and tokenizer_config.json with a template.
 * @default dtype 'BF16', cut 0
 */
export function buildHfFiles({ dtype = 'BF16', cut = 0 } = {}): Record<string, Buffer> {
  const config = {
    architectures: ['LlamaForCausalLM'],
    model_type: 'llama',
    hidden_size: 8,
    num_hidden_layers: 1,
    num_attention_heads: 2,
    vocab_size: 16,
  };
  const header = Buffer.from(
    JSON.stringify({
      'model.embed_tokens.weight': { dtype, shape: [16, 8], data_offsets: [0, 256] },
      'model.norm.weight': { dtype, shape: [8], data_offsets: [256, 272] },
    }),
  );
  const length = Buffer.alloc(8);
  length.writeBigUInt64LE(BigInt(header.length));
  return {
    'config.json': Buffer.from(JSON.stringify(config)),
    'model.safetensors': Buffer.concat([length, header, Buffer.alloc(272 - cut, 7)]),
    'tokenizer.json': Buffer.from(JSON.stringify({ model: { type: 'BPE', vocab: {}, merges: [] } })),
    'tokenizer_config.json': Buffer.from(JSON.stringify({ chat_template: TINY_CHAT_TEMPLATE })),
  };
}

export function sha256(bytes: Buffer): string {
  return createHash('sha256').update(bytes).digest('hex');
}

export interface HubFile {
  data: Buffer;
  /** @default `"<sha256 of data>"` (an LFS file's ETag) */
  etag?: string;
  /** When set, requests without `Authorization: Bearer <token>` get 401 (a gated repo). */
  token?: string;
}

export interface StandInHub {
  url: string;
  /** The Range header of every GET, in order ('' when absent). */
  ranges: string[];
  /** Cut the connection after this many body bytes on the next body request (not the 0-0 probe). */
  cutNextAfter(bytes: number): void;
  close(): Promise<void>;
}

/**
 * A loopback server answering `/<owner>/<repo>/resolve/<revision>/<file>` as the Hub does for an
 * LFS file: ETag, X-Repo-Commit, Range → 206 with Content-Range, 404 with X-Error-Code.
 */
export async function startStandInHub(
  files: Record<string, HubFile>,
  commit = 'c0ffee'.padEnd(40, '0'),
): Promise<StandInHub> {
  const ranges: string[] = [];
  let cutAfter: number | undefined;
  const handle = (request: IncomingMessage, response: ServerResponse) => {
    const match = /^\/([^/]+\/[^/]+)\/resolve\/([^/]+)\/(.+)$/.exec(
      decodeURIComponent(request.url ?? '').split('?')[0],
    );
    const file = match ? files[`${match[1]}/${match[3]}`] : undefined;
    if (!file) {
      response.writeHead(404, { 'X-Error-Code': 'EntryNotFound', 'Content-Type': 'text/plain' });
      response.end('Entry not found');
      return;
    }
    if (file.token && request.headers.authorization !== `Bearer ${file.token}`) {
      response.writeHead(401, { 'Content-Type': 'text/plain' });
      response.end('Access to this repository is restricted');
      return;
    }
    const size = file.data.length;
    const headers: Record<string, string> = {
      ETag: file.etag ?? `"${sha256(file.data)}"`,
      'X-Repo-Commit': commit,
      'Accept-Ranges': 'bytes',
      'Content-Type': 'application/octet-stream',
    };
    const range = request.headers.range ?? '';
    if (request.method === 'GET') ranges.push(range);
    let start = 0;
    let end = size - 1;
    let status = 200;
    const parsed = /^bytes=(\d+)-(\d*)$/.exec(range);
    if (parsed) {
      start = Number(parsed[1]);
      end = parsed[2] === '' ? size - 1 : Math.min(Number(parsed[2]), size - 1);
      status = 206;
      headers['Content-Range'] = `bytes ${start}-${end}/${size}`;
    }
    const body = file.data.subarray(start, end + 1);
    headers['Content-Length'] = String(body.length);
    response.writeHead(status, headers);
    if (request.method === 'HEAD') return response.end();
    if (cutAfter !== undefined && body.length > 1) {
      const keep = cutAfter;
      cutAfter = undefined;
      response.write(body.subarray(0, keep), () => setTimeout(() => response.socket?.destroy(), 20));
      return;
    }
    response.end(body);
  };
  const server: Server = createServer(handle);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    ranges,
    cutNextAfter: (bytes) => {
      cutAfter = bytes;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/**
 * A PEP 503 index under `root/simple` holding one wheel of `pkg==version` whose member `member`
 * is `data`; returns the index URL (file://) for PIP_INDEX_URL.
 */
export function buildLocalIndex(
  root: string,
  { pkg, version, member, data }: { pkg: string; version: string; member: string; data: Buffer },
): string {
  const dist = pkg.replace(/[-_.]+/g, '_');
  const wheelName = `${dist}-${version}-py3-none-any.whl`;
  const payload = join(root, 'payload.bin');
  mkdirSync(join(root, 'simple', pkg), { recursive: true });
  writeFileSync(payload, data);
  const script = `
import sys, zipfile
wheel, member, payload, dist, name, version = sys.argv[1:]
info = f"{dist}-{version}.dist-info"
with zipfile.ZipFile(wheel, "w", zipfile.ZIP_DEFLATED) as z:
    z.write(payload, member)
    z.writestr(f"{info}/METADATA", f"Metadata-Version: 2.1\\nName: {name}\\nVersion: {version}\\n")
    z.writestr(f"{info}/WHEEL", "Wheel-Version: 1.0\\nGenerator: corgi-test\\nRoot-Is-Purelib: true\\nTag: py3-none-any\\n")
    z.writestr(f"{info}/RECORD", "")
`;
  const result = spawnSync(
    'python3',
    ['-c', script, join(root, wheelName), member, payload, dist, pkg, version],
    {
      encoding: 'utf8',
    },
  );
  if (result.status !== 0) throw new Error(`building the wheel failed: ${result.stderr}`);
  writeFileSync(
    join(root, 'simple', pkg, 'index.html'),
    `<!DOCTYPE html><html><body><a href="../../${wheelName}">${wheelName}</a></body></html>\n`,
  );
  return pathToFileURL(join(root, 'simple')).href;
}

/** An environment where pip sees only `indexUrl` (no user or site configuration, no cache). */
export function isolatedPipEnv(indexUrl: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const key of Object.keys(env)) if (key.startsWith('PIP_')) delete env[key];
  return {
    ...env,
    PIP_CONFIG_FILE: '/dev/null',
    PIP_INDEX_URL: indexUrl,
    PIP_NO_CACHE_DIR: '1',
    PIP_DISABLE_PIP_VERSION_CHECK: '1',
  };
}
