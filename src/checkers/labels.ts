/**
 * Each checker's name in words, for people choosing constraints (the writing page, `GET /v1/checkers`),
 * and which of its kwargs are patterns rather than plain text. One table beside the registry; a test
 * keeps it covering every registered checker.
 */

export interface CheckerLabel {
  /** What the constraint asks for, in a few plain words. */
  label: string;
  /** Kwargs matched as (Python) regular expressions: a plain word list needs its words escaped. */
  patternKwargs?: string[];
}

/** id → label. */
export const CHECKER_LABELS: Readonly<Record<string, CheckerLabel>> = {
  'keywords:existence': { label: 'Must include these words', patternKwargs: ['keywords'] },
  'keywords:frequency': { label: 'Use a word a set number of times', patternKwargs: ['keyword'] },
  'keywords:forbidden_words': { label: 'Must not use these words', patternKwargs: ['forbidden_words'] },
  'keywords:letter_frequency': { label: 'Use a letter a set number of times' },
  'language:response_language': { label: 'Write in a given language' },
  'length_constraints:number_sentences': { label: 'Sentence limit' },
  'length_constraints:number_paragraphs': { label: 'Number of paragraphs' },
  'length_constraints:number_words': { label: 'Word limit' },
  'length_constraints:nth_paragraph_first_word': { label: 'A paragraph starts with a given word' },
  'detectable_content:number_placeholders': { label: 'Placeholders in [brackets]' },
  'detectable_content:postscript': { label: 'End with a postscript (P.S.)' },
  'detectable_format:number_bullet_lists': { label: 'Number of bullet points' },
  'detectable_format:constrained_response': { label: 'Answer yes, no or maybe' },
  'detectable_format:number_highlighted_sections': { label: 'Highlighted sections' },
  'detectable_format:multiple_sections': { label: 'Numbered sections' },
  'detectable_format:json_format': { label: 'Answer in JSON' },
  'detectable_format:title': { label: 'A title in <<double angle brackets>>' },
  'combination:two_responses': { label: 'Two different answers' },
  'combination:repeat_prompt': { label: 'Repeat the request first' },
  'startend:end_checker': { label: 'End with this exact phrase' },
  'change_case:capital_word_frequency': { label: 'Words in capitals' },
  'change_case:english_capital': { label: 'All capital letters' },
  'change_case:english_lowercase': { label: 'All lowercase letters' },
  'punctuation:no_comma': { label: 'No commas' },
  'startend:quotation': { label: 'Wrap it in quotation marks' },
  'corgi:num_planning': { label: 'Finish a sentence in exactly N words' },
  'corgi:concepts': { label: 'Use these concepts' },
  'corgi:panagram': { label: 'One word from given letters' },
  'corgi:sentiment': { label: 'Positive or negative tone' },
  'corgi:no_repeat_ngram': { label: 'No repeated phrases' },
};

/** The label of checker `id`; its id for a checker the table lacks (a test keeps that from happening). */
export function labelOf(id: string): CheckerLabel {
  return CHECKER_LABELS[id] ?? { label: id };
}
