/**
 * Our `Tokenizer` for a GGUF file, from its tokenizer metadata (see src/model/gguf-tokenizer.ts for
 * the rebuild), so a GGUF model trains in TF.js with the very token ids llama.cpp serves it with.
 */
import { CheckpointError } from '../checkpoint.ts';
import { tokenizerJsonFromGguf } from '../gguf-tokenizer.ts';
import { Tokenizer } from '../tokenizer.ts';
import type { GgufFile } from './parse-header.ts';
import { inspectGguf } from './reader.ts';

/** Our `Tokenizer` for a GGUF file's tokenizer metadata. @throws CheckpointError naming the file */
export async function loadGgufTokenizer(path: string, file?: GgufFile): Promise<Tokenizer> {
  const { metadata } = file ?? (await inspectGguf(path));
  try {
    const { tokenizerJson, tokenizerConfig } = tokenizerJsonFromGguf(metadata);
    return new Tokenizer(tokenizerJson, tokenizerConfig);
  } catch (error) {
    throw new CheckpointError(path, (error as Error).message, { cause: error });
  }
}
