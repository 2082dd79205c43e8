/**
 * Checking a Hugging Face Llama directory (config.json, model.safetensors, tokenizer.json) before
 * the store takes it, and summarising it for a manifest.
 */
import { open, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import type { ModelFileEntry, ModelManifest } from './manifest.ts';
import { ModelStoreError } from './model-store-error.ts';

/** The files a Llama directory must have. */
export const HF_REQUIRED_FILES = ['config.json', 'model.safetensors', 'tokenizer.json'] as const;
/** Files copied along when present. */
export const HF_OPTIONAL_FILES = [
  'tokenizer_config.json',
  'generation_config.json',
  'special_tokens_map.json',
] as const;

const llamaConfigSchema = z.object({
  model_type: z.string().optional(),
  architectures: z.array(z.string()).optional(),
  hidden_size: z.number().int().positive(),
  num_hidden_layers: z.number().int().positive(),
  num_attention_heads: z.number().int().positive(),
  vocab_size: z.number().int().positive(),
});

/** Weight dtypes the trainer loads from safetensors. */
const SAFETENSORS_DTYPES = new Set(['F32', 'F16', 'BF16']);

export interface HfSummary {
  architecture: string;
  chatTemplate: string | null;
  parameters: number;
  /** The dtype of most weights ("BF16"). */
  quantization: string;
}

function invalid(path: string, reason: string): ModelStoreError {
  return new ModelStoreError('invalid_input', `${path}: ${reason}`);
}

async function readJson(path: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    throw invalid(path, `cannot read (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`);
  }
  try {
    return JSON.parse(text);
  } catch (error) {
    throw invalid(path, `not JSON (${(error as Error).message})`);
  }
}

/** Element counts by dtype from a safetensors header, with every tensor's bytes inside the file. */
async function readSafetensorsHeader(path: string): Promise<Map<string, number>> {
  const handle = await open(path, 'r').catch((error) => {
    throw invalid(path, `cannot open (${(error as NodeJS.ErrnoException).code})`);
  });
  try {
    const { size } = await handle.stat();
    const lengthBytes = Buffer.alloc(8);
    if (size < 8 || (await handle.read(lengthBytes, 0, 8, 0)).bytesRead < 8) {
      throw new ModelStoreError('truncated', `${path}: too short for a safetensors header`);
    }
    const headerLength = Number(lengthBytes.readBigUInt64LE(0));
    if (headerLength > 100_000_000 || 8 + headerLength > size) {
      throw new ModelStoreError(
        'truncated',
        `${path}: header of ${headerLength} bytes does not fit in ${size}`,
      );
    }
    const header = Buffer.alloc(headerLength);
    await handle.read(header, 0, headerLength, 8);
    let entries: Record<string, { dtype?: string; shape?: number[]; data_offsets?: [number, number] }>;
    try {
      entries = JSON.parse(header.toString('utf8'));
    } catch (error) {
      throw invalid(path, `safetensors header is not JSON (${(error as Error).message})`);
    }
    const counts = new Map<string, number>();
    for (const [name, entry] of Object.entries(entries)) {
      if (name === '__metadata__') continue;
      if (!entry.dtype || !SAFETENSORS_DTYPES.has(entry.dtype)) {
        throw new ModelStoreError(
          'unsupported_quantization',
          `${path}: tensor ${name} is ${entry.dtype}; supported: ${[...SAFETENSORS_DTYPES].join(', ')}`,
        );
      }
      const end = entry.data_offsets?.[1] ?? 0;
      if (8 + headerLength + end > size) {
        throw new ModelStoreError(
          'truncated',
          `${path}: tensor ${name} ends at byte ${8 + headerLength + end} of ${size}`,
        );
      }
      const elements = (entry.shape ?? []).reduce((a, b) => a * b, 1);
      counts.set(entry.dtype, (counts.get(entry.dtype) ?? 0) + elements);
    }
    if (counts.size === 0) throw invalid(path, 'holds no tensors');
    return counts;
  } finally {
    await handle.close();
  }
}

/**
 * Checks that `dir` holds a Llama model in Hugging Face layout and summarises it.
 * @throws ModelStoreError `invalid_input` naming the missing or bad file, `truncated`, `unsupported_quantization`
 */
export async function checkHfDirectory(dir: string): Promise<HfSummary> {
  const config = llamaConfigSchema.safeParse(await readJson(join(dir, 'config.json')));
  if (!config.success) {
    const issue = config.error.issues[0];
    throw invalid(
      join(dir, 'config.json'),
      `not a LlamaConfig (${issue?.path.join('.')}: ${issue?.message})`,
    );
  }
  const architecture = config.data.architectures?.[0] ?? config.data.model_type ?? 'llama';
  if (config.data.model_type !== 'llama' && !architecture.startsWith('Llama')) {
    throw invalid(join(dir, 'config.json'), `model_type "${config.data.model_type}" is not llama`);
  }
  const tokenizer = await readJson(join(dir, 'tokenizer.json'));
  if (typeof tokenizer !== 'object' || tokenizer === null || !('model' in tokenizer)) {
    throw invalid(join(dir, 'tokenizer.json'), 'not a tokenizers file (no "model")');
  }
  const counts = await readSafetensorsHeader(join(dir, 'model.safetensors'));
  let chatTemplate: string | null = null;
  try {
    const tokenizerConfig = JSON.parse(await readFile(join(dir, 'tokenizer_config.json'), 'utf8')) as {
      chat_template?: unknown;
    };
    if (typeof tokenizerConfig.chat_template === 'string') chatTemplate = tokenizerConfig.chat_template;
  } catch {
    // tokenizer_config.json is optional; without it the model has no chat template.
  }
  const dominant = [...counts.entries()].sort((a, b) => b[1] - a[1])[0][0];
  return {
    architecture,
    chatTemplate,
    parameters: [...counts.values()].reduce((a, b) => a + b, 0),
    quantization: dominant,
  };
}

/** The manifest of an HF Llama directory: identified by its weights file, described by its summary. */
export function hfDirectoryManifest({
  name,
  source,
  files,
  summary,
  createdAt = new Date().toISOString(),
}: {
  name: string;
  source: string;
  files: ModelFileEntry[];
  summary: HfSummary;
  createdAt?: string;
}): ModelManifest {
  const weights = files.find((file) => file.path === 'model.safetensors');
  if (!weights) throw new ModelStoreError('invalid_input', `${name}: no model.safetensors among its files`);
  return {
    name,
    source,
    sha256: weights.sha256,
    size: weights.size,
    format: 'hf',
    file: weights.path,
    chatTemplate: summary.chatTemplate,
    parameters: summary.parameters,
    architecture: summary.architecture,
    quantization: summary.quantization,
    files,
    createdAt,
  };
}
