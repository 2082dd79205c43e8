/**
 * The checkers as LangChain tools, so an agent can check its own draft before answering:
 *
 * - `checkerTools()` — one tool per registered checker (`check_keywords_existence`,
 *   `check_corgi_concepts`, ...), its arguments `{response, kwargs}` where `kwargs` is the checker's
 *   own zod schema: the schema the registry validates with is the one the model sees as JSON Schema;
 * - `createCheckTool(constraints)` — one `check_constraints` tool bound to fixed constraints (the
 *   model passes only its draft; the description lists what is checked).
 *
 * A tool answers with the check result contract as JSON (`{ok, score, feedback, results}`), which
 * is what the model reads back. Bad arguments fail in LangChain's schema validation
 * (`ToolInputParsingException`, the message naming the field), as for any tool.
 */
import { type DynamicStructuredTool, tool } from '@langchain/core/tools';
import { z } from 'zod';
import { checkAll, checkers, parseConstraints } from '../checkers/registry.ts';
import type { Checker, ConstraintSpec, ParsedConstraint } from '../checkers/types.ts';

const responseSchema = z.string().describe('The draft answer to check, exactly as it would be sent');

/** `keywords:existence` → `check_keywords_existence` (tool names allow only [A-Za-z0-9_-]). */
export function checkerToolName(id: string): string {
  return `check_${id.replace(/[^A-Za-z0-9]+/g, '_')}`;
}

/** The tool for one checker. Its kwargs may be omitted when the checker needs none. */
export function checkerTool(checker: Checker): DynamicStructuredTool {
  const needsKwargs = !checker.kwargsSchema.safeParse({}).success;
  const kwargs = needsKwargs ? checker.kwargsSchema : checker.kwargsSchema.optional();
  const schema = z.object({
    response: responseSchema,
    kwargs: kwargs.describe(`The constraint's parameters (as in {"id": "${checker.id}", "kwargs": {...}})`),
  });
  return tool(
    ({ response, kwargs: parsed }) =>
      // The tool's schema already parsed the kwargs: hand them over as parsed (no second parse).
      JSON.stringify(
        checkAll(response, [{ id: checker.id, kwargs: parsed ?? checker.kwargsSchema.parse({}), checker }]),
      ),
    {
      name: checkerToolName(checker.id),
      description: `Check a draft against the constraint ${checker.id}: ${checker.description} Returns {ok, score, feedback, results}.`,
      schema,
    },
  ) as DynamicStructuredTool;
}

/** One tool per registered checker, in registry order. */
export function checkerTools(): DynamicStructuredTool[] {
  return [...checkers.values()].map(checkerTool);
}

/**
 * A `check_constraints` tool bound to `constraints` (validated now, errors naming the field): the
 * model passes its draft and reads back the combined verdict and the feedback to act on.
 */
export function createCheckTool(
  constraints: readonly (ConstraintSpec | ParsedConstraint)[],
  { name = 'check_constraints' }: { name?: string } = {},
): DynamicStructuredTool {
  const parsed = parseConstraints(constraints);
  const rules = parsed.map(({ checker, kwargs }) => `- ${checker.describe(kwargs)}`).join('\n');
  return tool(({ response }) => JSON.stringify(checkAll(response, parsed)), {
    name,
    description:
      'Check a draft answer against the task constraints before answering. Returns {ok, score, feedback, ' +
      `results}; when ok is false, revise the draft as the feedback says. The constraints:\n${rules}`,
    schema: z.object({ response: responseSchema }),
  }) as DynamicStructuredTool;
}
