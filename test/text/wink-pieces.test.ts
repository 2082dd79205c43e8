import { describe, expect, it } from 'vitest';
import { analyzeText } from '../../src/text/nlp.ts';
import { boundPieces, WINK_PIECE_MAX_CHARS } from '../../src/text/wink-pieces.ts';

describe('boundPieces', () => {
  it('returns a text whose pieces are all short as it is', () => {
    const text = `The dog ran.\n\n${'x'.repeat(WINK_PIECE_MAX_CHARS)} https://example.com/a/b`;
    expect(boundPieces(text)).toBe(text);
  });

  it('cuts a long punctuated piece after punctuation, keeping its words whole', () => {
    const piece = 'dog,park,'.repeat(40);
    const bounded = boundPieces(`a ${piece} b`, 20);
    const segments = bounded.split(' ');
    expect(segments[0]).toBe('a');
    expect(segments.at(-1)).toBe('b');
    for (const segment of segments) expect(segment.length).toBeLessThanOrEqual(20);
    expect(segments.slice(1, -1).join('')).toBe(piece);
    expect(
      segments.slice(1, -1).every((segment) => /^(?:dog,park,|park,dog,|dog,|park,)+$/.test(segment)),
    ).toBe(true);
  });

  it('keeps only the head of a run of letters and digits longer than the bound', () => {
    expect(boundPieces(`${'a'.repeat(50)}dog!park`, 20)).toBe(`${'a'.repeat(20)} !park`);
  });

  it('never cuts a surrogate pair apart', () => {
    const bounded = boundPieces('😀'.repeat(30), 7);
    for (const segment of bounded.split(' ')) expect(segment).toMatch(/^(?:😀)+$/u);
    expect(bounded.replaceAll(' ', '')).toBe('😀'.repeat(30));
  });

  it('lets the concepts checker still find words in a long punctuated run', () => {
    const words = analyzeText(`${'zzz,'.repeat(100)}dog,${'zzz,'.repeat(100)}`).tokens.map((t) => t.normal);
    expect(words).toContain('dog');
  });
});
