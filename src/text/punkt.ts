/**
 * Sentences: NLTK's Punkt (Kiss & Strunk 2006) as NLTK 3.8 implements it (nltk/tokenize/punkt.py),
 * trainer and tokenizer. The parameters are learned at first use by Punkt's unsupervised training on
 * the Brown corpus, read by src/data/brown.ts, and cached. NLTK's own English model is not available
 * as a package; on the IFEval oracle both the Brown-trained and the untrained tokenizer give the
 * official strict verdicts, and the trained one also knows abbreviations such as "U.S." and "Dr.".
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { brownCorpusDir, parseBrownFile } from '../data/brown.ts';
import { PY_WS, pyRstrip, pyStrip } from './python.ts';

/** What Punkt learns: abbreviations, collocations, sentence starters, orthographic contexts. */
export interface PunktParameters {
  /** Abbreviation types, lower case, without the final period (`dr`, `u.s`). */
  abbrevTypes: Set<string>;
  /** Pairs `first second` (space-joined) whose period is no sentence break (`s. bach`). */
  collocations: Set<string>;
  /** Types that often start a sentence (`however`). */
  sentStarters: Set<string>;
  /** Type → bit set of the `ORTHO_*` contexts it was seen in. */
  orthoContext: Map<string, number>;
}

export function emptyPunktParameters(): PunktParameters {
  return {
    abbrevTypes: new Set(),
    collocations: new Set(),
    sentStarters: new Set(),
    orthoContext: new Map(),
  };
}

// Orthographic contexts: beginning / middle / unknown position × upper / lower case first letter.
const ORTHO_BEG_UC = 1 << 1;
const ORTHO_MID_UC = 1 << 2;
const ORTHO_UNK_UC = 1 << 3;
const ORTHO_BEG_LC = 1 << 4;
const ORTHO_MID_LC = 1 << 5;
const ORTHO_UNK_LC = 1 << 6;
const ORTHO_UC = ORTHO_BEG_UC | ORTHO_MID_UC | ORTHO_UNK_UC;
const ORTHO_LC = ORTHO_BEG_LC | ORTHO_MID_LC | ORTHO_UNK_LC;
type OrthoPosition = 'initial' | 'internal' | 'unknown';
const ORTHO_FLAG: Record<OrthoPosition, Record<'upper' | 'lower', number>> = {
  initial: { upper: ORTHO_BEG_UC, lower: ORTHO_BEG_LC },
  internal: { upper: ORTHO_MID_UC, lower: ORTHO_MID_LC },
  unknown: { upper: ORTHO_UNK_UC, lower: ORTHO_UNK_LC },
};

// PunktLanguageVars (English defaults). Python `[^\W\d]` is a word character that is no decimal digit.
const NON_WORD_CHARS = `[)";}\\]*:@'({\\[?!]`;
const MULTI_CHAR_PUNCT = `(?:-{2,}|\\.{2,}|(?:\\.[${PY_WS}]){2,}\\.)`;
const WORD_START = '[^("`{\\[:;&#*@)}\\]\\-,]';
const PUNKT_WORD_RE = new RegExp(
  `${MULTI_CHAR_PUNCT}|(?=${WORD_START})[^${PY_WS}]+?(?=[${PY_WS}]|$|${NON_WORD_CHARS}|${MULTI_CHAR_PUNCT}|,(?=$|[${PY_WS}]|${NON_WORD_CHARS}|${MULTI_CHAR_PUNCT}))|[^${PY_WS}]`,
  'gu',
);
/** A sentence-end character followed by other punctuation, or by whitespace and a next token. */
const PERIOD_CONTEXT_RE = new RegExp(`[.?!](?=(${NON_WORD_CHARS}|[${PY_WS}]+([^${PY_WS}]+)))`, 'gu');
const BOUNDARY_REALIGNMENT_RE = new RegExp(`^["')\\]}]+?(?:[${PY_WS}]+|(?=--)|(?=\\n|$))`, 'u');
const RE_ELLIPSIS = /^\.\.+$/;
const RE_NUMERIC = /^-?[.,]?\p{Nd}[\p{Nd},.-]*\.?$/u;
const RE_INITIAL = /^[\p{L}\p{Nl}\p{No}_]\.$/u;
const RE_ALPHA = /^[\p{L}\p{Nl}\p{No}_]+$/u;
const RE_NON_PUNCT = /[\p{L}\p{Nl}\p{No}_]/u;
// Python's `tok[0].isupper()` / `islower()` on one character: its Uppercase / Lowercase property.
const FIRST_UPPER = /^\p{Uppercase}/u;
const FIRST_LOWER = /^\p{Lowercase}/u;
const SENT_END_CHARS = new Set(['.', '?', '!']);
const INTERNAL_PUNCTUATION = ',:;';
const PUNCTUATION_TOKENS = new Set([';', ':', ',', '.', '!', '?']);
/** Python's `string.whitespace`, which `_get_last_whitespace_index` uses (ASCII only). */
const ASCII_WHITESPACE = ' \t\n\r\v\f';

