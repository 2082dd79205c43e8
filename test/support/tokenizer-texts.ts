/**
 * Real text for tokenizer parity tests: Brown sentences from every genre (the corpus ships in npm),
 * plus lines that stress a byte-level BPE — Unicode from several scripts, emoji, numbers, runs of
 * spaces, tabs and newlines, and leading/trailing whitespace.
 */
import { loadBrownCorpus } from '../../src/data/brown.ts';

const STRESS = [
  'Ünïcödé façade, naïve café — “curly quotes” and ‘single’ ones…',
  '日本語のテキストと中文文本，还有한국어 문장。',
  'Emoji: 😀🎉👩‍👩‍👧‍👦 🇫🇷 ✔︎ and a lone ☃.',
  'Прохладная река течёт под мостом; Ελληνικά γράμματα; עברית; العربية.',
  'Numbers: 3.14159, 1,000,000, -42, 0x1F, 2024-12-07, 10:45pm, 99.9% and 1e-9.',
  '12345678901234567890 digits in a row, then 7 8 9.',
  "It's, they're, we'll, I'd, you've, she'S, DON'T — contractions.",
  '    four leading spaces, then    four inside, and trailing    ',
  'tabs\there\t\tand\t\t\tmore',
  'line one\nline two\n\nline four\n\n\n',
  '\n\nleading newlines and a final space ',
  '  \n \t mixed \r\n whitespace \u00a0 nbsp \u2003 em space',
  'Punctuation!!! ??? ... ;;; ::: --- *** ((nested [brackets] {braces})) <tags/> @user #hash $5 ^_^ ~tilde~ |pipe|',
  'code: if (x >= 10 && y != 3) { return a[i] + b->c; } // comment',
  'URL https://example.com/path?q=1&r=two#frag and e-mail someone@example.org',
  'Mixed CASE WoRdS, camelCaseWords, snake_case_words and SCREAMING_CASE.',
  'A',
  ' ',
  '',
];

/** `count` Brown sentences spread over the corpus, then the stress lines. */
export function parityTexts(count = 300): string[] {
  const sentences = loadBrownCorpus().sentencesOf();
  const step = Math.max(1, Math.floor(sentences.length / count));
  const picked: string[] = [];
  for (let i = 0; i < sentences.length && picked.length < count; i += step) picked.push(sentences[i]!.text);
  return [...picked, ...STRESS];
}
