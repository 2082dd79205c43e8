/**
 * The `ifeval` target task: IFEval-style verifiable instructions on a Brown topic, held out from RL
 * training. The paper's transfer claim is that RL on feedback sessions for some constraints teaches
 * the model to use feedback on constraints it never trained on; IFEval's instruction families are
 * the standard set of such constraints. So an instance asks for a short text about one of the
 * sentence's nouns under one or two IFEval instructions (seeded kwargs), drawn only from the
 * families no source task uses: the word-count bound, first word, end phrase and forbidden words
 * (`length_constraints:number_words`, `length_constraints:nth_paragraph_first_word`,
 * `startend:end_checker`, `keywords:forbidden_words`) are trained on, and `keywords:existence` is
 * the `keywords` target's. Left out as well: `language:response_language` (Brown is English: asking
 * for English is trivial and no reference exists for another language) and
 * `detectable_format:constrained_response` (it answers a yes/no question, not a topic).
 *
 * Two instructions never conflict by IFEval's own table (`idsConflict`), and at most one of them
 * lays the text out (paragraphs, bullets, sections, two responses, JSON). The reference is the
 * Brown sentence, with the next sentences of its document where the layout needs more, edited to
 * satisfy the instructions (commas dropped, case changed, wrapped in quotes, a title or postscript
 * added...); counts that the text only has to meet (letters, a word's frequency, sentences) are
 * measured on the finished reference and turned into a bound on either side of it.
 */

import { IFEVAL_IDS, type IfevalId, idsConflict } from '../checkers/ifeval/conflicts.ts';
import { checkAll } from '../checkers/registry.ts';
import type { ConstraintSpec } from '../checkers/types.ts';
import type { Rng } from '../common/random.ts';
import { type TaskSentence, taskSentences, topicNouns, topicPhrase } from './sentences.ts';
import type { TaskGenerator } from './types.ts';

/** IFEval ids this task leaves out: trained on by a source task, the `keywords` target's, or unsuited (file header). */
const LEFT_OUT = [
  'keywords:existence',
  'keywords:forbidden_words',
  'language:response_language',
  'length_constraints:number_words',
  'length_constraints:nth_paragraph_first_word',
  'detectable_format:constrained_response',
  'startend:end_checker',
] as const satisfies readonly IfevalId[];

export type IfevalTargetId = Exclude<IfevalId, (typeof LEFT_OUT)[number]>;

/** The IFEval instruction ids this task draws from, in IFEval's order. */
export const IFEVAL_TARGET_IDS: readonly IfevalTargetId[] = IFEVAL_IDS.filter(
  (id): id is IfevalTargetId => !(LEFT_OUT as readonly IfevalId[]).includes(id),
);

/** Instructions that decide the text's layout: one per instance. */
const LAYOUT_IDS: readonly IfevalTargetId[] = [
  'length_constraints:number_paragraphs',
  'detectable_format:number_bullet_lists',
  'detectable_format:multiple_sections',
  'combination:two_responses',
  'detectable_format:json_format',
];

/** Pairs IFEval allows that a reference cannot meet together (a case change breaks "Section 1"). */
const EXTRA_CONFLICTS: readonly [IfevalTargetId, IfevalTargetId][] = [
  ['detectable_format:multiple_sections', 'change_case:english_capital'],
  ['detectable_format:multiple_sections', 'change_case:english_lowercase'],
  // A quote before the first "* " hides that bullet.
  ['startend:quotation', 'detectable_format:number_bullet_lists'],
];

/** True when `a` and `b` may be asked together in one instance. */
export function compatibleInstructions(a: IfevalTargetId, b: IfevalTargetId): boolean {
  if (a === b || idsConflict(a, b)) return false;
  if (LAYOUT_IDS.includes(a) && LAYOUT_IDS.includes(b)) return false;
  return !EXTRA_CONFLICTS.some(([x, y]) => (x === a && y === b) || (x === b && y === a));
}