/** One word token with Punkt's annotations (NLTK's PunktToken). */
const isAsciiLetter = (code: number) => (code >= 65 && code <= 90) || (code >= 97 && code <= 122);

/** One word token with Punkt's annotations (NLTK's PunktToken). ASCII fast paths skip the regexes. */
class PunktToken {
  readonly tok: string;
  readonly type: string;
  readonly periodFinal: boolean;
  parastart = false;
  linestart = false;
  sentbreak = false;
  abbr = false;
  ellipsis = false;

  constructor(tok: string) {
    this.tok = tok;
    const lower = tok.toLowerCase();
    this.type = !isAsciiLetter(tok.charCodeAt(0)) && RE_NUMERIC.test(lower) ? '##number##' : lower;
    this.periodFinal = tok.endsWith('.');
  }

  get typeNoPeriod(): string {
    return this.type.length > 1 && this.type.endsWith('.') ? this.type.slice(0, -1) : this.type;
  }

  get typeNoSentperiod(): string {
    return this.sentbreak ? this.typeNoPeriod : this.type;
  }

  get firstUpper(): boolean {
    const code = this.tok.charCodeAt(0);
    return code < 0x80 ? code >= 65 && code <= 90 : FIRST_UPPER.test(this.tok);
  }

  get firstLower(): boolean {
    const code = this.tok.charCodeAt(0);
    return code < 0x80 ? code >= 97 && code <= 122 : FIRST_LOWER.test(this.tok);
  }

  get firstCase(): 'upper' | 'lower' | 'none' {
    return this.firstLower ? 'lower' : this.firstUpper ? 'upper' : 'none';
  }

  get isEllipsis(): boolean {
    return this.tok.charCodeAt(0) === 46 && RE_ELLIPSIS.test(this.tok);
  }

  get isNumber(): boolean {
    return this.type.startsWith('##number##');
  }

  get isInitial(): boolean {
    return this.tok.length <= 3 && this.periodFinal && RE_INITIAL.test(this.tok);
  }

  get isAlpha(): boolean {
    return RE_ALPHA.test(this.tok);
  }

  get isNonPunct(): boolean {
    return RE_NON_PUNCT.test(this.type);
  }
}

/** Punkt's word tokenization of one line (PunktLanguageVars.word_tokenize). */
function punktWordTokens(line: string): string[] {
  return line.match(PUNKT_WORD_RE) ?? [];
}

/** Tokens with paragraph-start and line-start marks (PunktBaseClass._tokenize_words). */
function tokenizePunktWords(text: string): PunktToken[] {
  const tokens: PunktToken[] = [];
  let parastart = false;
  for (const line of text.split('\n')) {
    if (!pyStrip(line)) {
      parastart = true;
      continue;
    }
    const words = punktWordTokens(line);
    if (words.length === 0) continue;
    words.forEach((word, k) => {
      const token = new PunktToken(word);
      if (k === 0) {
        token.parastart = parastart;
        token.linestart = true;
        parastart = false;
      }
      tokens.push(token);
    });
  }
  return tokens;
}

