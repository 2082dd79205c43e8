import { describe, expect, it } from 'vitest';
import {
  countHighlights,
  formatConstrainedResponse,
  formatJsonFormat,
  formatMultipleSections,
  formatNumberBulletLists,
  formatNumberHighlightedSections,
  formatTitle,
} from '../../../src/checkers/ifeval/detectable-format.ts';
import { check, describeWith, kwargsError } from '../ifeval-helpers.ts';

describe('detectable_format:number_bullet_lists', () => {
  const three = { num_bullets: 3 };

  it('counts lines starting with * or - (after spaces), exactly', () => {
    expect(check(formatNumberBulletLists, three, 'Intro:\n* one\n  * two\n- three').ok).toBe(true);
    expect(check(formatNumberBulletLists, three, '* one\n**bold** line\n- two')).toEqual({
      ok: false,
      score: 0,
      feedback: 'Your response has 2 bullet points (lines starting with * or -); it should have exactly 3.',
    });
    expect(check(formatNumberBulletLists, three, '* a\n* b\n* c\n* d').ok).toBe(false);
  });

  it('anchors lines at "\\n" only, as Python MULTILINE does (a "\\r" line break is no new line)', () => {
    expect(check(formatNumberBulletLists, { num_bullets: 1 }, '* one\r* two').ok).toBe(true);
  });

  it('describes as IFEval', () => {
    expect(describeWith(formatNumberBulletLists, three)).toBe(
      'Your answer must contain exactly 3 bullet points. Use the markdown bullet points such as:\n* This is point 1. \n* This is point 2',
    );
  });
});

describe('detectable_format:constrained_response', () => {
  it('passes when the response contains one of the three options, word for word', () => {
    expect(check(formatConstrainedResponse, {}, 'My answer is yes.').ok).toBe(true);
    expect(check(formatConstrainedResponse, {}, 'Well... My answer is maybe. It depends.').ok).toBe(true);
    expect(check(formatConstrainedResponse, {}, 'my answer is yes.').feedback).toMatch(/none of the options/);
    expect(check(formatConstrainedResponse, {}, 'My answer is yes').ok).toBe(false);
  });

  it('describes with the Python tuple and takes no kwargs', () => {
    expect(describeWith(formatConstrainedResponse, {})).toBe(
      "Answer with one of the following options: ('My answer is yes.', 'My answer is no.', 'My answer is maybe.')",
    );
    expect(kwargsError(formatConstrainedResponse, { options: [] })).toMatch(
      /unknown kwarg "options"; this instruction takes none/,
    );
  });
});

describe('detectable_format:number_highlighted_sections', () => {
  it('counts non-blank *italic* and **bold** spans on one line', () => {
    expect(countHighlights('*one* and **two**')).toBe(2);
    expect(countHighlights('* * and ** ** and *a\nb*')).toBe(0);
    expect(check(formatNumberHighlightedSections, { num_highlights: 2 }, '*one* text *two*').ok).toBe(true);
    expect(check(formatNumberHighlightedSections, { num_highlights: 3 }, '*one* text *two*')).toEqual({
      ok: false,
      score: 2 / 3,
      feedback:
        'Your response has 2 highlighted sections (markdown *highlighted section*); it should have at least 3.',
    });
  });
});

describe('detectable_format:multiple_sections', () => {
  const kw = { section_spliter: 'SECTION', num_sections: 2 };

  it('counts "SECTION n" markers, case-sensitively, at least the number asked', () => {
    expect(check(formatMultipleSections, kw, 'SECTION 1\nIntro\nSECTION 2\nBody\nSECTION 3\nEnd').ok).toBe(
      true,
    );
    expect(check(formatMultipleSections, kw, 'Section 1\nIntro\nSection 2\nBody')).toEqual({
      ok: false,
      score: 0,
      feedback:
        'Your response has 0 sections marked "SECTION X" (such as "SECTION 1"); it should have at least 2.',
    });
    expect(check(formatMultipleSections, kw, 'SECTION one\nSECTION two').ok).toBe(false);
  });

  it('describes as IFEval, with the splitter stripped', () => {
    expect(describeWith(formatMultipleSections, { section_spliter: ' Day ', num_sections: 2 })).toBe(
      'Your response must have 2 sections. Mark the beginning of each section with Day X, such as:\nDay 1\n[content of section 1]\nDay 2\n[content of section 2]',
    );
  });
});

describe('detectable_format:json_format', () => {
  it('accepts JSON, also inside ``` fences', () => {
    expect(check(formatJsonFormat, {}, '{"a": [1, 2, {"b": null}]}').ok).toBe(true);
    expect(check(formatJsonFormat, {}, '```json\n{"a": 1}\n```').ok).toBe(true);
    expect(check(formatJsonFormat, {}, '  ```\n[1, 2]\n```  ').ok).toBe(true);
    expect(check(formatJsonFormat, {}, '"just a string"').ok).toBe(true);
  });

  it("accepts what Python's json.loads accepts beyond JSON (NaN, Infinity), but not in strings", () => {
    expect(check(formatJsonFormat, {}, '{"x": NaN, "y": -Infinity}').ok).toBe(true);
    expect(check(formatJsonFormat, {}, '{"x": "NaN"}').ok).toBe(true);
  });

  it('fails text around the JSON, invalid JSON and plain prose, saying why', () => {
    const outcome = check(formatJsonFormat, {}, 'Here it is: {"a": 1}');
    expect(outcome.ok).toBe(false);
    expect(outcome.feedback).toMatch(
      /^Your response is not valid JSON \(after removing any ``` fences\): .+\. Output only one JSON value\.$/,
    );
    expect(check(formatJsonFormat, {}, "{'a': 1}").ok).toBe(false);
    expect(check(formatJsonFormat, {}, '{"a": 1,}').ok).toBe(false);
    expect(check(formatJsonFormat, {}, 'Plain prose.').ok).toBe(false);
    expect(check(formatJsonFormat, {}, '```json\n```').ok).toBe(false);
  });
});

describe('detectable_format:title', () => {
  it('passes a non-blank title in << >> on one line', () => {
    expect(check(formatTitle, {}, '<<Poem of Joy>>\nRoses are red.').ok).toBe(true);
  });

  it('fails without a title, with a blank one, or one broken over lines', () => {
    const missing = check(formatTitle, {}, 'Poem of Joy\nRoses are red.');
    expect(missing).toEqual({
      ok: false,
      score: 0,
      feedback:
        'Your response has no title wrapped in double angular brackets; add one on its own line, such as <<poem of joy>>.',
    });
    expect(check(formatTitle, {}, '<<   >> text').ok).toBe(false);
    expect(check(formatTitle, {}, '<<Poem\nof Joy>>').ok).toBe(false);
    expect(check(formatTitle, {}, '<Poem of Joy>').ok).toBe(false);
  });
});
