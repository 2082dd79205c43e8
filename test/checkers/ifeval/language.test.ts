import { describe, expect, it } from 'vitest';
import { languageName, languageResponseLanguage } from '../../../src/checkers/ifeval/language.ts';
import { check, describeWith, kwargsError } from '../ifeval-helpers.ts';

const ENGLISH = 'The weather is lovely today and we are going for a walk in the park.';
const FRENCH = "Le temps est magnifique aujourd'hui et nous allons nous promener dans le parc.";
const HINDI = 'आज मौसम बहुत अच्छा है और हम पार्क में टहलने जा रहे हैं।';

describe('language:response_language', () => {
  it('passes when langdetect reads the requested language', () => {
    expect(check(languageResponseLanguage, { language: 'en' }, ENGLISH).ok).toBe(true);
    expect(check(languageResponseLanguage, { language: 'fr' }, FRENCH).ok).toBe(true);
    expect(check(languageResponseLanguage, { language: 'hi' }, HINDI).ok).toBe(true);
  });

  it('names the language it read instead', () => {
    expect(check(languageResponseLanguage, { language: 'en' }, FRENCH)).toEqual({
      ok: false,
      score: 0,
      feedback: 'Your response reads as French (fr), not English; write the entire response in English.',
    });
  });

  it('passes text langdetect cannot analyse (no letters), as IFEval does, but not an empty response', () => {
    expect(check(languageResponseLanguage, { language: 'ja' }, '12345 !!! 678').ok).toBe(true);
    expect(check(languageResponseLanguage, { language: 'ja' }, '   ').ok).toBe(false);
  });

  it('is deterministic, with the verdicts of Python langdetect seeded with 0 on the same profiles', () => {
    const json = '{\n  "nickname": "staffy"\n}';
    const verdicts = Array.from(
      { length: 5 },
      () => check(languageResponseLanguage, { language: 'sv' }, json).ok,
    );
    expect(verdicts).toEqual([true, true, true, true, true]);
  });

  it("describes with IFEval's language names, and names other langdetect languages too", () => {
    expect(describeWith(languageResponseLanguage, { language: 'kn' })).toBe(
      'Your ENTIRE response should be in Kannada language, no other language is allowed.',
    );
    expect(languageName('bn')).toBe('Bengali');
    expect(languageName('nl')).toBe('Dutch');
  });

  it('refuses codes langdetect does not know, listing the known ones', () => {
    expect(kwargsError(languageResponseLanguage, { language: 'xx' })).toMatch(
      /^language: unknown language "xx": one of .*\ben\b/,
    );
    expect(kwargsError(languageResponseLanguage, { language: 'EN' })).toMatch(/unknown language "EN"/);
    expect(kwargsError(languageResponseLanguage, {})).toMatch(/^language: required/);
  });
});