/** First pass: marks sentence-end punctuation, ellipses and abbreviations by type alone. */
function annotateFirstPass(token: PunktToken, params: PunktParameters): void {
  const tok = token.tok;
  if (SENT_END_CHARS.has(tok)) token.sentbreak = true;
  else if (token.isEllipsis) token.ellipsis = true;
  else if (token.periodFinal && !tok.endsWith('..')) {
    const stem = tok.slice(0, -1).toLowerCase();
    const lastPart = stem.slice(stem.lastIndexOf('-') + 1);
    if (params.abbrevTypes.has(stem) || params.abbrevTypes.has(lastPart)) token.abbr = true;
    else token.sentbreak = true;
  }
}

/** Orthographic heuristic: true, false or 'unknown' for "does this token start a sentence?". */
function orthoHeuristic(token: PunktToken, params: PunktParameters): boolean | 'unknown' {
  if (PUNCTUATION_TOKENS.has(token.tok)) return false;
  const ortho = params.orthoContext.get(token.typeNoSentperiod) ?? 0;
  if (token.firstUpper && ortho & ORTHO_LC && !(ortho & ORTHO_MID_UC)) return true;
  if (token.firstLower && (ortho & ORTHO_UC || !(ortho & ORTHO_BEG_LC))) return false;
  return 'unknown';
}

/** Second pass: revises the first token of a pair using the collocation, ortho and starter heuristics. */
function annotateSecondPass(token: PunktToken, next: PunktToken, params: PunktParameters): void {
  if (!token.periodFinal) return;
  const typ = token.typeNoPeriod;
  const nextTyp = next.typeNoSentperiod;
  const isInitial = token.isInitial;
  if (params.collocations.has(`${typ} ${nextTyp}`)) {
    token.sentbreak = false;
    token.abbr = true;
    return;
  }
  if ((token.abbr || token.ellipsis) && !isInitial) {
    if (orthoHeuristic(next, params) === true) {
      token.sentbreak = true;
      return;
    }
    if (next.firstUpper && params.sentStarters.has(nextTyp)) {
      token.sentbreak = true;
      return;
    }
  }
  if (isInitial || typ === '##number##') {
    const startsSentence = orthoHeuristic(next, params);
    if (startsSentence === false) {
      token.sentbreak = false;
      token.abbr = true;
      return;
    }
    if (
      startsSentence === 'unknown' &&
      isInitial &&
      next.firstUpper &&
      !((params.orthoContext.get(nextTyp) ?? 0) & ORTHO_LC)
    ) {
      token.sentbreak = false;
      token.abbr = true;
    }
  }
}

/** True when a context string holds a sentence break followed by another token. */
function textContainsSentbreak(text: string, params: PunktParameters): boolean {
  const tokens = tokenizePunktWords(text);
  for (const token of tokens) annotateFirstPass(token, params);
  for (let k = 0; k < tokens.length; k++) {
    if (k + 1 < tokens.length) annotateSecondPass(tokens[k], tokens[k + 1], params);
    if (tokens[k].sentbreak) return k + 1 < tokens.length;
  }
  return false;
}

function lastAsciiWhitespaceIndex(text: string): number {
  for (let k = text.length - 1; k >= 0; k--) if (ASCII_WHITESPACE.includes(text[k])) return k;
  return 0;
}

interface EndContext {
  /** Index just after the sentence-end character. */
  end: number;
  /** Start of the next token after whitespace, or -1 when punctuation follows directly. */
  nextTokStart: number;
  context: string;
}

