import { describe, expect, it } from 'vitest';
import {
  type BrownSplit,
  brownSplitOf,
  detokenize,
  loadBrownCorpus,
  universalTag,
} from '../../src/data/brown.ts';

const brown = loadBrownCorpus();
const sentence = (docId: string, index: number) => {
  const found = brown.sentencesOf().find((s) => s.docId === docId && s.index === index);
  if (!found) throw new Error(`no sentence ${docId}#${index}`);
  return found;
};

describe('loadBrownCorpus', () => {
  it('holds all 500 files and 1.16M tagged tokens, tokens aligned with tags', () => {
    expect(brown.documents).toHaveLength(500);
    const sentences = brown.sentencesOf();
    expect(sentences.reduce((n, s) => n + s.tokens.length, 0)).toBe(1_161_192);
    expect(sentences.every((s) => s.tokens.length === s.tags.length && s.tokens.length > 0)).toBe(true);
    expect(brown.documents.find((d) => d.id === 'cn01')?.category).toBe('adventure');
  });

  it('parses once and returns the cached corpus afterwards', () => {
    const start = performance.now();
    expect(loadBrownCorpus()).toBe(brown);
    expect(performance.now() - start).toBeLessThan(5);
  });
});

describe('the split', () => {
  it('is a pure function of the file id, about 90/5/5', () => {
    const ids = brown.documents.map((d) => d.id);
    expect(ids.map(brownSplitOf)).toEqual(ids.map(brownSplitOf));
    expect(brown.documents.every((d) => d.split === brownSplitOf(d.id))).toBe(true);
    // Pinned: changing the hash would silently move documents between train and test.
    expect(brown.documentsOf('train')).toHaveLength(449);
    expect(brown.documentsOf('validation')).toHaveLength(24);
    expect(brown.documentsOf('test')).toHaveLength(27);
    expect(brownSplitOf('ca01')).toBe('train');
    expect(brownSplitOf('ca14')).toBe('validation');
  });

  it('is disjoint and covers every document and sentence', () => {
    const splits: BrownSplit[] = ['train', 'validation', 'test'];
    const idSets = splits.map((split) => new Set(brown.documentsOf(split).map((d) => d.id)));
    const union = new Set(idSets.flatMap((set) => [...set]));
    expect(union.size).toBe(500);
    expect(idSets.reduce((n, set) => n + set.size, 0)).toBe(500);
    const sentenceCount = splits.reduce((n, split) => n + brown.sentencesOf(split).length, 0);
    expect(sentenceCount).toBe(brown.sentencesOf().length);
    for (const split of splits) {
      expect(brown.sentencesOf(split).every((s) => brownSplitOf(s.docId) === split)).toBe(true);
    }
  });
});

