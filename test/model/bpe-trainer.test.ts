import { Tokenizer as HfTokenizer } from '@huggingface/tokenizers';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadBrownCorpus } from '../../src/data/brown.ts';
import {
  BYTE_TO_UNICODE,
  CORGI_SPECIAL_TOKENS,
  countPretokens,
  type TokenizerJson,
  trainBpe,
} from '../../src/model/bpe-trainer.ts';
import { CORGI_CHAT_TEMPLATE_JINJA, Tokenizer } from '../../src/model/tokenizer.ts';
import { buildTokenizerConfig, trainBrownTokenizer } from '../../src/training/pretrain/train-tokenizer.ts';

const brown = loadBrownCorpus();
// 40 train documents (~90k words): enough for real merges, trains in well under a second.
const slice = brown.documentsOf('train').slice(0, 40);
const texts = slice.map((doc) => doc.text);

/** Text the tokenizer must give back byte for byte. */
const ROUND_TRIP_CASES = [
  '',
  ' ',
  'The Fulton County Grand Jury said Friday.',
  'tabs\t\tand   runs of   spaces\n\n\n\nand trailing   ',
  'windows\r\nline\r\nends\r\n',
  "Contractions: don't, can't, I'm, we'll, 'em, O'Brien's.",
  'Ünïcödé: naïve café, Ελληνικά, русский, 日本語のテキスト, 한국어, עברית, العربية',
  'Emoji: 🎉 👍🏽 👨‍👩‍👧‍👦 🇺🇸 ❤️ 🏳️‍🌈',
  'Math ∑∫√∞ ≠ ≤ and combining e\u0301 and zero\u200Bwidth',
  '\uFEFFa BOM first, NUL \u0000 and control \u0007 chars',
  'Special look-alikes stay text: <|end|> <|user|> <|begin_of_text|>',
  '   leading spaces and a final newline\n',
  '1234567890 3.14159 -42 1e10 $5.00 100%',
];