/** Candidate sentence ends with the text around them (PunktSentenceTokenizer._match_potential_end_contexts). */
function matchPotentialEndContexts(text: string): EndContext[] {
  const contexts: EndContext[] = [];
  let prevStart = 0;
  let prevStop = 0;
  let prev: RegExpMatchArray | null = null;
  const contextOf = (m: RegExpMatchArray, start: number, stop: number): EndContext => ({
    end: m.index! + 1,
    nextTokStart: m[2] === undefined ? -1 : m.index! + 1 + m[1].length - m[2].length,
    context: text.slice(start, stop) + m[0] + m[1],
  });
  for (const m of text.matchAll(PERIOD_CONTEXT_RE)) {
    const before = text.slice(prevStop, m.index);
    let wordStart = lastAsciiWhitespaceIndex(before);
    wordStart = wordStart ? wordStart + prevStop + 1 : prevStart;
    if (prev && prevStop <= wordStart) contexts.push(contextOf(prev, prevStart, prevStop));
    prev = m;
    prevStart = wordStart;
    prevStop = m.index!;
  }
  if (prev) contexts.push(contextOf(prev, prevStart, prevStop));
  return contexts;
}

/** Sentence spans `[start, end)` after boundary realignment (PunktSentenceTokenizer.span_tokenize). */
function punktSentenceSpans(text: string, params: PunktParameters): Array<[number, number]> {
  const slices: Array<[number, number]> = [];
  let lastBreak = 0;
  for (const { end, nextTokStart, context } of matchPotentialEndContexts(text)) {
    if (!textContainsSentbreak(context, params)) continue;
    slices.push([lastBreak, end]);
    lastBreak = nextTokStart >= 0 ? nextTokStart : end;
  }
  slices.push([lastBreak, pyRstrip(text).length]);

  // Realign closing punctuation that follows a break: "(Sent1.) Sent2." → ["(Sent1.)", "Sent2."].
  const spans: Array<[number, number]> = [];
  const nonEmpty = (start: number, stop: number) =>
    Math.min(stop, text.length) > Math.min(start, text.length);
  let realign = 0;
  for (let k = 0; k < slices.length; k++) {
    const start = slices[k][0] + realign;
    const stop = slices[k][1];
    const next = slices[k + 1];
    if (!next) {
      if (nonEmpty(start, stop)) spans.push([start, stop]);
      continue;
    }
    const m = BOUNDARY_REALIGNMENT_RE.exec(text.slice(next[0], next[1]));
    if (m) {
      spans.push([start, next[0] + pyRstrip(m[0]).length]);
      realign = m[0].length;
    } else {
      realign = 0;
      if (nonEmpty(start, stop)) spans.push([start, stop]);
    }
  }
  return spans;
}

/** Splits text into sentences with Punkt (default: the Brown-trained parameters). */
export function splitSentences(text: string, params: PunktParameters = brownPunktParameters()): string[] {
  return punktSentenceSpans(text, params).map(([start, stop]) => text.slice(start, stop));
}

/** IFEval's `count_sentences`: the number of Punkt sentences. */
export function countSentences(text: string, params: PunktParameters = brownPunktParameters()): number {
  return punktSentenceSpans(text, params).length;
}

// Punkt trainer constants (PunktTrainer defaults).
const ABBREV = 0.3;
const ABBREV_BACKOFF = 5;
const COLLOCATION = 7.88;
const SENT_STARTER = 30;
const MIN_COLLOC_FREQ = 1;

class Counter<K> extends Map<K, number> {
  total = 0;
  add(key: K, n = 1): void {
    this.set(key, (this.get(key) ?? 0) + n);
    this.total += n;
  }
  count(key: K): number {
    return this.get(key) ?? 0;
  }
}

/** `count_ab·log p + (count_a − count_ab)·log(1 − p)`, or 0 where Python's math.log raises. */
function logBinomial(k: number, n: number, p: number): number {
  if (p <= 0 || p >= 1) return 0;
  return k * Math.log(p) + n * Math.log(1 - p);
}

