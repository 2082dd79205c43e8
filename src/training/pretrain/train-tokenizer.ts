/**
 * Trains CORGI's own tokenizer on the Brown corpus train split (what `corgi pretrain` calls), and
 * writes the `tokenizer_config.json` that lets Hugging Face `transformers` use it too.
 *
 * Run directly to write the files and print timing and compression:
 *   node bin/run-ts.js src/training/pretrain/train-tokenizer.ts [outDir] [vocabSize]
 */

import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { rngFromState } from '../../common/random.ts';
import { type BrownDocument, loadBrownCorpus } from '../../data/brown.ts';
import { CORGI_SPECIAL_TOKENS, type TokenizerJson, trainBpe } from '../../model/bpe-trainer.ts';
import { CORGI_CHAT_TEMPLATE_JINJA, Tokenizer } from '../../model/tokenizer.ts';

export interface TrainBrownTokenizerOptions {
  /**
   * Vocabulary size including the 7 special tokens and the 256 byte tokens. A multiple of 64
   * keeps the embedding and output matmuls aligned (nanoGPT pads GPT-2's 50257 to 50304 for this).
   * @default 4096
   */
  vocabSize?: number;
  /**
   * Picks which train documents are used when `maxDocuments` is set (a seeded shuffle). BPE itself
   * is deterministic, so with all documents the result does not depend on the seed.
   * @default 0
   */
  seed?: number;
  /** Train on at most this many train-split documents (for quick tests). @default all (~450) */
  maxDocuments?: number;
}

/**
 * Trains byte-level BPE on the Brown train split's documents (natural text, paragraphs separated
 * by blank lines) and returns the `tokenizer.json` object.
 *
 * @example
 * const json = trainBrownTokenizer({ vocabSize: 4096 });
 * writeFileSync('tokenizer.json', JSON.stringify(json));
 */
export function trainBrownTokenizer({
  vocabSize = 4096,
  seed = 0,
  maxDocuments,
}: TrainBrownTokenizerOptions = {}): TokenizerJson {
  let documents: BrownDocument[] = loadBrownCorpus().documentsOf('train');
  if (maxDocuments !== undefined && maxDocuments < documents.length) {
    documents = rngFromState(seed).shuffle(documents).slice(0, maxDocuments);
  }
  return trainBpe({ texts: documents.map((doc) => doc.text), vocabSize });
}

/**
 * The `tokenizer_config.json` for a tokenizer trained here, so `AutoTokenizer.from_pretrained`
 * finds the special tokens and our chat template (as Jinja) in a saved checkpoint.
 */
export function buildTokenizerConfig(json: TokenizerJson, modelMaxLength = 2048): Record<string, unknown> {
  return {
    tokenizer_class: 'PreTrainedTokenizerFast',
    bos_token: '<|begin_of_text|>',
    eos_token: '<|end_of_text|>',
    pad_token: '<|pad|>',
    additional_special_tokens: CORGI_SPECIAL_TOKENS.slice(3),
    // Byte-level BPE round-trips exactly; the "clean up" pass would delete spaces before punctuation.
    clean_up_tokenization_spaces: false,
    model_max_length: modelMaxLength,
    added_tokens_decoder: Object.fromEntries(json.added_tokens.map((token) => [String(token.id), token])),
    chat_template: CORGI_CHAT_TEMPLATE_JINJA,
  };
}

/** Tokens per whitespace-separated word over a split's documents. */
export function measureTokensPerWord(tokenizer: Tokenizer, documents: readonly BrownDocument[]): number {
  let tokens = 0;
  let words = 0;
  for (const doc of documents) {
    tokens += tokenizer.encode(doc.text).length;
    words += doc.text.split(/\s+/).filter(Boolean).length;
  }
  return tokens / words;
}

async function main(argv: string[]): Promise<void> {
  const outDir = resolve(argv[0] ?? 'data/tokenizer');
  const vocabSize = Number(argv[1] ?? 4096);
  let start = performance.now();
  const brown = loadBrownCorpus();
  const loadSeconds = (performance.now() - start) / 1000;
  start = performance.now();
  const json = trainBrownTokenizer({ vocabSize });
  const trainSeconds = (performance.now() - start) / 1000;
  mkdirSync(outDir, { recursive: true });
  writeFileSync(join(outDir, 'tokenizer.json'), JSON.stringify(json, null, 2));
  writeFileSync(join(outDir, 'tokenizer_config.json'), JSON.stringify(buildTokenizerConfig(json), null, 2));
  const tokenizer = new Tokenizer(json);
  const report = {
    outDir,
    vocabSize: tokenizer.vocabSize,
    merges: json.model.merges.length,
    brownLoadSeconds: Number(loadSeconds.toFixed(2)),
    trainSeconds: Number(trainSeconds.toFixed(2)),
    tokensPerWord: {
      train: Number(measureTokensPerWord(tokenizer, brown.documentsOf('train')).toFixed(3)),
      validation: Number(measureTokensPerWord(tokenizer, brown.documentsOf('validation')).toFixed(3)),
      test: Number(measureTokensPerWord(tokenizer, brown.documentsOf('test')).toFixed(3)),
    },
  };
  console.log(JSON.stringify(report, null, 2));
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  await main(process.argv.slice(2));
}
