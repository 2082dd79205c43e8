/**
 * `corgi pretrain`: the CLI face of `runPretrain`. Its flags are generated from the config schema
 * (`hidden_size` → `--hidden-size`, the doc line as help, grouped as the config is), so the two
 * never drift apart. Only flags given on the command line reach `runPretrain`: a resumed run
 * keeps its saved config and refuses a flag that would change it.
 *
 * Output: progress on stderr, the summary JSON on stdout. Ctrl-C finishes the current step, writes
 * a checkpoint and exits 130; a second Ctrl-C exits at once. Exit 2 on a bad config.
 */
import { type Command, InvalidArgumentError, Option } from 'commander';
import type { z } from 'zod';
import { runPretrain, TrainingInterruptedError } from './pretrain.ts';
import { PRETRAIN_CONFIG_GROUPS, PretrainConfigError, type PretrainConfigInput } from './pretrain-config.ts';

type Kind = 'boolean' | 'number' | 'int' | 'string';

/** The value type under a field's default/nullable wrappers, as zod 4 records it. */
function kindOf(schema: z.ZodType): { kind: Kind; nullable: boolean } {
  let def = (schema as unknown as { _zod: { def: Record<string, unknown> } })._zod.def;
  let nullable = false;
  while (def.type === 'default' || def.type === 'nullable' || def.type === 'optional') {
    if (def.type === 'nullable') nullable = true;
    def = (def.innerType as { _zod: { def: Record<string, unknown> } })._zod.def;
  }
  if (def.type === 'boolean') return { kind: 'boolean', nullable };
  if (def.type === 'string') return { kind: 'string', nullable };
  if (def.type === 'number') return { kind: def.format === 'safeint' ? 'int' : 'number', nullable };
  throw new Error(`pretrain-command: no flag type for a ${String(def.type)} field`);
}

function parseNumber(kind: 'int' | 'number', nullable: boolean) {
  return (text: string): number | null => {
    if (nullable && text === 'null') return null;
    const value = Number(text);
    if (text.trim() === '' || !Number.isFinite(value) || (kind === 'int' && !Number.isInteger(value))) {
      throw new InvalidArgumentError(`expected ${kind === 'int' ? 'an integer' : 'a number'}, got "${text}"`);
    }
    return value;
  };
}

const GROUP_TITLES: Record<string, string> = {
  run: 'Run',
  tokenizer: 'Tokenizer',
  data: 'Data',
  model: 'Model',
  pretraining: 'Pretraining',
  sft: 'SFT',
  logging: 'Logging and checkpoint',
};

const flagOf = (field: string) => `--${field.replaceAll('_', '-')}`;
const attributeOf = (field: string) => field.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());

/** Adds `corgi pretrain` with one flag per config field. */
export function registerPretrainCommand(program: Command): Command {
  const command = program
    .command('pretrain')
    .description(
      'Build the base model base-<seed>: BPE tokenizer on Brown, next-token pretraining, SFT on every task, ' +
        'then an HF-layout checkpoint in --out. Progress on stderr, summary JSON on stdout; Ctrl-C checkpoints, --resume continues.',
    );
  const fields: string[] = [];
  for (const [group, shape] of Object.entries(PRETRAIN_CONFIG_GROUPS)) {
    for (const [field, schema] of Object.entries(shape as Record<string, z.ZodType>)) {
      const { kind, nullable } = kindOf(schema);
      const defaultValue = (schema as z.ZodType).parse(undefined);
      const description = schema.description ?? '';
      const option =
        kind === 'boolean'
          ? new Option(flagOf(field), description)
          : new Option(`${flagOf(field)} <${kind === 'string' ? 'text' : 'n'}>`, description).default(
              defaultValue,
              defaultValue === null ? 'null' : undefined,
            );
      if (kind === 'int' || kind === 'number') option.argParser(parseNumber(kind, nullable));
      option.helpGroup(`${GROUP_TITLES[group] ?? group} options:`);
      command.addOption(option);
      fields.push(field);
    }
  }
  command.action(async (_options: Record<string, unknown>, cmd: Command) => {
    const input: Record<string, unknown> = {};
    for (const field of fields) {
      const attribute = attributeOf(field);
      if (cmd.getOptionValueSource(attribute) === 'cli') input[field] = cmd.getOptionValue(attribute);
    }
    await commandPretrain(input as PretrainConfigInput);
  });
  return command;
}

async function commandPretrain(input: PretrainConfigInput): Promise<void> {
  const controller = new AbortController();
  const onInterrupt = () => {
    process.stderr.write(
      '\npretrain: stopping after this step to write a checkpoint (Ctrl-C again to quit now)\n',
    );
    controller.abort();
    process.removeListener('SIGINT', onInterrupt); // a second Ctrl-C takes the default exit
  };
  process.on('SIGINT', onInterrupt);
  try {
    const summary = await runPretrain(input, { signal: controller.signal });
    process.stdout.write(`${JSON.stringify(summary, null, 2)}\n`);
  } catch (error) {
    if (TrainingInterruptedError.isInstance(error)) {
      process.stderr.write(`pretrain: ${error.message}\n`);
      process.exitCode = 130;
      return;
    }
    if (PretrainConfigError.isInstance(error)) {
      process.stdout.write(`${JSON.stringify({ error: error.message, field: error.field })}\n`);
      process.exitCode = 2;
      return;
    }
    throw error;
  } finally {
    process.removeListener('SIGINT', onInterrupt);
  }
}