/** Dunning's log-likelihood ratio as Punkt's collocation and starter finders use it. */
function colLogLikelihood(countA: number, countB: number, countAB: number, total: number): number {
  const p = countB / total;
  const p1 = countAB / countA;
  const p2 = total === countA ? 1 : (countB - countAB) / (total - countA);
  const summand1 = logBinomial(countAB, countA - countAB, p);
  const summand2 = logBinomial(countB - countAB, total - countA - countB + countAB, p);
  const summand3 = countA === countAB || p1 <= 0 || p1 >= 1 ? 0 : logBinomial(countAB, countA - countAB, p1);
  const summand4 =
    countB === countAB || p2 <= 0 || p2 >= 1
      ? 0
      : logBinomial(countB - countAB, total - countA - countB + countAB, p2);
  return -2 * (summand1 + summand2 - summand3 - summand4);
}

/** The modified Dunning log-likelihood Punkt uses for abbreviation candidates. */
function dunningLogLikelihood(countA: number, countB: number, countAB: number, total: number): number {
  const p1 = countB / total;
  const p2 = 0.99;
  const nullHypo = countAB * Math.log(p1) + (countA - countAB) * Math.log(1 - p1);
  const altHypo = countAB * Math.log(p2) + (countA - countAB) * Math.log(1 - p2);
  return -2 * (nullHypo - altHypo);
}

/**
 * Punkt's unsupervised training on one text (NLTK's `PunktTrainer(text).get_params()`, default
 * hyper-parameters): abbreviations by log-likelihood with length, period and penalty factors, rare
 * abbreviations, orthographic contexts, frequent sentence starters and collocations.
 */
export function trainPunkt(text: string): PunktParameters {
  const params = emptyPunktParameters();
  const tokens = tokenizePunktWords(text);
  const typeFdist = new Counter<string>();
  let numPeriodToks = 0;
  for (const token of tokens) {
    typeFdist.add(token.type);
    if (token.periodFinal) numPeriodToks++;
  }

  // Abbreviations: period-final types that occur with their period far more than chance predicts.
  for (const type of new Set(tokens.map((t) => t.type))) {
    if (!RE_NON_PUNCT.test(type) || type === '##number##') continue;
    let candidate: string;
    let isAdd: boolean;
    if (type.endsWith('.')) {
      if (params.abbrevTypes.has(type)) continue;
      candidate = type.slice(0, -1);
      isAdd = true;
    } else {
      if (!params.abbrevTypes.has(type)) continue;
      candidate = type;
      isAdd = false;
    }
    const numPeriods = candidate.split('.').length;
    const numNonPeriods = [...candidate].length - numPeriods + 1;
    const countWithPeriod = typeFdist.count(`${candidate}.`);
    const countWithoutPeriod = typeFdist.count(candidate);
    const logLikelihood = dunningLogLikelihood(
      countWithPeriod + countWithoutPeriod,
      numPeriodToks,
      countWithPeriod,
      typeFdist.total,
    );
    const fLength = Math.exp(-numNonPeriods);
    const fPenalty = numNonPeriods ** -countWithoutPeriod;
    const score = logLikelihood * fLength * numPeriods * fPenalty;
    if (score >= ABBREV) {
      if (isAdd) params.abbrevTypes.add(candidate);
    } else if (!isAdd) params.abbrevTypes.delete(candidate);
  }

  for (const token of tokens) annotateFirstPass(token, params);

  // Orthographic contexts: in which case (upper/lower) each type occurs at which position.
  let position: OrthoPosition = 'internal';
  for (const token of tokens) {
    if (token.parastart && position !== 'unknown') position = 'initial';
    if (token.linestart && position === 'internal') position = 'unknown';
    const typ = token.typeNoSentperiod;
    const firstCase = token.firstCase;
    if (firstCase !== 'none') {
      const flag = ORTHO_FLAG[position][firstCase];
      params.orthoContext.set(typ, (params.orthoContext.get(typ) ?? 0) | flag);
    }
    if (token.sentbreak) position = token.isNumber || token.isInitial ? 'unknown' : 'initial';
    else if (token.ellipsis || token.abbr) position = 'unknown';
    else position = 'internal';
  }

  const sentbreakCount = tokens.reduce((n, t) => n + (t.sentbreak ? 1 : 0), 0);
  const sentStarterFdist = new Counter<string>();
  const collocationFdist = new Counter<string>();
  for (let k = 0; k + 1 < tokens.length; k++) {
    const token = tokens[k];
    const next = tokens[k + 1];
    if (!token.periodFinal) continue;
    if (isRareAbbrevType(token, next, params, typeFdist)) params.abbrevTypes.add(token.typeNoPeriod);
    if (token.sentbreak && !(token.isNumber || token.isInitial) && next.isAlpha)
      sentStarterFdist.add(next.type);
    if (token.sentbreak && (token.isNumber || token.isInitial) && token.isNonPunct && next.isNonPunct) {
      collocationFdist.add(`${token.typeNoPeriod} ${next.typeNoSentperiod}`);
    }
  }

  const total = typeFdist.total;
  for (const [typ, atBreak] of sentStarterFdist) {
    const typCount = typeFdist.count(typ) + typeFdist.count(`${typ}.`);
    if (typCount < atBreak) continue;
    const ll = colLogLikelihood(sentbreakCount, typCount, atBreak, total);
    if (ll >= SENT_STARTER && total / sentbreakCount > typCount / atBreak) params.sentStarters.add(typ);
  }
  for (const [pair, colCount] of collocationFdist) {
    const [typ1, typ2] = pair.split(' ');
    if (params.sentStarters.has(typ2)) continue;
    const typ1Count = typeFdist.count(typ1) + typeFdist.count(`${typ1}.`);
    const typ2Count = typeFdist.count(typ2) + typeFdist.count(`${typ2}.`);
    if (
      typ1Count > 1 &&
      typ2Count > 1 &&
      MIN_COLLOC_FREQ < colCount &&
      colCount <= Math.min(typ1Count, typ2Count)
    ) {
      const ll = colLogLikelihood(typ1Count, typ2Count, colCount, total);
      if (ll >= COLLOCATION && total / typ1Count > typ2Count / colCount) params.collocations.add(pair);
    }
  }
  return params;
}

