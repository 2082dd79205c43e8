/**
 * `corgi bench --policy <gguf>`: generation throughput of `LlamaCppPolicy` against a bare
 * node-llama-cpp decode loop (the peer) on the same file, threads and prompt ids, in the same run:
 *   {"engine": "llama.cpp", "model", "gen_tokens_per_s_b1", "gen_tokens_per_s_b32",
 *    "peer_gen_tokens_per_s_b1", "peer_gen_tokens_per_s_b32"}
 *
 * - Prompts: B chat prompts rendered by our tokenizer; the peer evaluates the same ids.
 * - Work: greedy decoding of up to `tokens` new tokens per sequence, all B at once (one context
 *   with B sequences); both stop a sequence at an end-of-generation token. Tokens/s = generated
 *   tokens / wall time, prompt prefill included.
 * - Fairness: each measured run gets a fresh context (ours through a fresh policy), so neither
 *   side reuses a cached prompt prefix; ours and the peer's runs alternate, and the median of
 *   `rounds` runs is reported (the machine is shared).
 */
import { existsSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join, resolve } from 'node:path';
import type { LlamaModel, Token } from 'node-llama-cpp';
import { trainBpe } from '../model/bpe-trainer.ts';
import { writeLlamaGguf } from '../model/gguf/checkpoint-to-gguf.ts';
import type { LlamaModel as TfLlamaModel } from '../model/llama.ts';
import { Tokenizer } from '../model/tokenizer.ts';
import { loadLlamaCppPolicy } from './llama-cpp-policy.ts';
import { acquireModel } from './llama-runtime.ts';

export interface LlamaBenchOptions {
  /** A GGUF file, a directory holding one, or a model store name (`$CORGI_DATA_DIR/models/<name>`). */
  policy: string;
  /** CPU threads for both sides. @default 1 */
  threads?: number;
  /** New tokens per sequence. @default 64 */
  tokens?: number;
  /** Measured runs per side and batch size; the median counts. @default 3 */
  rounds?: number;
  /** Progress lines. @default stderr */
  log?: (line: string) => void;
  /** The model store's root, for a store name. @default 'data' */
  dataDir?: string;
}

export interface LlamaBenchResult {
  engine: 'llama.cpp';
  model: string;
  gen_tokens_per_s_b1: number;
  gen_tokens_per_s_b32: number;
  peer_gen_tokens_per_s_b1: number;
  peer_gen_tokens_per_s_b32: number;
}

const SUBJECTS = [
  'a river',
  'a lantern',
  'a dog in a park',
  'the sea',
  'a mountain town',
  'an old clock',
  'winter',
  'a library',
];

/**
 * The GGUF file a policy spec names: the file itself, the only `.gguf` in a directory, or the
 * only one in the store's `<data dir>/models/<name>/`.
 * @throws Error naming the spec and what was looked for
 */
export function resolveGgufPath(spec: string, dataDir = 'data'): string {
  const candidates = [resolve(spec), join(resolve(dataDir), 'models', spec)];
  for (const candidate of candidates) {
    if (!existsSync(candidate)) continue;
    if (statSync(candidate).isFile()) return candidate;
    const ggufs = readdirSync(candidate).filter((name) => name.endsWith('.gguf'));
    if (ggufs.length === 1) return join(candidate, ggufs[0]!);
    if (ggufs.length > 1)
      throw new Error(
        `--policy: ${candidate} holds ${ggufs.length} GGUF files (${ggufs.join(', ')}); name one`,
      );
  }
  throw new Error(
    `--policy: "${spec}" is neither a GGUF file, a directory with one, nor a model in ${join(dataDir, 'models')}`,
  );
}

function benchPrompts(tokenizer: Tokenizer, count: number): number[][] {
  return Array.from({ length: count }, (_, i) => {
    const subject = SUBJECTS[i % SUBJECTS.length]!;
    const content = `Write a short story (story ${i + 1}) about ${subject}.`;
    return tokenizer.applyChatTemplate([{ role: 'user', content }], { addGenerationPrompt: true }).ids;
  });
}

