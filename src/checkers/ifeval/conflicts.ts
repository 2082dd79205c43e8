/**
 * IFEval's conflict table (instruction_following_eval/instructions_registry.py,
 * INSTRUCTION_CONFLICTS, made symmetric by its `conflict_make`): pairs of instructions that
 * cannot sensibly be asked together, e.g. "answer in JSON" with "end with this phrase".
 *
 * One deliberate difference: IFEval also makes every instruction conflict with itself, yet its
 * own evaluation data repeats an id with different kwargs in 17 prompts (two
 * `capital_word_frequency` bounds, say) and grades them. We follow the data: the same id twice is
 * allowed; two different ids that IFEval marks as conflicting are rejected.
 */
export const IFEVAL_IDS = [
  'keywords:existence',
  'keywords:frequency',
  'keywords:forbidden_words',
  'keywords:letter_frequency',
  'language:response_language',
  'length_constraints:number_sentences',
  'length_constraints:number_paragraphs',
  'length_constraints:number_words',
  'length_constraints:nth_paragraph_first_word',
  'detectable_content:number_placeholders',
  'detectable_content:postscript',
  'detectable_format:number_bullet_lists',
  'detectable_format:constrained_response',
  'detectable_format:number_highlighted_sections',
  'detectable_format:multiple_sections',
  'detectable_format:json_format',
  'detectable_format:title',
  'combination:two_responses',
  'combination:repeat_prompt',
  'startend:end_checker',
  'change_case:capital_word_frequency',
  'change_case:english_capital',
  'change_case:english_lowercase',
  'punctuation:no_comma',
  'startend:quotation',
] as const;

export type IfevalId = (typeof IFEVAL_IDS)[number];

const allExcept = (...kept: IfevalId[]): IfevalId[] => IFEVAL_IDS.filter((id) => !kept.includes(id));

/** The table as IFEval writes it: each id with the ids it conflicts with (before symmetrizing). */
const DECLARED: Partial<Record<IfevalId, IfevalId[]>> = {
  'language:response_language': [
    'detectable_format:multiple_sections',
    'keywords:existence',
    'keywords:frequency',
    'keywords:forbidden_words',
    'startend:end_checker',
    'change_case:english_capital',
    'change_case:english_lowercase',
  ],
  'length_constraints:number_paragraphs': [
    'length_constraints:nth_paragraph_first_word',
    'length_constraints:number_sentences',
  ],
  'length_constraints:nth_paragraph_first_word': ['length_constraints:number_paragraphs'],
  'detectable_format:constrained_response': allExcept(),
  'detectable_format:multiple_sections': [
    'language:response_language',
    'detectable_format:number_highlighted_sections',
  ],
  'detectable_format:json_format': allExcept('keywords:forbidden_words', 'keywords:existence'),
  'combination:two_responses': allExcept(
    'keywords:forbidden_words',
    'keywords:existence',
    'language:response_language',
    'detectable_format:title',
    'punctuation:no_comma',
  ),
  'combination:repeat_prompt': allExcept(
    'keywords:existence',
    'detectable_format:title',
    'punctuation:no_comma',
  ),
  'change_case:capital_word_frequency': ['change_case:english_lowercase', 'change_case:english_capital'],
  'change_case:english_lowercase': ['change_case:english_capital'],
  'startend:quotation': ['detectable_format:title'],
};

const CONFLICTS = new Map<string, Set<string>>();
for (const [id, others] of Object.entries(DECLARED)) {
  for (const other of others ?? []) {
    if (other === id) continue;
    if (!CONFLICTS.has(id)) CONFLICTS.set(id, new Set());
    if (!CONFLICTS.has(other)) CONFLICTS.set(other, new Set());
    CONFLICTS.get(id)!.add(other);
    CONFLICTS.get(other)!.add(id);
  }
}

/** True when IFEval forbids asking for `a` and `b` (two different ids) in one prompt. */
export function idsConflict(a: string, b: string): boolean {
  return a !== b && (CONFLICTS.get(a)?.has(b) ?? false);
}