/**
 * A rare abbreviation: a sentence-breaking period-final type seen fewer than ABBREV_BACKOFF times
 * and followed by internal punctuation, or by a lower-case word that is sometimes capitalized at
 * sentence starts but never inside sentences.
 */
function isRareAbbrevType(
  token: PunktToken,
  next: PunktToken,
  params: PunktParameters,
  typeFdist: Counter<string>,
): boolean {
  if (token.abbr || !token.sentbreak) return false;
  const typ = token.typeNoSentperiod;
  // NLTK counts `typ[:-1]` here (the type minus its last character); kept for identical training.
  const count = typeFdist.count(typ) + typeFdist.count(typ.slice(0, -1));
  if (params.abbrevTypes.has(typ) || count >= ABBREV_BACKOFF) return false;
  if (INTERNAL_PUNCTUATION.includes(next.tok.slice(0, 1))) return true;
  if (next.firstLower) {
    const ortho = params.orthoContext.get(next.typeNoSentperiod) ?? 0;
    return (ortho & ORTHO_BEG_UC) !== 0 && !(ortho & ORTHO_MID_UC);
  }
  return false;
}

/**
 * The Brown corpus as plain text for Punkt's training: every document's paragraphs as
 * src/data/brown.ts detokenizes them, headlines as their own paragraphs, paragraphs separated by
 * blank lines. Files are read one at a time and not cached (only the parameters are kept).
 */
function brownCorpusText(): string {
  const dir = brownCorpusDir();
  const paragraphs: string[] = [];
  for (const id of readdirSync(dir)
    .filter((f) => /^c[a-r]\d\d$/.test(f))
    .sort()) {
    for (const paragraph of parseBrownFile(id, readFileSync(join(dir, id), 'utf8')))
      paragraphs.push(paragraph.text);
  }
  return paragraphs.join('\n\n');
}

let brownParams: PunktParameters | undefined;

/** Punkt parameters trained on the Brown corpus, built on first use (about a second) and cached. */
export function brownPunktParameters(): PunktParameters {
  brownParams ??= trainPunkt(brownCorpusText());
  return brownParams;
}
