/**
 * Fitting a conversation into a context window, for every engine: what is dropped first when a
 * long feedback session no longer fits.
 */
import type { ChatMessage } from './types.ts';

/**
 * Encodes `messages` so the prompt takes at most `budget` tokens. A long feedback session (a small
 * model's window holds only a few attempts) drops its oldest retry exchanges first — an assistant
 * attempt with the feedback turn after it — keeping the instruction (every message before the
 * first assistant turn) and the most recent exchange, which is what the next attempt must fix. If
 * that still does not fit, the last attempt goes too and only its feedback stays. Returns the ids
 * of the first version that fits, or the shortest one (generation then refuses it with the reason).
 */
export function fitConversation(
  messages: readonly ChatMessage[],
  encode: (messages: readonly ChatMessage[]) => number[],
  budget: number,
): number[] {
  let ids = encode(messages);
  if (ids.length <= budget) return ids;
  const firstAssistant = messages.findIndex((m) => m.role === 'assistant');
  if (firstAssistant < 0) return ids;
  const head = messages.slice(0, firstAssistant);
  const exchanges = messages.slice(firstAssistant);
  // Drop whole (assistant, user) pairs from the front while more than the latest pair remains.
  for (let drop = 2; drop <= exchanges.length - 1; drop += 2) {
    const kept = exchanges.slice(drop);
    ids = encode([...head, ...kept]);
    if (ids.length <= budget) return ids;
  }
  const last = exchanges.at(-1)!;
  if (exchanges.length > 1 && last.role === 'user') ids = encode([...head, last]);
  return ids;
}