describe('natural text', () => {
  const allText = brown.documents.map((d) => d.text).join('\n\n');

  it('carries no tags and no Brown quote marks', () => {
    // Real slashes stay ("material/hr./*0F./in."); a word followed by a tag does not.
    expect(allText).not.toMatch(/\S\/(at|nn|nns|vbd|vbn|jj|np|in|cc|cs|rb)(-tl|-hl)?(\s|$)/);
    expect(allText).not.toContain('``');
    expect(allText).not.toContain("''");
    expect(allText).not.toMatch(/[?!]{2}/); // Brown doubles most "?" and "!"
  });

  it('puts no space before closing punctuation (one legitimate ":35.3" aside)', () => {
    expect(allText.match(/ [,.;?!)]/g) ?? []).toHaveLength(0);
    expect(allText.match(/ :/g)?.length ?? 0).toBeLessThanOrEqual(1);
    expect(allText.match(/\( /g) ?? []).toHaveLength(0);
  });

  it.each([
    [
      'ca01',
      0,
      `The Fulton County Grand Jury said Friday an investigation of Atlanta's recent primary election produced "no evidence" that any irregularities took place.`,
    ],
    // Brown writes `received '' ,`; the printed original reads `received,"`.
    [
      'ca01',
      3,
      `"Only a relative handful of such reports was received," the jury said, "considering the widespread interest in the election, the number of voters and the size of this city."`,
    ],
    // `Jr./np ./.` ends the sentence with one period.
    [
      'ca01',
      2,
      'The September-October term jury had been charged by Fulton Superior Court Judge Durwood Pye to investigate reports of possible "irregularities" in the hard-fought primary which was won by Mayor-nominate Ivan Allen Jr.',
    ],
    // Bare single quotes alternate open/close.
    ['ca02', 26, `"We're getting more 'pro' letters than 'con' on horse race betting," said Ratcliff.`],
    // `this '' ? ?` → `this?"`
    [
      'ca03',
      8,
      'Judge Parsons leaned over the bench and inquired, "You mean some of the defendants made statements admitting this?"',
    ],
  ])('detokenizes %s sentence %i', (docId, index, text) => {
    expect(sentence(docId, index).text).toBe(text);
  });

  it('keeps contractions and capitalisation as written', () => {
    const dan = brown.documents.find((d) => d.id === 'cn01')!.text;
    expect(dan).toContain(
      "He certainly didn't want a wife who was fickle as Ann. If he had married her, he'd have",
    );
  });

  it('keeps paragraphs (blank-line blocks) and gives headlines their own paragraph', () => {
    const doc = brown.documents[0];
    expect(doc.text.startsWith(`${doc.paragraphs[0].text}\n\n${doc.paragraphs[1].text}\n\n`)).toBe(true);
    const headline = doc.paragraphs.find((p) => p.sentences[0].headline)!;
    expect(headline.text).toBe('Merger proposed');
    expect(headline.sentences).toHaveLength(1);
    const multi = brown.documents.find((d) => d.id === 'cn01')!.paragraphs[0];
    expect(multi.sentences.length).toBeGreaterThan(1);
    expect(multi.text).toBe(multi.sentences.map((s) => s.text).join(' '));
  });
});

describe('detokenize', () => {
  it.each([
    [['``', 'Only', 'a', 'handful', "''", ',', 'he', 'said', '.'], '"Only a handful," he said.'],
    [['it', '(', 'the', 'resolution', ')', 'passed', '.'], 'it (the resolution) passed.'],
    [['no', '--', 'and', 'then', ';', 'yes', ':', 'done', '!', '!'], 'no -- and then; yes: done!'],
    [['think', ',', "'", 'my', 'man', "'", "''", '.'], `think, 'my man.'"`],
    [['D.C.', '.'], 'D.C.'],
  ])('%j → %s', (tokens, text) => {
    expect(detokenize(tokens)).toBe(text);
  });
});

describe('tags for task generators', () => {
  it('keeps raw Brown tags per token and maps them to the universal tagset', () => {
    const first = sentence('ca01', 0);
    expect(first.tokens.slice(0, 6)).toEqual(['The', 'Fulton', 'County', 'Grand', 'Jury', 'said']);
    expect(first.tags.slice(0, 6)).toEqual(['at', 'np-tl', 'nn-tl', 'jj-tl', 'nn-tl', 'vbd']);
    const nouns = first.tokens.filter((_, i) => universalTag(first.tags[i]) === 'NOUN');
    expect(nouns).toEqual([
      'Fulton',
      'County',
      'Jury',
      'Friday',
      'investigation',
      "Atlanta's",
      'primary',
      'election',
      'evidence',
      'irregularities',
      'place',
    ]);
  });

  it.each([
    ['nn', 'NOUN'],
    ['nns$-tl', 'NOUN'],
    ['vbd', 'VERB'],
    ['dod*', 'VERB'],
    ['md', 'VERB'],
    ['ppss+bem', 'PRON'],
    ['pp$', 'PRON'],
    ['jjt', 'ADJ'],
    ['fw-jj-tl', 'ADJ'],
    ['ql', 'ADV'],
    ['at', 'DET'],
    ['in-hl', 'ADP'],
    ['cs', 'CONJ'],
    ['cd', 'NUM'],
    ['to', 'PRT'],
    [',', '.'],
    ["''", '.'],
    ['--', '.'],
    ['*', 'ADV'],
    ['uh', 'X'],
  ])('%s → %s', (tag, expected) => {
    expect(universalTag(tag)).toBe(expected);
  });
});