/** Tokens/s of the peer: B sequences of one fresh context, each a plain `evaluate` loop. */
async function runPeer(
  model: LlamaModel,
  prompts: number[][],
  tokens: number,
  threads: number,
  contextSize: number,
) {
  const context = await model.createContext({
    sequences: prompts.length,
    contextSize,
    threads,
    failedCreationRemedy: false,
  });
  try {
    const sequences = prompts.map(() => context.getSequence());
    const started = performance.now();
    const counts = await Promise.all(
      prompts.map(async (ids, b) => {
        let n = 0;
        // evaluate stops by itself at an end-of-generation token.
        for await (const _token of sequences[b]!.evaluate(ids as Token[], { temperature: 0 })) {
          if (++n >= tokens) break;
        }
        return n;
      }),
    );
    return counts.reduce((a, b) => a + b, 0) / ((performance.now() - started) / 1000);
  } finally {
    await context.dispose();
  }
}

/** Tokens/s of our path: B concurrent `LlamaCppPolicy.generate` calls on a fresh policy. */
async function runOurs(
  modelPath: string,
  tokenizer: Tokenizer,
  prompts: number[][],
  tokens: number,
  threads: number,
  contextSize: number,
) {
  const policy = await loadLlamaCppPolicy({
    modelPath,
    version: 'bench',
    sequences: prompts.length,
    contextSize,
    threads,
    tokenizer,
  });
  try {
    // The same ids as the peer: bypass the chat template by handing the policy pre-rendered prompts.
    const started = performance.now();
    const counts = await Promise.all(
      prompts.map(async (ids) => {
        const stream = policy.generateFromIds(ids, { temperature: 0, maxTokens: tokens });
        for (;;) {
          const next = await stream.next();
          if (next.done) return next.value.tokenIds.length;
        }
      }),
    );
    return counts.reduce((a, b) => a + b, 0) / ((performance.now() - started) / 1000);
  } finally {
    await policy.dispose();
  }
}