describe('trainBpe', () => {
  let json: TokenizerJson;
  let seconds: number;

  beforeAll(() => {
    const start = performance.now();
    json = trainBpe({ texts, vocabSize: 1024 });
    seconds = (performance.now() - start) / 1000;
  });

  it('trains a 1,024-token vocabulary on a Brown slice in under a few seconds', () => {
    expect(seconds).toBeLessThan(3);
    expect(json.model.merges).toHaveLength(1024 - CORGI_SPECIAL_TOKENS.length - 256);
    const ids = Object.values(json.model.vocab).sort((a, b) => a - b);
    expect(ids).toEqual(Array.from({ length: 1024 }, (_, i) => i)); // contiguous, no duplicates
  });

  it('puts the special tokens first and marks them special', () => {
    expect(json.added_tokens.map((t) => [t.id, t.content, t.special])).toEqual(
      CORGI_SPECIAL_TOKENS.map((content, id) => [id, content, true]),
    );
    // The 256 bytes follow, in byte order, spelled with GPT-2's byte→unicode table.
    expect(json.model.vocab[BYTE_TO_UNICODE[0]]).toBe(7);
    expect(json.model.vocab[BYTE_TO_UNICODE[32]]).toBe(7 + 32); // space, spelled Ġ
    expect(json.model.vocab.A).toBe(7 + 65);
  });

  it('writes merges whose parts and results are all in the vocabulary, most frequent first', () => {
    const merges = json.model.merges as string[];
    for (const merge of merges) {
      const [left, right, ...rest] = merge.split(' ');
      expect(rest).toEqual([]);
      expect(json.model.vocab[left]).toBeDefined();
      expect(json.model.vocab[right]).toBeDefined();
      expect(json.model.vocab[left + right]).toBeDefined();
    }
    // English: " t", "he", then " the" come first.
    expect(merges.slice(0, 2)).toContain('Ġ t');
    expect(merges.slice(0, 6)).toContain('Ġt he');
  });

  it('is deterministic and independent of document order', () => {
    const again = trainBpe({ texts, vocabSize: 1024 });
    expect(again).toEqual(json);
    const reversed = trainBpe({ texts: [...texts].reverse(), vocabSize: 1024 });
    expect(reversed.model.merges).toEqual(json.model.merges);
  });

  it('learns exactly the merges a naive recount-everything trainer learns', () => {
    const small = texts.slice(0, 3);
    const fast = trainBpe({ texts: small, vocabSize: 7 + 256 + 150 });
    expect(fast.model.merges).toEqual(naiveMerges(small, 150));
  });

  it('loads in @huggingface/tokenizers with a ByteLevel pre-tokenizer and decoder', () => {
    const hf = new HfTokenizer(json, { clean_up_tokenization_spaces: false });
    const encoding = hf.encode('The jury said.', { add_special_tokens: false });
    expect(encoding.tokens.join('')).toBe('TheĠjuryĠsaid.');
    expect(encoding.tokens).toContain('Ġsaid'); // a frequent word is one token at 1k vocab
    expect(hf.decode(encoding.ids)).toBe('The jury said.');
    // The post-processor prepends BOS for Hugging Face callers that ask for special tokens.
    expect(hf.encode('The').ids[0]).toBe(0);
    expect(hf.decode([0, ...encoding.ids, 6], { skip_special_tokens: true })).toBe('The jury said.');
  });

  it.each(ROUND_TRIP_CASES)('round-trips %j exactly through the library and through Tokenizer', (text) => {
    const hf = new HfTokenizer(json, { clean_up_tokenization_spaces: false });
    const tokenizer = new Tokenizer(json);
    const ids = tokenizer.encode(text);
    expect(tokenizer.decode(ids)).toBe(text);
    if (text.length > 0) expect(hf.decode(ids)).toBe(text);
  });

  it('round-trips every validation-split sentence and agrees with the library token for token', () => {
    const hf = new HfTokenizer(json, { clean_up_tokenization_spaces: false });
    const tokenizer = new Tokenizer(json);
    const sentences = brown.sentencesOf('validation');
    expect(sentences.length).toBeGreaterThan(2000);
    for (const { text } of sentences) {
      const ids = tokenizer.encode(text);
      expect(ids).toEqual(hf.encode(text, { add_special_tokens: false }).ids);
      expect(tokenizer.decode(ids)).toBe(text);
    }
  });

  it('compresses held-out Brown text better than bytes', () => {
    const tokenizer = new Tokenizer(json);
    const text = brown.documentsOf('test')[0].text;
    const bytes = new TextEncoder().encode(text).length;
    expect(tokenizer.encode(text).length).toBeLessThan(bytes / 2); // 2.4 bytes per token at 1k vocab
  });

  it('rejects a vocabulary too small for the special and byte tokens', () => {
    expect(() => trainBpe({ texts, vocabSize: 100 })).toThrow(/vocabSize must be an integer in \[263,/);
  });

  it('stops early when no pair occurs minFrequency times', () => {
    const tiny = trainBpe({ texts: ['ab ab cd'], vocabSize: 400 });
    expect(tiny.model.merges).toEqual(['a b']); // "Ġ a" occurs once, "ab" twice
  });
});

describe('trainBrownTokenizer', () => {
  it('trains on a seeded sample of the train split when maxDocuments is set', () => {
    const a = trainBrownTokenizer({ vocabSize: 512, seed: 1, maxDocuments: 10 });
    expect(trainBrownTokenizer({ vocabSize: 512, seed: 1, maxDocuments: 10 })).toEqual(a);
    expect(trainBrownTokenizer({ vocabSize: 512, seed: 2, maxDocuments: 10 }).model.merges).not.toEqual(
      a.model.merges,
    );
    expect(Object.keys(a.model.vocab)).toHaveLength(512);
  });

  it('writes a tokenizer_config.json naming our specials and chat template', () => {
    const config = buildTokenizerConfig(trainBpe({ texts: texts.slice(0, 2), vocabSize: 300 }));
    expect(config).toMatchObject({
      bos_token: '<|begin_of_text|>',
      eos_token: '<|end_of_text|>',
      pad_token: '<|pad|>',
      clean_up_tokenization_spaces: false,
      chat_template: CORGI_CHAT_TEMPLATE_JINJA,
    });
  });
});

describe('countPretokens', () => {
  it("splits as GPT-2's regex does: contractions, a leading space per word, whitespace runs", () => {
    const counts = countPretokens(["He's here  now, isn't he?\n\n"]);
    expect([...counts.keys()]).toEqual([
      'He',
      "'s",
      ' here',
      ' ',
      ' now',
      ',',
      ' isn',
      "'t",
      ' he',
      '?',
      '\n\n',
    ]);
  });
});

/** The textbook trainer: recount every pair after every merge. Same tie-break (smallest ids). */
function naiveMerges(sample: string[], count: number): string[] {
  const encoder = new TextEncoder();
  const words = [...countPretokens(sample)].map(([piece, n]) => ({
    ids: [...encoder.encode(piece)].map((b) => b + 7),
    n,
  }));
  const bytesOf: number[][] = [];
  for (let b = 0; b < 256; b++) bytesOf[b + 7] = [b];
  const spell = (id: number) => bytesOf[id].map((b) => BYTE_TO_UNICODE[b]).join('');
  const merges: string[] = [];
  for (let next = 263; merges.length < count; next++) {
    const pairs = new Map<string, number>();
    for (const { ids, n } of words) {
      for (let i = 0; i + 1 < ids.length; i++) {
        const key = `${ids[i]},${ids[i + 1]}`;
        pairs.set(key, (pairs.get(key) ?? 0) + n);
      }
    }
    let best: [number, number] | undefined;
    let bestCount = 0;
    for (const [key, n] of pairs) {
      const [a, b] = key.split(',').map(Number);
      if (n > bestCount || (n === bestCount && best && (a < best[0] || (a === best[0] && b < best[1])))) {
        best = [a, b];
        bestCount = n;
      }
    }
    if (!best || bestCount < 2) break;
    const [a, b] = best;
    bytesOf[next] = [...bytesOf[a], ...bytesOf[b]];
    merges.push(`${spell(a)} ${spell(b)}`);
    for (const word of words) {
      const merged: number[] = [];
      for (let i = 0; i < word.ids.length; i++) {
        if (word.ids[i] === a && word.ids[i + 1] === b) {
          merged.push(next);
          i++;
        } else {
          merged.push(word.ids[i]);
        }
      }
      word.ids = merged;
    }
  }
  return merges;
}
