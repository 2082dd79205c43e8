/**
 * One tokenizer for both engines: the TypeScript tokenizer rebuilt from the SmolLM2 GGUF's metadata
 * gives llama.cpp's own ids on real text, and our ChatML rendering gives the ids of the GGUF's Jinja
 * chat template as node-llama-cpp renders it.
 */
import { type ChatHistoryItem, JinjaTemplateChatWrapper, type Token } from 'node-llama-cpp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Tokenizer } from '../../src/model/tokenizer.ts';
import { checkGgufFile } from '../../src/policy/gguf-file.ts';
import { tokenizerForGguf } from '../../src/policy/llama-cpp-policy.ts';
import { acquireModel, type ModelLease } from '../../src/policy/llama-runtime.ts';
import type { ChatMessage } from '../../src/policy/types.ts';
import { noteSkip, smollm2GgufPath } from '../support/smollm2.ts';
import { parityTexts } from '../support/tokenizer-texts.ts';

const path = smollm2GgufPath();
noteSkip('llama.cpp tokenizer parity', path);

describe.skipIf(!path)('SmolLM2 tokenizer parity with llama.cpp', () => {
  let lease: ModelLease;
  let tokenizer: Tokenizer;
  let template: string;

  beforeAll(async () => {
    const { metadata } = await checkGgufFile(path!);
    tokenizer = tokenizerForGguf(path!, metadata);
    template = metadata['tokenizer.chat_template'] as string;
    lease = await acquireModel(path!);
  }, 60_000);
  afterAll(async () => {
    await lease?.release();
  });

  it('encodes real text to the ids llama.cpp gives', () => {
    const texts = parityTexts(300);
    expect(texts.length).toBeGreaterThan(300);
    let tokens = 0;
    for (const text of texts) {
      const ours = tokenizer.encode(text);
      expect(ours, JSON.stringify(text)).toEqual(lease.model.tokenize(text, true));
      tokens += ours.length;
    }
    expect(tokens).toBeGreaterThan(5000);
  });

  it('decodes llama.cpp ids back to the text', () => {
    for (const text of parityTexts(50)) {
      expect(tokenizer.decode(lease.model.tokenize(text, true) as number[])).toBe(text);
    }
  });

  it.each<[string, ChatMessage[]]>([
    [
      'one user turn',
      [{ role: 'user', content: 'Use the words river and lantern, no commas, under 30 words.' }],
    ],
    [
      'a feedback session',
      [
        { role: 'user', content: 'Write a sentence with the words dog and park.' },
        { role: 'assistant', content: 'The dog ran home.' },
        {
          role: 'user',
          content: 'Feedback: You are missing the following concepts: park. Please try again.',
        },
        { role: 'assistant', content: 'The dog ran  in the park —  twice!\n' },
        { role: 'user', content: 'Feedback: Exactly 5 words, please. Please try again.' },
      ],
    ],
    [
      'its own system message',
      [
        { role: 'system', content: 'You write short, plain sentences.' },
        { role: 'user', content: 'Describe a lantern in 12 words.' },
      ],
    ],
  ])('renders %s with the ids of the GGUF chat template', (_name, messages) => {
    const wrapper = new JinjaTemplateChatWrapper({ template, tokenizer: lease.model.tokenizer });
    const history: ChatHistoryItem[] = messages.map((m) =>
      m.role === 'assistant' ? { type: 'model', response: [m.content] } : { type: m.role, text: m.content },
    );
    history.push({ type: 'model', response: [] });
    const { contextText } = wrapper.generateContextState({ chatHistory: history });
    const theirs = contextText.tokenize(lease.model.tokenizer) as Token[] as number[];
    const ours = tokenizer.applyChatTemplate(messages, { addGenerationPrompt: true }).ids;
    expect(tokenizer.decode(ours)).toBe(tokenizer.decode(theirs));
    expect(ours).toEqual(theirs);
  });
});