/** The reference under construction: what the instructions ask of it, rendered by `renderReference`. */
interface ReferencePlan {
  sentences: string[];
  layout:
    | { kind: 'plain' | 'paragraphs' | 'bullets' | 'two_responses' | 'json' }
    | { kind: 'sections'; spliter: string };
  title?: string;
  highlights: number;
  capitalWords: number;
  placeholders: number;
  postscript?: { marker: string; text: string };
  repeat?: string;
  textCase?: 'lower' | 'upper';
  noComma: boolean;
  quote: boolean;
}

const PLACEHOLDER_SENTENCES = [
  'Sent by [name].',
  'Sent by [name] from [address].',
  'Sent by [name] from [address] on [date].',
];
const POSTSCRIPT_TEXT = 'Thank you for reading.';
/** A word that can carry a highlight or capitals: letters only, long enough to matter. */
const EDITABLE_WORD = /^[A-Za-z]{4,}$/;

/** Applies `edit` to the first `k` editable words of the sentences (in order). */
function editWords(sentences: string[], k: number, edit: (word: string) => string): string[] {
  let left = k;
  return sentences.map((sentence) =>
    sentence
      .split(' ')
      .map((piece) => {
        if (left > 0 && EDITABLE_WORD.test(piece)) {
          left--;
          return edit(piece);
        }
        return piece;
      })
      .join(' '),
  );
}

function renderReference(plan: ReferencePlan): string {
  let sentences = plan.sentences;
  if (plan.capitalWords > 0) sentences = editWords(sentences, plan.capitalWords, (w) => w.toUpperCase());
  if (plan.highlights > 0) sentences = editWords(sentences, plan.highlights, (w) => `*${w}*`);
  // Inside the last unit, so a paragraph or bullet count stays as asked.
  if (plan.placeholders > 0)
    sentences = [
      ...sentences.slice(0, -1),
      `${sentences.at(-1)} ${PLACEHOLDER_SENTENCES[plan.placeholders - 1]}`,
    ];
  const { layout } = plan;
  let text: string;
  if (layout.kind === 'paragraphs') text = sentences.join('\n\n***\n\n');
  else if (layout.kind === 'bullets') text = sentences.map((s) => `* ${s}`).join('\n');
  else if (layout.kind === 'sections')
    text = sentences.map((s, i) => `${layout.spliter} ${i + 1}\n${s}`).join('\n\n');
  else if (layout.kind === 'two_responses') text = sentences.join('\n******\n');
  else if (layout.kind === 'json') text = JSON.stringify({ text: sentences.join(' ') });
  else text = sentences.join(' ');
  if (plan.title) text = `<<${plan.title}>>\n\n${text}`;
  if (plan.repeat) text = `${plan.repeat}\n\n${text}`;
  if (plan.postscript) text = `${text}\n\n${plan.postscript.marker} ${plan.postscript.text}`;
  if (plan.textCase === 'lower') text = text.toLowerCase();
  if (plan.textCase === 'upper') text = text.toUpperCase();
  if (plan.noComma) text = text.replace(/,/g, '');
  return plan.quote ? `"${text}"` : text;
}

/**
 * The largest `f` in 1..`max` for which the constraint built by `at(f)` holds on `text` (an
 * "at least f" count), or 0: the checker itself measures, so a bound drawn from it always agrees.
 */
function measuredCount(text: string, max: number, at: (f: number) => ConstraintSpec): number {
  let count = 0;
  while (count < max && checkAll(text, [at(count + 1)]).ok) count++;
  return count;
}

/**
 * A bound on either side of a measured `count`: `at least` in [count − spread, count], or `less
 * than` in [count + 1, count + 1 + spread]; never below 2 ("at least 1 times" says nothing).
 */
function boundAround(
  count: number,
  rng: Rng,
  spread: number,
): { relation: 'at least' | 'less than'; value: number } {
  if (count >= 2 && rng.next() < 0.5)
    return { relation: 'at least', value: rng.int(Math.max(2, count - spread), count) };
  return { relation: 'less than', value: rng.int(Math.max(2, count + 1), count + 1 + spread) };
}

const documentSentences = new Map<string, TaskSentence[]>();
const indexedSplits = new Set<string>();

