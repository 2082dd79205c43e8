import { describe, expect, it } from 'vitest';
import { fitConversation } from '../../src/policy/fit-conversation.ts';
import type { ChatMessage } from '../../src/policy/types.ts';

describe('fitConversation', () => {
  // One "token" per character keeps the arithmetic readable.
  const encode = (messages: readonly ChatMessage[]) =>
    [...messages.map((m) => m.content).join('')].map(() => 0);
  const session: ChatMessage[] = [
    { role: 'user', content: 'IIIIIIIIII' }, // the instruction: 10
    { role: 'assistant', content: 'a1a1a1a1' }, // 8
    { role: 'user', content: 'f1f1f1' }, // 6
    { role: 'assistant', content: 'a2a2a2a2' },
    { role: 'user', content: 'f2f2f2' },
    { role: 'assistant', content: 'a3a3a3a3' },
    { role: 'user', content: 'f3f3f3' },
  ];
  const kept = (budget: number) => {
    const contents: string[] = [];
    fitConversation(
      session,
      (messages) => {
        contents.splice(0, contents.length, ...messages.map((m) => m.content));
        return encode(messages);
      },
      budget,
    );
    return contents;
  };

  it('keeps the whole conversation when it fits', () => {
    expect(kept(52)).toHaveLength(7);
  });

  it('drops the oldest retry exchanges first, keeping the instruction and the latest attempt', () => {
    expect(kept(51)).toEqual(['IIIIIIIIII', 'a2a2a2a2', 'f2f2f2', 'a3a3a3a3', 'f3f3f3']);
    expect(kept(24)).toEqual(['IIIIIIIIII', 'a3a3a3a3', 'f3f3f3']);
  });

  it('keeps only the last feedback when even one attempt does not fit, and returns the shortest otherwise', () => {
    expect(kept(23)).toEqual(['IIIIIIIIII', 'f3f3f3']);
    expect(fitConversation(session, encode, 5)).toHaveLength(16);
  });

  it('never drops a single-turn prompt', () => {
    expect(fitConversation(session.slice(0, 1), encode, 3)).toHaveLength(10);
  });
});
