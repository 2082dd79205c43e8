import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  AIMessage,
  type AIMessageChunk,
  HumanMessage,
  SystemMessage,
  ToolMessage,
} from '@langchain/core/messages';
import { StringOutputParser } from '@langchain/core/output_parsers';
import { ChatPromptTemplate } from '@langchain/core/prompts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CorgiChatModel } from '../../src/langchain/corgi-chat-model.ts';
import type { LlamaCppPolicy } from '../../src/policy/llama-cpp-policy.ts';
import { PolicyRegistry } from '../../src/policy/policy-registry.ts';
import { servingPolicyLoader } from '../../src/policy/serving-loader.ts';
import type { ChatMessage, Generation } from '../../src/policy/types.ts';
import { useBackend } from '../policy/helpers.ts';
import { saveTinyCheckpoint, tinyModel } from '../policy/tiny-policy.ts';
import { useDataDir } from '../support/data-dir.ts';
import { ScriptedPolicy } from '../support/scripted-policy.ts';

// Greedy and short: outputs are deterministic, so every entry point can be compared with a direct
// `policy.generate` call on the same messages.
const GREEDY = { temperature: 0, maxTokens: 12 };
const QUESTION = 'Write a sentence using the words dog and park.';

const root = mkdtempSync(join(tmpdir(), 'corgi-chat-model-test-'));
useDataDir(join(root, 'data'));
let dir: string;
let policy: LlamaCppPolicy;
beforeAll(async () => {
  await useBackend('wasm');
  const model = tinyModel(2);
  dir = await saveTinyCheckpoint(model, root, 'tiny-v1');
  model.dispose();
  policy = await servingPolicyLoader({ sequences: 8, threads: 1 })(dir, 'tiny-v1');
});
afterAll(async () => {
  await policy.dispose();
  rmSync(root, { recursive: true, force: true });
});

/** What the policy itself answers, for comparison. */
async function direct(messages: ChatMessage[], options = GREEDY): Promise<Generation> {
  const stream = policy.generate(messages, options);
  for (;;) {
    const next = await stream.next();
    if (next.done) return next.value;
  }
}