/** The eligible sentences after `sentence` in its document, in order (at most `k`). */
function followingSentences(sentence: TaskSentence, k: number): TaskSentence[] {
  // A document lies in one split, so indexing the sentence's split finds all of it.
  if (!indexedSplits.has(sentence.split)) {
    for (const s of taskSentences(sentence.split)) {
      const list = documentSentences.get(s.docId) ?? [];
      list.push(s);
      documentSentences.set(s.docId, list);
    }
    indexedSplits.add(sentence.split);
  }
  const list = documentSentences.get(sentence.docId) ?? [];
  return list.filter((s) => s.index > sentence.index).slice(0, k);
}

/** One or two compatible instruction ids, seeded. */
export function drawInstructionIds(rng: Rng): IfevalTargetId[] {
  const first = rng.pick(IFEVAL_TARGET_IDS);
  if (rng.next() < 0.5) return [first];
  const partners = IFEVAL_TARGET_IDS.filter((id) => compatibleInstructions(first, id));
  return partners.length > 0 ? [first, rng.pick(partners)] : [first];
}

export const ifevalTask: TaskGenerator = {
  task: 'ifeval',
  description:
    'Write about a topic under one or two IFEval instructions that no source task trains on ' +
    '(case, commas, quotes, paragraphs, bullets, sections, title, postscript, counts...).',
  generate(sentence, rng) {
    const nouns = topicNouns(sentence);
    if (nouns.length === 0) return null;
    const noun = rng.pick(nouns);
    const topic = topicPhrase(noun);
    const ids = drawInstructionIds(rng);
    const has = (id: IfevalTargetId) => ids.includes(id);

    // How many sentences the layout needs, and whether the document has them.
    let units = 1;
    const count = () => rng.int(2, 3);
    const layoutUnits: Partial<Record<IfevalTargetId, () => number>> = {
      'length_constraints:number_paragraphs': count,
      'detectable_format:number_bullet_lists': count,
      'detectable_format:multiple_sections': count,
      'combination:two_responses': () => 2,
      'length_constraints:number_sentences': () => rng.int(1, 3),
    };
    for (const id of ids) units = Math.max(units, layoutUnits[id]?.() ?? 1);
    const following = followingSentences(sentence, units);
    if (following.length < units - 1) return null;
    const body = [sentence, ...following.slice(0, units - 1)].map((s) => s.text);

    const several = units > 1 && !has('combination:two_responses');
    const prompt = several ? `Write a few sentences about ${topic}.` : `Write a sentence about ${topic}.`;
    const plan: ReferencePlan = {
      sentences: body,
      layout: { kind: 'plain' },
      highlights: 0,
      capitalWords: 0,
      placeholders: 0,
      noComma: false,
      quote: false,
    };
    const constraints: ConstraintSpec[] = [];
    // Instructions whose bound is measured on the finished reference.
    const measured: IfevalTargetId[] = [];
    for (const id of ids) {
      switch (id) {
        case 'length_constraints:number_paragraphs':
          plan.layout = { kind: 'paragraphs' };
          constraints.push({ id, kwargs: { num_paragraphs: units } });
          break;
        case 'detectable_format:number_bullet_lists':
          plan.layout = { kind: 'bullets' };
          constraints.push({ id, kwargs: { num_bullets: units } });
          break;
        case 'detectable_format:multiple_sections': {
          const spliter = rng.pick(['Section', 'SECTION']);
          plan.layout = { kind: 'sections', spliter };
          constraints.push({ id, kwargs: { section_spliter: spliter, num_sections: units } });
          break;
        }
        case 'combination:two_responses':
          plan.layout = { kind: 'two_responses' };
          constraints.push({ id, kwargs: {} });
          break;
        case 'detectable_format:json_format':
          plan.layout = { kind: 'json' };
          constraints.push({ id, kwargs: {} });
          break;
        case 'detectable_format:title':
          plan.title = topic.replace(/^the /, '').replace(/^./, (c) => c.toUpperCase());
          constraints.push({ id, kwargs: {} });
          break;
        case 'detectable_format:number_highlighted_sections':
          plan.highlights = rng.int(2, 3);
          constraints.push({ id, kwargs: { num_highlights: plan.highlights } });
          break;
        case 'change_case:capital_word_frequency':
          // IFEval asks both ways; "at least" needs words in capitals, "less than" a bound above the text's count.
          if (rng.next() < 0.5) {
            plan.capitalWords = rng.int(2, 3);
            constraints.push({
              id,
              kwargs: { capital_relation: 'at least', capital_frequency: plan.capitalWords },
            });
          } else measured.push(id);
          break;
        case 'detectable_content:number_placeholders':
          plan.placeholders = rng.int(1, 3);
          constraints.push({ id, kwargs: { num_placeholders: plan.placeholders } });
          break;
        case 'detectable_content:postscript': {
          const marker = rng.pick(['P.S.', 'P.P.S']);
          plan.postscript = {
            marker,
            text: followingSentences(sentence, units)[units - 1]?.text ?? POSTSCRIPT_TEXT,
          };
          constraints.push({ id, kwargs: { postscript_marker: marker } });
          break;
        }
        case 'combination:repeat_prompt':
          plan.repeat = prompt;
          constraints.push({ id, kwargs: { prompt_to_repeat: prompt } });
          break;
        case 'change_case:english_capital':
          plan.textCase = 'upper';
          constraints.push({ id, kwargs: {} });
          break;
        case 'change_case:english_lowercase':
          plan.textCase = 'lower';
          constraints.push({ id, kwargs: {} });
          break;
        case 'punctuation:no_comma':
          plan.noComma = true;
          constraints.push({ id, kwargs: {} });
          break;
        case 'startend:quotation':
          plan.quote = true;
          constraints.push({ id, kwargs: {} });
          break;
        default:
          measured.push(id);
      }
    }
    const reference = renderReference(plan);
    // IFEval's capitals check also asks langdetect for English, which reads some sentences in
    // capitals as German or Vietnamese: such a sentence does not suit the instruction.
    if (
      plan.textCase === 'upper' &&
      !checkAll(reference, [{ id: 'change_case:english_capital', kwargs: {} }]).ok
    )
      return null;
    for (const id of measured) constraints.push(measuredConstraint(id, reference, noun.word, rng));
    return { prompt, constraints, reference };
  },
};

