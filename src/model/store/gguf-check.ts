/**
 * What the store needs to know about a GGUF file before it installs it: that the GGUF reader
 * accepts its header and tensor table, that every tensor type is one the product dequantizes, and
 * the metadata a manifest records.
 */
import { DEQUANTIZABLE_TYPES } from '../gguf/dequantize.ts';
import { ggmlTypeName } from '../gguf/ggml-types.ts';
import { GgufError, type GgufFile, inspectGguf } from '../gguf/reader.ts';
import { ModelStoreError, type ModelStoreErrorCode } from './model-store-error.ts';

/** Tensor types the product dequantizes (and llama.cpp serves). */
export const SUPPORTED_TENSOR_TYPES: ReadonlySet<number> = new Set(DEQUANTIZABLE_TYPES);

export interface GgufSummary {
  version: number;
  architecture?: string;
  chatTemplate: string | null;
  /** Elements of every tensor. */
  parameters: number;
  /** The tensor type holding the most elements ("Q4_1"). */
  quantization: string;
  tensorCount: number;
}

const CODES: Record<GgufError['code'], ModelStoreErrorCode> = {
  bad_magic: 'corrupt_gguf',
  unsupported_version: 'corrupt_gguf',
  corrupt: 'corrupt_gguf',
  incomplete: 'corrupt_gguf',
  truncated: 'truncated',
  unsupported_type: 'unsupported_quantization',
  io: 'invalid_input',
};

function supportedNames(): string {
  return [...SUPPORTED_TENSOR_TYPES].map((type) => ggmlTypeName(type)).join(', ');
}

/** Summarises a header the reader accepted, refusing tensor types the product cannot dequantize. */
export function summarizeGguf(path: string, file: GgufFile): GgufSummary {
  const counts = new Map<number, number>();
  let parameters = 0;
  for (const tensor of file.tensors) {
    if (!SUPPORTED_TENSOR_TYPES.has(tensor.type)) {
      throw new ModelStoreError(
        'unsupported_quantization',
        `${path}: tensor ${tensor.name} is ${ggmlTypeName(tensor.type) ?? `type ${tensor.type}`}; supported: ${supportedNames()}`,
      );
    }
    const elements = tensor.dims.reduce((a, b) => a * b, 1);
    counts.set(tensor.type, (counts.get(tensor.type) ?? 0) + elements);
    parameters += elements;
  }
  const dominant = [...counts.entries()].sort((a, b) => b[1] - a[1])[0]?.[0];
  const architecture = file.metadata['general.architecture'];
  const template = file.metadata['tokenizer.chat_template'];
  return {
    version: file.version,
    architecture: typeof architecture === 'string' ? architecture : undefined,
    chatTemplate: typeof template === 'string' ? template : null,
    parameters,
    quantization: dominant === undefined ? 'none' : (ggmlTypeName(dominant) ?? String(dominant)),
    tensorCount: file.tensors.length,
  };
}

/**
 * Checks a GGUF file with the GGUF reader (header only) and summarises it.
 * @throws ModelStoreError `corrupt_gguf`, `truncated` or `unsupported_quantization`, naming the file
 */
export async function checkGgufFile(path: string): Promise<GgufSummary> {
  let file: GgufFile;
  try {
    file = await inspectGguf(path);
  } catch (error) {
    if (!GgufError.isInstance(error)) throw error;
    throw new ModelStoreError(CODES[error.code], error.message, { cause: error });
  }
  return summarizeGguf(path, file);
}
