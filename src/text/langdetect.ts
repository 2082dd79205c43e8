/**
 * Language identification: Python langdetect 1.0.9's detector (detector.py, utils/ngram.py), run on
 * the n-gram profiles shipped by npm `langdetect` (the same Java profiles), with Python's own
 * Mersenne Twister seeded with 0, so it is deterministic and draws the same random numbers as Python
 * langdetect with `DetectorFactory.seed = 0`. The npm package's own `detect` is not used: it draws
 * from `Math.random` (no seed), and it departs from the Python library (uniform instead of Gaussian
 * smoothing, different Latin-script cleaning, no CJK or Vietnamese normalization).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { PythonRandom } from './python-random.ts';

/** ISO 639-1 codes IFEval names in its prompts (instructions_util.LANGUAGE_CODES). */
export const IFEVAL_LANGUAGE_NAMES: Readonly<Record<string, string>> = {
  en: 'English',
  es: 'Spanish',
  pt: 'Portuguese',
  ar: 'Arabic',
  hi: 'Hindi',
  fr: 'French',
  ru: 'Russian',
  de: 'German',
  ja: 'Japanese',
  it: 'Italian',
  bn: 'Bengali',
  uk: 'Ukrainian',
  th: 'Thai',
  ur: 'Urdu',
  ta: 'Tamil',
  te: 'Telugu',
  bg: 'Bulgarian',
  ko: 'Korean',
  pl: 'Polish',
  he: 'Hebrew',
  fa: 'Persian',
  vi: 'Vietnamese',
  ne: 'Nepali',
  sw: 'Swahili',
  kn: 'Kannada',
  mr: 'Marathi',
  gu: 'Gujarati',
  pa: 'Punjabi',
  ml: 'Malayalam',
  fi: 'Finnish',
};

const langdetectDir = () => dirname(createRequire(import.meta.url).resolve('langdetect/package.json'));

let langdetectCodes: readonly string[] | undefined;

/** The language codes langdetect's profiles cover (`en`, `zh-cn`, ...), sorted. */
export function languageCodes(): readonly string[] {
  langdetectCodes ??= readdirSync(join(langdetectDir(), 'profiles'))
    .filter((f) => f.endsWith('.json'))
    .map((f) => f.slice(0, -'.json'.length))
    .sort();
  return langdetectCodes;
}

interface LangdetectModel {
  langs: readonly string[];
  /** n-gram → probability per language (index into `langs`). */
  wordLangProb: Map<string, Float64Array>;
  /** CJK ideograph → representative of its frequency class. */
  cjkMap: Map<string, string>;
}

let langdetectModel: LangdetectModel | undefined;

export function loadLangdetectModel(): LangdetectModel {
  if (langdetectModel) return langdetectModel;
  const dir = langdetectDir();
  const langs = languageCodes();
  const wordLangProb = new Map<string, Float64Array>();
  langs.forEach((lang, index) => {
    const profile = JSON.parse(readFileSync(join(dir, 'profiles', `${lang}.json`), 'utf8')) as {
      freq: Record<string, number>;
      n_words: number[];
    };
    for (const [word, freq] of Object.entries(profile.freq)) {
      let probs = wordLangProb.get(word);
      if (!probs) {
        probs = new Float64Array(langs.length);
        wordLangProb.set(word, probs);
      }
      const length = [...word].length;
      if (length >= 1 && length <= 3) probs[index] = freq / profile.n_words[length - 1];
    }
  });
  const cjkMap = new Map<string, string>();
  const cjk = JSON.parse(readFileSync(join(dir, 'res', 'cjk.json'), 'utf8')) as Record<string, string>;
  for (const members of Object.values(cjk)) {
    const chars = [...members];
    for (const ch of chars) cjkMap.set(ch, chars[0]);
  }
  langdetectModel = { langs, wordLangProb, cjkMap };
  return langdetectModel;
}

