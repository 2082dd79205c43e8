/**
 * IFEval's 25 instruction checkers, in the order of `IFEVAL_IDS` (conflicts.ts). Each family's
 * file cites the IFEval classes it follows; src/text/ holds the Python, NLTK and langdetect ports.
 * They agree with the official checker on every row of shared/data/ifeval (strict and loose;
 * test/checkers/ifeval-oracle.test.ts).
 *
 * Deliberate differences from IFEval, none of which the oracle exercises:
 * - Kwargs IFEval would fill with a random value (missing, negative, a `letter` outside a–z,
 *   `nth_paragraph` > `num_paragraphs`) are refused with an error naming the field, and counts
 *   must be ≥ 1. A `first_word` IFEval could never match (spaces, . , ? ! ' ") is refused too.
 * - `language` accepts every langdetect language, not only IFEval's 30 (which crash it otherwise).
 * - A keyword, forbidden word, section splitter or postscript marker that is not a valid Python
 *   pattern (IFEval crashes), that JS cannot express, or that nests repetition (`(a+)+`, exponential
 *   backtracking) is matched literally.
 * - Sentences use Punkt trained on the Brown corpus rather than NLTK's english.pickle, and
 *   langdetect uses the npm package's 53 profiles rather than Python's 55 (no ca, cy; an older
 *   ko): on borderline texts a sentence count or a detected language can differ.
 */

import type { Checker } from '../types.ts';
import {
  changeCaseCapitalWordFrequency,
  changeCaseEnglishCapital,
  changeCaseEnglishLowercase,
} from './change-case.ts';
import { combinationRepeatPrompt, combinationTwoResponses } from './combination.ts';
import { contentNumberPlaceholders, contentPostscript } from './detectable-content.ts';
import {
  formatConstrainedResponse,
  formatJsonFormat,
  formatMultipleSections,
  formatNumberBulletLists,
  formatNumberHighlightedSections,
  formatTitle,
} from './detectable-format.ts';
import {
  keywordsExistence,
  keywordsForbiddenWords,
  keywordsFrequency,
  keywordsLetterFrequency,
} from './keywords.ts';
import { languageResponseLanguage } from './language.ts';
import {
  lengthNthParagraphFirstWord,
  lengthNumberParagraphs,
  lengthNumberSentences,
  lengthNumberWords,
} from './length-constraints.ts';
import { punctuationNoComma } from './punctuation.ts';
import { startendEndChecker, startendQuotation } from './startend.ts';

export const ifevalCheckers: Checker[] = [
  keywordsExistence,
  keywordsFrequency,
  keywordsForbiddenWords,
  keywordsLetterFrequency,
  languageResponseLanguage,
  lengthNumberSentences,
  lengthNumberParagraphs,
  lengthNumberWords,
  lengthNthParagraphFirstWord,
  contentNumberPlaceholders,
  contentPostscript,
  formatNumberBulletLists,
  formatConstrainedResponse,
  formatNumberHighlightedSections,
  formatMultipleSections,
  formatJsonFormat,
  formatTitle,
  combinationTwoResponses,
  combinationRepeatPrompt,
  startendEndChecker,
  changeCaseCapitalWordFrequency,
  changeCaseEnglishCapital,
  changeCaseEnglishLowercase,
  punctuationNoComma,
  startendQuotation,
] as Checker[];
