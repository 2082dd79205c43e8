/**
 * llama.cpp (node-llama-cpp, CPU build) for the GGUF tests: next-token log-probabilities and greedy
 * continuations of token ids. Contexts use an F32 KV cache and no flash attention: both default to
 * f16 arithmetic on CPU (~1e-3 in log-probabilities), which would hide a real mismatch at 1e-4.
 */
import {
  getLlama,
  type Llama,
  type LlamaContext,
  type LlamaContextSequence,
  LlamaLogLevel,
  type LlamaModel,
  type Token,
} from 'node-llama-cpp';

let llama: Promise<Llama> | null = null;

/** One CPU llama.cpp per test file, quiet. */
export function cpuLlama(): Promise<Llama> {
  llama ??= getLlama({ gpu: false, build: 'never', logLevel: LlamaLogLevel.error });
  return llama;
}

export async function loadLlamaCppModel(path: string): Promise<LlamaModel> {
  return (await cpuLlama()).loadModel({ modelPath: path });
}

/** Exact sampling settings: full-vocabulary softmax of the raw logits. */
const RAW = { temperature: 1, topK: 0, topP: 1, minP: 0 };

export interface ExactContextOptions {
  /** LoRA adapter GGUFs applied by the context. */
  lora?: { filePath: string; scale: number }[];
  /** CPU threads; one keeps a busy shared machine from stalling on spinning threads. @default 1 */
  threads?: number;
  /** Context window. @default 64 */
  contextSize?: number;
}

/** A context computing in float32 throughout (see above). */
export function createExactContext(
  model: LlamaModel,
  options: ExactContextOptions = {},
): Promise<LlamaContext> {
  const contextSize = options.contextSize ?? 64;
  return model.createContext({
    contextSize,
    batchSize: contextSize,
    threads: options.threads ?? 1,
    flashAttention: false,
    experimentalKvCacheKeyType: 'F32',
    experimentalKvCacheValueType: 'F32',
    ...(options.lora ? { lora: { adapters: options.lora } } : {}),
  });
}

async function withSequence<T>(
  context: LlamaContext,
  run: (sequence: LlamaContextSequence) => Promise<T>,
): Promise<T> {
  const sequence = context.getSequence();
  try {
    return await run(sequence);
  } finally {
    sequence.dispose();
  }
}

/** log p(next token | ids[..=t]) over the vocabulary, for every position t: [T][V]. */
export async function llamaCppLogProbs(context: LlamaContext, ids: readonly number[]): Promise<number[][]> {
  return withSequence(context, async (sequence) => {
    const results = await sequence.controlledEvaluate(
      ids.map((id) => [id as Token, { generateNext: { probabilities: true, options: RAW } }]),
    );
    return results.map((result, t) => {
      const probabilities = result?.next.probabilities;
      if (!probabilities) throw new Error(`llama.cpp returned no probabilities at position ${t}`);
      // topK 0 keeps every token, so the map covers the whole vocabulary.
      const row: number[] = [];
      for (let v = 0; v < probabilities.size; v++) row.push(Math.log(probabilities.get(v as Token) ?? 0));
      return row;
    });
  });
}

/** The greedy continuation of `ids`, `count` tokens (end-of-generation tokens included). */
export async function llamaCppGreedy(
  context: LlamaContext,
  ids: readonly number[],
  count: number,
): Promise<number[]> {
  return withSequence(context, async (sequence) => {
    const out: number[] = [];
    let input = [...ids];
    while (out.length < count) {
      const last = input.length - 1;
      const results = await sequence.controlledEvaluate(
        input.map((id, i) =>
          i === last
            ? [id as Token, { generateNext: { token: true, options: { temperature: 0 } } }]
            : (id as Token),
        ),
      );
      const token = results[last]?.next.token;
      if (token == null) throw new Error(`llama.cpp generated no token after ${out.length}`);
      out.push(token);
      input = [token];
    }
    return out;
  });
}

/** log_softmax over the last axis of [..][V] logits. */
export function logSoftmax(logits: ArrayLike<number>): number[] {
  let max = Number.NEGATIVE_INFINITY;
  for (let i = 0; i < logits.length; i++) max = Math.max(max, logits[i]!);
  let sum = 0;
  for (let i = 0; i < logits.length; i++) sum += Math.exp(logits[i]! - max);
  const lse = max + Math.log(sum);
  return Array.from(logits, (v) => v - lse);
}