// langdetect constants (Detector and NGram).
const LD_ALPHA = 0.5;
const LD_ALPHA_WIDTH = 0.05;
const LD_ITERATION_LIMIT = 1000;
const LD_PROB_THRESHOLD = 0.1;
const LD_CONV_THRESHOLD = 0.99999;
const LD_BASE_FREQ = 10000;
const LD_TRIALS = 7;
const LD_MAX_TEXT_LENGTH = 10000;
const LD_URL_RE = /https?:\/\/[-_.?&~;+=/#0-9A-Za-z]{1,2076}/g;
const LD_MAIL_RE = /[-_.0-9A-Za-z]{1,64}@[-_0-9A-Za-z]{1,255}[-_.0-9A-Za-z]{1,255}/g;
// Vietnamese: a base vowel followed by a combining tone mark becomes its precomposed letter.
const LD_VI_RE = /([AEIOUYaeiouyÂÊÔâêôĂăƠơƯư])([\u0300\u0301\u0303\u0309\u0323])/g;
const LATIN1_EXCLUDED = '\u00a0\u00ab\u00b0\u00bb';

/** NGram.normalize: folds characters into the classes the profiles were built with. */
function normalizeLangdetectChar(ch: string, cjkMap: Map<string, string>): string {
  const cp = ch.codePointAt(0)!;
  if (cp <= 0x7f) return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ? ch : ' ';
  if (cp <= 0xff) return LATIN1_EXCLUDED.includes(ch) ? ' ' : ch;
  if (cp >= 0x180 && cp <= 0x24f) return cp === 0x219 ? '\u015f' : cp === 0x21b ? '\u0163' : ch;
  if (cp >= 0x2000 && cp <= 0x206f) return ' ';
  if (cp >= 0x600 && cp <= 0x6ff) return cp === 0x6cc ? '\u064a' : ch;
  if (cp >= 0x1e00 && cp <= 0x1eff) return cp >= 0x1ea0 ? '\u1ec3' : ch;
  if (cp >= 0x3040 && cp <= 0x309f) return '\u3042';
  if (cp >= 0x30a0 && cp <= 0x30ff) return '\u30a2';
  if ((cp >= 0x3100 && cp <= 0x312f) || (cp >= 0x31a0 && cp <= 0x31bf)) return '\u3105';
  if (cp >= 0x4e00 && cp <= 0x9fff) return cjkMap.get(ch) ?? ch;
  if (cp >= 0xac00 && cp <= 0xd7af) return '\uac00';
  return ch;
}

/** The text langdetect analyses: URLs and e-mails removed, space runs collapsed, Latin dropped from mostly non-Latin text. */
function prepareLangdetectText(raw: string): string[] {
  const text = [
    ...raw
      .replace(LD_URL_RE, ' ')
      .replace(LD_MAIL_RE, ' ')
      .replace(LD_VI_RE, (_, base: string, mark: string) => (base + mark).normalize('NFC')),
  ];
  const chars: string[] = [];
  let pre = '';
  for (let i = 0; i < Math.min(text.length, LD_MAX_TEXT_LENGTH); i++) {
    const ch = text[i];
    if (ch !== ' ' || pre !== ' ') chars.push(ch);
    pre = ch;
  }
  let latin = 0;
  let nonLatin = 0;
  for (const ch of chars) {
    if (ch >= 'A' && ch <= 'z') latin++;
    else if (ch >= '\u0300' && !(ch >= '\u1e00' && ch <= '\u1eff')) nonLatin++;
  }
  return latin * 2 < nonLatin ? chars.filter((ch) => ch < 'A' || ch > 'z') : chars;
}

const FIRST_UPPER = /^\p{Uppercase}/u;

/** Python's `ch.isupper()` for one character, with an ASCII fast path. */
function isUpperChar(ch: string): boolean {
  if (ch.length === 1 && ch.charCodeAt(0) < 0x80) return ch >= 'A' && ch <= 'Z';
  return FIRST_UPPER.test(ch);
}

/**
 * The 1- to 3-grams langdetect samples from (Detector._extract_ngrams), as their probability rows.
 * `g0 g1 g2` hold NGram's buffer of the last (up to) three normalized characters.
 */
function extractNgrams(chars: readonly string[], model: LangdetectModel): Float64Array[] {
  const result: Float64Array[] = [];
  const add = (w: string) => {
    const probs = model.wordLangProb.get(w);
    if (probs) result.push(probs);
  };
  let g0 = ' ';
  let g1 = '';
  let g2 = '';
  let n = 1;
  let capitalWord = false;
  for (const raw of chars) {
    const ch = normalizeLangdetectChar(raw, model.cjkMap);
    const last = n === 1 ? g0 : n === 2 ? g1 : g2;
    if (last === ' ') {
      g0 = ' ';
      n = 1;
      capitalWord = false;
      if (ch === ' ') continue;
    } else if (n === 3) {
      g0 = g1;
      g1 = g2;
      n = 2;
    }
    if (n === 1) g1 = ch;
    else g2 = ch;
    n++;
    if (isUpperChar(ch)) {
      if (isUpperChar(last)) capitalWord = true;
    } else capitalWord = false;
    if (capitalWord) continue;
    if (n === 2) {
      if (g1 !== ' ') add(g1);
      add(g0 + g1);
    } else {
      if (g2 !== ' ') add(g2);
      add(g1 + g2);
      add(g0 + g1 + g2);
    }
  }
  return result;
}

/**
 * Python langdetect's `detect(text)` with `DetectorFactory.seed = 0`: the most probable language
 * code, `'unknown'` when none passes the probability threshold, or `null` where langdetect raises
 * (text without any usable n-gram, such as digits or punctuation only; IFEval counts that as a pass).
 */
export function detectLanguage(text: string): string | null {
  const model = loadLangdetectModel();
  const ngrams = extractNgrams(prepareLangdetectText(text), model);
  if (ngrams.length === 0) return null;
  const nLangs = model.langs.length;
  const langProb = new Float64Array(nLangs);
  const rng = new PythonRandom(0);
  const prob = new Float64Array(nLangs);
  for (let trial = 0; trial < LD_TRIALS; trial++) {
    prob.fill(1 / nLangs);
    const weight = (LD_ALPHA + rng.gauss() * LD_ALPHA_WIDTH) / LD_BASE_FREQ;
    for (let i = 0; ; i++) {
      const probs = rng.choice(ngrams);
      for (let j = 0; j < nLangs; j++) prob[j] *= weight + probs[j];
      if (i % 5 === 0) {
        let sum = 0;
        for (let j = 0; j < nLangs; j++) sum += prob[j];
        let maxp = 0;
        for (let j = 0; j < nLangs; j++) {
          prob[j] /= sum;
          if (prob[j] > maxp) maxp = prob[j];
        }
        if (maxp > LD_CONV_THRESHOLD || i >= LD_ITERATION_LIMIT) break;
      }
    }
    for (let j = 0; j < nLangs; j++) langProb[j] += prob[j] / LD_TRIALS;
  }
  let best: string | null = null;
  let bestProb = LD_PROB_THRESHOLD;
  for (let j = 0; j < nLangs; j++) {
    if (langProb[j] > bestProb) {
      best = model.langs[j];
      bestProb = langProb[j];
    }
  }
  return best ?? 'unknown';
}
