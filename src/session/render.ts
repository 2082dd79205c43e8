/**
 * How a session's words are laid out for the model. The live server, the trainer's task pools
 * and `corgi eval` all render through these functions, so a model sees the same instruction and
 * feedback wording everywhere.
 */
import type { ParsedConstraint } from '../checkers/types.ts';

/**
 * The first user turn: the writer's prompt, then each constraint's instruction sentence.
 * Without a prompt (task pools, eval cases) the constraints alone are the instruction.
 * Instructions that span lines (IFEval's bullet and section examples) end without a full stop,
 * so when one does, each instruction gets its own paragraph instead of running on.
 */
export function renderInstruction(
  prompt: string | undefined,
  constraints: readonly ParsedConstraint[],
): string {
  const sentences = constraints.map(({ checker, kwargs }) => checker.describe(kwargs));
  const instructions = sentences.join(sentences.some((s) => s.includes('\n')) ? '\n\n' : ' ');
  const trimmed = prompt?.trim();
  return trimmed ? `${trimmed}\n\n${instructions}` : instructions;
}

/** The user turn that carries checker feedback, worded as in the CORGI paper. */
export function renderFeedback(feedback: string): string {
  return `Feedback: ${feedback} Please try again.`;
}