function median(xs: number[]): number {
  const sorted = [...xs].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** Runs the benchmark and returns the contract's JSON object. */
export async function runLlamaBench(options: LlamaBenchOptions): Promise<LlamaBenchResult> {
  const log = options.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const threads = options.threads ?? 1;
  const tokens = options.tokens ?? 64;
  const rounds = options.rounds ?? 3;
  const modelPath = resolveGgufPath(options.policy, options.dataDir);
  // A policy loads the model and the tokenizer once; every run below reuses both.
  const probe = await loadLlamaCppPolicy({
    modelPath,
    version: 'bench',
    sequences: 1,
    contextSize: 256,
    threads,
  });
  const lease = await acquireModel(modelPath);
  const { tokenizer } = probe;
  await probe.dispose();
  try {
    const result: Record<string, number> = {};
    for (const batch of [1, 32]) {
      const prompts = benchPrompts(tokenizer, batch);
      const contextSize = Math.max(...prompts.map((p) => p.length)) + tokens + 16;
      const ours: number[] = [];
      const peer: number[] = [];
      await runPeer(lease.model, prompts, Math.min(tokens, 4), threads, contextSize); // warm-up
      for (let round = 0; round < rounds; round++) {
        ours.push(await runOurs(modelPath, tokenizer, prompts, tokens, threads, contextSize));
        peer.push(await runPeer(lease.model, prompts, tokens, threads, contextSize));
      }
      log(
        `bench: batch ${batch}: ours ${ours.map((x) => x.toFixed(1)).join(' ')} tokens/s, peer ${peer.map((x) => x.toFixed(1)).join(' ')} tokens/s`,
      );
      const round1 = (x: number) => Math.round(x * 10) / 10;
      result[`gen_tokens_per_s_b${batch}`] = round1(median(ours));
      result[`peer_gen_tokens_per_s_b${batch}`] = round1(median(peer));
    }
    return {
      engine: 'llama.cpp',
      model: basename(modelPath),
      gen_tokens_per_s_b1: result.gen_tokens_per_s_b1!,
      gen_tokens_per_s_b32: result.gen_tokens_per_s_b32!,
      peer_gen_tokens_per_s_b1: result.peer_gen_tokens_per_s_b1!,
      peer_gen_tokens_per_s_b32: result.peer_gen_tokens_per_s_b32!,
    };
  } finally {
    await lease.release();
  }
}

export interface ModelGenerationOptions {
  /** Prompt tokens per sequence (random ids from a byte-level tokenizer). @default 8 */
  promptLength?: number;
  /** Seed of the prompts. @default 0 */
  seed?: number;
  /** Measured runs per batch size; the median counts. @default 3 */
  rounds?: number;
  /** CPU threads. @default 1 */
  threads?: number;
  log?: (line: string) => void;
}

/**
 * `corgi bench`'s generation numbers: greedy decoding of a TensorFlow.js model on llama.cpp, the
 * engine that serves. The model is written as a GGUF F32 file (with a byte-level BPE tokenizer, the
 * ids past it padded and never sampled) and decoded through `LlamaCppPolicy` from random prompts up
 * to the model's context length, at 1 and 32 sequences. Tokens/s = generated tokens / wall time,
 * prefill included; each run gets a fresh policy (no cached prefix).
 * @throws RangeError when the vocabulary is smaller than the byte-level tokenizer
 */
export async function benchModelGeneration(
  model: TfLlamaModel,
  { promptLength = 8, seed = 0, rounds = 3, threads = 1, log = () => {} }: ModelGenerationOptions = {},
): Promise<{ gen_tokens_per_s_b1: number; gen_tokens_per_s_b32: number }> {
  const json = trainBpe({ texts: ['The dog ran in the park.', 'A lantern by the river.'], vocabSize: 300 });
  const tokenizer = new Tokenizer(json);
  const V = model.config.vocab_size;
  if (tokenizer.vocabSize > V)
    throw new RangeError(
      `vocab_size ${V} is below the ${tokenizer.vocabSize} ids of the byte-level tokenizer generation is measured with`,
    );
  const contextSize = model.config.max_position_embeddings;
  const tokens = contextSize - 1 - promptLength; // a sequence keeps one free cell
  if (tokens < 1)
    throw new RangeError(`ctx ${contextSize} leaves no room after a ${promptLength}-token prompt`);
  const dir = mkdtempSync(join(tmpdir(), 'corgi-bench-gguf-'));
  const modelPath = join(dir, 'bench.gguf');
  try {
    await writeLlamaGguf(model, tokenizer, modelPath, { name: 'corgi-bench' });
    const specials = json.added_tokens.length; // ids 0..specials-1: role markers and the like
    let state = (seed * 2654435761 + 7) >>> 0 || 1;
    const randomId = () => {
      state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
      return specials + (state % (tokenizer.vocabSize - specials));
    };
    const result: Record<string, number> = {};
    for (const batch of [1, 32]) {
      const prompts = Array.from({ length: batch }, () => Array.from({ length: promptLength }, randomId));
      await runOurs(modelPath, tokenizer, prompts, 2, threads, contextSize); // warm-up
      const runs: number[] = [];
      for (let round = 0; round < rounds; round++)
        runs.push(await runOurs(modelPath, tokenizer, prompts, tokens, threads, contextSize));
      log(`bench: llama.cpp greedy, batch ${batch}: ${runs.map((x) => x.toFixed(1)).join(' ')} tokens/s`);
      result[`b${batch}`] = Math.round(median(runs) * 10) / 10;
    }
    return { gen_tokens_per_s_b1: result.b1!, gen_tokens_per_s_b32: result.b32! };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
