/**
 * The target tasks: held out from RL training, used to measure whether the skill of using
 * feedback transfers (the CORGI paper's meta-learning result: training on source tasks improved
 * held-out CommonGen-Hard and others).
 *
 * - `concepts`: CommonGen-Hard-like, at the scale of one Brown sentence: 3–5 content-word lemmas
 *   (common nouns and verbs by the Brown tags, lemmatized with `lemmaOf` from the `corgi:concepts`
 *   checker's nlp.ts), in random order. The paper's own CommonGen-Hard sets (20–30 concepts) are
 *   in ../shared/data/corgi and read by `readCasesJsonl`; ours are what a small Brown-trained model
 *   can attempt.
 * - `keywords` (our choice): IFEval's `keywords:existence` with two content words of the sentence,
 *   plus a `length_constraints:number_words` "less than" bound 2–6 words above the sentence's count.
 *   Why this one: its main constraint and its feedback ("Your response is missing the keyword
 *   ...") never appear in RL training, it differs in kind from `concepts` (exact string, as IFEval
 *   searches keywords, not lemma) and from the source `forbidden_words` (inclusion, not
 *   avoidance), and the bound makes it a two-constraint task where fixing one constraint can break
 *   the other, which is where multi-turn feedback should help most. A small model trained on Brown
 *   can attempt it (two given words in one short sentence), unlike IFEval's format tasks (JSON,
 *   sections, bullet lists) that Brown never shows. Reusing the word bound, a source constraint,
 *   inside it is deliberate: the transfer question is the new combination and the unseen checker.
 * - `ifeval`: IFEval's format and count instructions that no source task uses, one or two per
 *   instance, on a topic (ifeval-task.ts).
 */
import { findConcept } from '../checkers/paper/concepts.ts';
import { analyzeText, lemmaOf } from '../text/nlp.ts';
import { countWords } from '../text/python.ts';
import { ifevalTask } from './ifeval-task.ts';
import { contentWords, isVagueWord } from './sentences.ts';
import type { TaskGenerator } from './types.ts';

export const conceptsTask: TaskGenerator = {
  task: 'concepts',
  description: 'Write a sentence that uses 3–5 given concepts in any inflection (corgi:concepts).',
  generate(sentence, rng) {
    const lemmas = new Set<string>();
    // The checker's own parse of the sentence (memoized, so the check that follows reuses it):
    // a word lemmatized alone can differ from the word in context ("reporting" as a noun is not
    // "report"), and such a concept is left out rather than failing its own reference.
    const analysis = analyzeText(sentence.text);
    for (const { word, pos } of contentWords(sentence)) {
      if (pos === 'adjective') continue;
      const lemma = lemmaOf(word);
      if (!/^[a-z]{3,}$/.test(lemma) || isVagueWord(lemma)) continue;
      if (findConcept(analysis, lemma).length > 0) lemmas.add(lemma);
    }
    if (lemmas.size < 3) return null;
    const concepts = rng.sample([...lemmas], rng.int(3, Math.min(5, lemmas.size)));
    return { constraints: [{ id: 'corgi:concepts', kwargs: { concepts } }], reference: sentence.text };
  },
};

export const keywordsTask: TaskGenerator = {
  task: 'keywords',
  description:
    'Use two given keywords in fewer than N words (keywords:existence + length_constraints:number_words).',
  generate(sentence, rng) {
    const words = contentWords(sentence).filter(({ word }) => word.length >= 4);
    if (words.length < 2) return null;
    const keywords = rng
      .sample(words, 2)
      .map(({ word }) => word)
      .sort();
    const bound = countWords(sentence.text) + rng.int(2, 6);
    return {
      constraints: [
        { id: 'keywords:existence', kwargs: { keywords } },
        { id: 'length_constraints:number_words', kwargs: { relation: 'less than', num_words: bound } },
      ],
      reference: sentence.text,
    };
  },
};

export const targetTaskGenerators: readonly TaskGenerator[] = [conceptsTask, keywordsTask, ifevalTask];