/** A count instruction whose bound sits on either side of what `reference` has. */
function measuredConstraint(
  id: IfevalTargetId,
  reference: string,
  topicWord: string,
  rng: Rng,
): ConstraintSpec {
  if (id === 'keywords:letter_frequency') {
    const letters = [...new Set(reference.toLowerCase().match(/[a-z]/g) ?? [])].sort();
    const letter = rng.pick(letters);
    const at = (f: number) => ({ id, kwargs: { letter, let_relation: 'at least', let_frequency: f } });
    const { relation, value } = boundAround(measuredCount(reference, 200, at), rng, 3);
    return { id, kwargs: { letter, let_relation: relation, let_frequency: value } };
  }
  if (id === 'keywords:frequency') {
    const keyword = topicWord;
    const at = (f: number) => ({ id, kwargs: { keyword, relation: 'at least', frequency: f } });
    const { relation, value } = boundAround(measuredCount(reference, 20, at), rng, 1);
    return { id, kwargs: { keyword, relation, frequency: value } };
  }
  if (id === 'length_constraints:number_sentences') {
    const at = (f: number) => ({ id, kwargs: { relation: 'at least', num_sentences: f } });
    const { relation, value } = boundAround(measuredCount(reference, 20, at), rng, 1);
    return { id, kwargs: { relation, num_sentences: value } };
  }
  if (id === 'change_case:capital_word_frequency') {
    const at = (f: number) => ({ id, kwargs: { capital_relation: 'at least', capital_frequency: f } });
    const count = measuredCount(reference, 20, at);
    return {
      id,
      kwargs: {
        capital_relation: 'less than',
        capital_frequency: rng.int(Math.max(2, count + 1), count + 3),
      },
    };
  }
  throw new RangeError(`ifeval task: no measured bound for ${id}`);
}
