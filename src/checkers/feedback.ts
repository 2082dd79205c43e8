/**
 * How several feedback messages become one turn, as in the CORGI paper: the first message as
 * is, then "In addition, ...", then "Moreover, ..." for the third and any later one. Used by
 * `checkAll` across constraints and by checkers that report several problems at once.
 */

/** Connectives the paper uses to chain several feedback messages into one turn. */
const FEEDBACK_CONNECTIVES = ['', 'In addition, ', 'Moreover, '];

/**
 * Joins feedback messages as the paper does: the first as is, then "In addition, ...", then
 * "Moreover, ..." for the third and any later one.
 */
export function joinFeedback(messages: readonly string[]): string | null {
  if (messages.length === 0) return null;
  return messages
    .map((message, i) => {
      const connective = FEEDBACK_CONNECTIVES[Math.min(i, FEEDBACK_CONNECTIVES.length - 1)];
      return connective ? connective + lowerFirst(message) : message;
    })
    .join(' ');
}

/** "The last word ..." → "the last word ...", but "JSON ..." and "I ..." stay as they are. */
function lowerFirst(message: string): string {
  const [first, second] = message;
  if (!first || !second || second !== second.toLowerCase() || /^I\b/.test(message)) return message;
  return first.toLowerCase() + message.slice(1);
}