describe('CorgiChatModel', () => {
  it('invokes the policy: the same text and tokens, token usage, the policy version', async () => {
    const model = new CorgiChatModel({ policy, ...GREEDY });
    const expected = await direct([{ role: 'user', content: QUESTION }]);
    const message = await model.invoke(QUESTION);
    expect(message).toBeInstanceOf(AIMessage);
    expect(message.content).toBe(expected.text);
    expect(message.response_metadata).toMatchObject({
      policy_version: 'tiny-v1',
      model_provider: 'corgi',
      finish_reason: expected.finishReason,
      corgi: { token_ids: expected.tokenIds, token_logprobs: expected.logprobs },
    });
    const promptTokens = policy.encodePrompt([{ role: 'user', content: QUESTION }], GREEDY).length;
    expect(message.usage_metadata).toEqual({
      input_tokens: promptTokens,
      output_tokens: expected.tokenIds.length,
      total_tokens: promptTokens + expected.tokenIds.length,
    });
    expect(expected.tokenIds.length).toBeGreaterThan(0);
  });

  it('streams chunk by chunk; the chunks add up to the invoked message', async () => {
    const model = new CorgiChatModel({ policy, ...GREEDY });
    const invoked = await model.invoke(QUESTION);
    const chunks: AIMessageChunk[] = [];
    for await (const chunk of await model.stream(QUESTION)) chunks.push(chunk);
    expect(chunks.length).toBeGreaterThan(2);
    const whole = chunks.reduce((a, b) => a.concat(b));
    expect(whole.content).toBe(invoked.content);
    expect(whole.response_metadata.corgi).toEqual(invoked.response_metadata.corgi);
    expect(whole.response_metadata.policy_version).toBe('tiny-v1');
    expect(whole.usage_metadata).toMatchObject(invoked.usage_metadata!);
    // Only the closing chunk carries the version, so concatenation cannot repeat it.
    expect(chunks.filter((c) => c.response_metadata.policy_version !== undefined)).toHaveLength(1);
  });

  it('batches: each answer is what the policy gives that prompt alone', async () => {
    const model = new CorgiChatModel({ policy, ...GREEDY });
    const prompts = ['The dog ran in the park.', 'A quick brown fox.', 'Write about a cat.'];
    const answers = await model.batch(prompts);
    for (const [i, prompt] of prompts.entries()) {
      expect(answers[i].content).toBe((await direct([{ role: 'user', content: prompt }])).text);
    }
  });

  it('works inside an LCEL chain, system message included, with call options overriding fields', async () => {
    const model = new CorgiChatModel({ policy, temperature: 1.5, maxTokens: 40 });
    const chain = ChatPromptTemplate.fromMessages([
      ['system', 'You write short sentences.'],
      ['human', 'Write about a {animal}.'],
    ])
      .pipe(model.withConfig(GREEDY))
      .pipe(new StringOutputParser());
    const text = await chain.invoke({ animal: 'dog' });
    const expected = await direct([
      { role: 'system', content: 'You write short sentences.' },
      { role: 'user', content: 'Write about a dog.' },
    ]);
    expect(text).toBe(expected.text);
  });

  it('loads a checkpoint spec on first use and frees it on close', async () => {
    const model = new CorgiChatModel({ policy: dir, ...GREEDY });
    expect(model.policyVersion).toBeUndefined();
    const answer = await model.invoke([new SystemMessage('Be brief.'), new HumanMessage(QUESTION)]);
    expect(model.policyVersion).toBe('tiny-v1');
    expect(answer.content).toBe(
      (
        await direct([
          { role: 'system', content: 'Be brief.' },
          { role: 'user', content: QUESTION },
        ])
      ).text,
    );
    await model.close();
    await expect(new CorgiChatModel({ policy: join(root, 'nope') }).invoke('hi')).rejects.toThrow(
      /policy: no checkpoint at .*nope/,
    );
  });

  it('follows a hot-swapped policy source between calls and reports each version', async () => {
    const registry = new PolicyRegistry(new ScriptedPolicy(['first answer'], 'v1'));
    const model = new CorgiChatModel({ policy: registry });
    const before = await model.invoke('hello');
    await registry.swap(new ScriptedPolicy(['second answer'], 'v2'));
    const after = await model.invoke('hello');
    expect([before.content, before.response_metadata.policy_version]).toEqual(['first answer', 'v1']);
    expect([after.content, after.response_metadata.policy_version]).toEqual(['second answer', 'v2']);
    // A policy without a tokenizer cannot count prompt tokens: no usage rather than a wrong one.
    expect(after.usage_metadata).toBeUndefined();
    expect(model.getLsParams({} as never).ls_model_name).toBe('v2');
  });

  it('counts prompt tokens through a registry wrapping the local policy', async () => {
    const registry = new PolicyRegistry(policy);
    const message = await new CorgiChatModel({ policy: registry, ...GREEDY }).invoke(QUESTION);
    const expected = await direct([{ role: 'user', content: QUESTION }]);
    const promptTokens = policy.encodePrompt([{ role: 'user', content: QUESTION }], GREEDY).length;
    expect(message.usage_metadata).toEqual({
      input_tokens: promptTokens,
      output_tokens: expected.tokenIds.length,
      total_tokens: promptTokens + expected.tokenIds.length,
    });
  });

  it('refuses messages the policy cannot take, naming the message', async () => {
    const model = new CorgiChatModel({ policy: new ScriptedPolicy(['x']) });
    await expect(
      model.invoke([new HumanMessage('hi'), new ToolMessage({ content: 'result', tool_call_id: 'call-1' })]),
    ).rejects.toThrow('messages[1]: a tool message');
  });

  it('stops generating when the call is aborted', async () => {
    const slow = new ScriptedPolicy(['one two three four five six seven eight nine ten'], 'slow', 30);
    const model = new CorgiChatModel({ policy: slow });
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 70);
    await expect(model.invoke('count', { signal: controller.signal })).rejects.toThrow();
    expect(slow.calls[0].options.signal?.aborted).toBe(true);
  });
});
