import type {
  ChatMessage,
  ChatPolicy,
  GenerateOptions,
  Generation,
  GenerationChunk,
} from '../../src/policy/types.ts';

/**
 * A policy that replays scripted answers word by word: attempt k of any session (k − 1 earlier
 * assistant turns in its messages) gets `answers[k − 1]`, or the last answer once they run out.
 * Deterministic tests of everything above the model; it records every call's messages and options.
 */
export class ScriptedPolicy implements ChatPolicy {
  readonly calls: { messages: ChatMessage[]; options: GenerateOptions }[] = [];
  constructor(
    private readonly answers: string[],
    readonly version = 'scripted-v1',
    private readonly delayMs = 0,
  ) {}

  async *generate(
    messages: readonly ChatMessage[],
    options: GenerateOptions = {},
  ): AsyncGenerator<GenerationChunk, Generation> {
    this.calls.push({ messages: messages.map((m) => ({ ...m })), options });
    const attempt = messages.filter((m) => m.role === 'assistant').length;
    const answer = this.answers[Math.min(attempt, this.answers.length - 1)];
    const pieces = answer.match(/\S+\s*|\s+/g) ?? [];
    const tokenIds: number[] = [];
    const logprobs: number[] = [];
    let text = '';
    for (const [i, piece] of pieces.entries()) {
      if (options.signal?.aborted) return { text, tokenIds, logprobs, finishReason: 'cancelled' };
      if (this.delayMs > 0) await new Promise((resolve) => setTimeout(resolve, this.delayMs));
      text += piece;
      tokenIds.push(i);
      logprobs.push(-0.5);
      yield { text: piece, tokenIds: [i], logprobs: [-0.5] };
    }
    return { text, tokenIds, logprobs, finishReason: 'stop' };
  }
}
