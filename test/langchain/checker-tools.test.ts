import { AIMessage, ToolMessage } from '@langchain/core/messages';
import { ToolInputParsingException } from '@langchain/core/tools';
import { convertToOpenAITool } from '@langchain/core/utils/function_calling';
import { describe, expect, it } from 'vitest';
import { ConstraintError } from '../../src/checkers/errors.ts';
import { checkAll, checkers, listCheckers } from '../../src/checkers/registry.ts';
import { checkerToolName, checkerTools, createCheckTool } from '../../src/langchain/checker-tools.ts';

describe('checker tools', () => {
  const tools = checkerTools();

  it('offers one tool per checker, with names a model API accepts', () => {
    expect(tools.map((t) => t.name)).toEqual([...checkers.keys()].map(checkerToolName));
    expect(checkerToolName('keywords:existence')).toBe('check_keywords_existence');
    for (const t of tools) expect(t.name).toMatch(/^[A-Za-z0-9_-]{1,64}$/);
  });

  type JsonSchema = { properties?: Record<string, JsonSchema>; required?: string[] };
  const infos = listCheckers();
  it.each(tools.map((t, i) => [t.name, t, infos[i]] as const))(
    '%s converts to an OpenAI function whose parameters hold the checker’s kwargs schema',
    (_name, t, info) => {
      const fn = convertToOpenAITool(t).function;
      const parameters = fn.parameters as JsonSchema;
      expect(Object.keys(parameters.properties!).sort()).toEqual(['kwargs', 'response']);
      expect(parameters.required).toContain('response');
      // The model sees the same kwargs as GET /v1/checkers documents.
      const kwargs = parameters.properties!.kwargs;
      const documented = info.kwargsSchema as JsonSchema;
      expect(Object.keys(kwargs.properties ?? {})).toEqual(Object.keys(documented.properties ?? {}));
      // LangChain renders a zod schema's output side, where a field with a default (num_planning's
      // prefix) is required too: every documented required field is, and nothing unknown.
      expect(kwargs.required ?? []).toEqual(expect.arrayContaining(documented.required ?? []));
      for (const name of kwargs.required ?? []) expect(Object.keys(kwargs.properties ?? {})).toContain(name);
      expect(fn.description).toContain(info.description);
    },
  );

  it('checks a draft and answers with the check result contract', async () => {
    const existence = tools.find((t) => t.name === 'check_keywords_existence')!;
    const output = await existence.invoke({
      response: 'The dog sat.',
      kwargs: { keywords: ['dog', 'park'] },
    });
    expect(JSON.parse(output)).toEqual(
      checkAll('The dog sat.', [{ id: 'keywords:existence', kwargs: { keywords: ['dog', 'park'] } }]),
    );
    expect(JSON.parse(output)).toMatchObject({ ok: false, score: 0.5 });
  });

  it('lets kwargs be omitted only for checkers that take none', async () => {
    const noComma = tools.find((t) => t.name === 'check_punctuation_no_comma')!;
    expect(JSON.parse(await noComma.invoke({ response: 'a, b' }))).toMatchObject({ ok: false });
    expect(JSON.parse(await noComma.invoke({ response: 'a b' }))).toMatchObject({ ok: true, score: 1 });
    const existence = tools.find((t) => t.name === 'check_keywords_existence')!;
    await expect(existence.invoke({ response: 'x' })).rejects.toThrow(ToolInputParsingException);
  });

  it('refuses bad kwargs in schema validation, naming the field', async () => {
    const frequency = tools.find((t) => t.name === 'check_keywords_frequency')!;
    const call = frequency.invoke({
      response: 'x',
      kwargs: { keyword: 'dog', frequency: 0, relation: 'at least' },
    });
    await expect(call).rejects.toThrow(ToolInputParsingException);
    await expect(call).rejects.toThrow(/frequency/);
  });

  it('answers a tool call from a model with a ToolMessage', async () => {
    const existence = tools.find((t) => t.name === 'check_keywords_existence')!;
    const call = {
      id: 'call-1',
      name: existence.name,
      args: { response: 'dog park', kwargs: { keywords: ['dog'] } },
    };
    const message = await existence.invoke({ ...call, type: 'tool_call' });
    expect(message).toBeInstanceOf(ToolMessage);
    expect((message as ToolMessage).tool_call_id).toBe('call-1');
    expect(JSON.parse((message as ToolMessage).content as string)).toMatchObject({ ok: true });
    expect(new AIMessage({ content: '', tool_calls: [call] }).tool_calls).toHaveLength(1);
  });

  it('binds a check tool to fixed constraints, describing them to the model', async () => {
    const check = createCheckTool([
      { id: 'corgi:num_planning', kwargs: { n: 5, last_word: 'park', prefix: '' } },
      { id: 'punctuation:no_comma' },
    ]);
    expect(check.name).toBe('check_constraints');
    expect(check.description).toContain('park');
    const fn = convertToOpenAITool(check).function;
    expect(Object.keys((fn.parameters as { properties: object }).properties)).toEqual(['response']);
    const verdict = JSON.parse(await check.invoke({ response: 'We walked to the park.' }));
    expect(verdict).toMatchObject({ ok: true, score: 1 });
    const miss = JSON.parse(await check.invoke({ response: 'We walked, then ran home fast.' }));
    expect(miss.ok).toBe(false);
    expect(miss.results.map((r: { id: string; ok: boolean }) => [r.id, r.ok])).toEqual([
      ['corgi:num_planning', false],
      ['punctuation:no_comma', false],
    ]);
    expect(() => createCheckTool([{ id: 'corgi:num_planning', kwargs: { n: 'five' } }])).toThrow(
      ConstraintError,
    );
  });
});
