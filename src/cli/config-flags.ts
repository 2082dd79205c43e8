/**
 * Command-line flags generated from a zod config schema (`hidden_size` → `--hidden-size`, the
 * field's doc line as help, its default shown), so a command and its config never drift apart.
 * `corgi pretrain` and `corgi train` both build their flags here. Only flags given on the command
 * line are read back, so a config's own defaults (and a resumed run's saved config) stay in charge.
 */
import { type Command, InvalidArgumentError, Option } from 'commander';
import type { z } from 'zod';

type Kind = 'boolean' | 'number' | 'int' | 'string' | 'enum' | 'list';

interface FieldType {
  kind: Kind;
  nullable: boolean;
  /** Allowed values of an enum, or of a list's items. */
  choices?: string[];
  /** A list's item kind. */
  item?: 'string' | 'enum';
}

type Def = Record<string, unknown>;
const defOf = (schema: unknown): Def => (schema as { _zod: { def: Def } })._zod.def;

/** The value type under a field's default/nullable wrappers, as zod 4 records it. */
function typeOf(schema: z.ZodType): FieldType {
  let def = defOf(schema);
  let nullable = false;
  while (def.type === 'default' || def.type === 'nullable' || def.type === 'optional') {
    if (def.type === 'nullable') nullable = true;
    def = defOf(def.innerType);
  }
  if (def.type === 'boolean') return { kind: 'boolean', nullable };
  if (def.type === 'string') return { kind: 'string', nullable };
  if (def.type === 'number') return { kind: def.format === 'safeint' ? 'int' : 'number', nullable };
  if (def.type === 'enum') return { kind: 'enum', nullable, choices: Object.values(def.entries as object) };
  if (def.type === 'array') {
    const item = defOf(def.element);
    if (item.type === 'enum')
      return { kind: 'list', nullable, item: 'enum', choices: Object.values(item.entries as object) };
    if (item.type === 'string') return { kind: 'list', nullable, item: 'string' };
  }
  throw new Error(`config-flags: no flag type for a ${String(def.type)} field`);
}

function parserFor(type: FieldType): ((text: string) => unknown) | null {
  const { kind, nullable } = type;
  if (kind === 'int' || kind === 'number') {
    return (text: string) => {
      if (nullable && text === 'null') return null;
      const value = Number(text);
      if (text.trim() === '' || !Number.isFinite(value) || (kind === 'int' && !Number.isInteger(value)))
        throw new InvalidArgumentError(
          `expected ${kind === 'int' ? 'an integer' : 'a number'}, got "${text}"`,
        );
      return value;
    };
  }
  if (kind === 'list') {
    return (text: string) => {
      const items = text
        .split(',')
        .map((s) => s.trim())
        .filter((s) => s !== '');
      for (const item of items)
        if (type.choices && !type.choices.includes(item))
          throw new InvalidArgumentError(`"${item}" is not one of ${type.choices.join(', ')}`);
      return items;
    };
  }
  if (kind === 'string' && nullable) return (text: string) => (text === 'null' ? null : text);
  return null;
}

export const flagOf = (field: string) => `--${field.replaceAll('_', '-')}`;
const attributeOf = (field: string) => field.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());

/**
 * Adds one option per field of each group's shape to `command`, under "<title> options:" help
 * headings. Returns the field names, for `readConfigFlags`.
 */
export function addConfigOptions(
  command: Command,
  groups: Record<string, Record<string, z.ZodType>>,
  titles: Record<string, string> = {},
): string[] {
  const fields: string[] = [];
  for (const [group, shape] of Object.entries(groups)) {
    for (const [field, schema] of Object.entries(shape)) {
      const type = typeOf(schema);
      const defaultValue = schema.safeParse(undefined).data;
      const description = schema.description ?? '';
      const placeholder =
        type.kind === 'string' ? 'text' : type.kind === 'enum' ? 'name' : type.kind === 'list' ? 'a,b' : 'n';
      const option =
        type.kind === 'boolean'
          ? new Option(flagOf(field), description)
          : new Option(`${flagOf(field)} <${placeholder}>`, description);
      if (type.kind !== 'boolean' && defaultValue !== undefined)
        option.default(
          defaultValue,
          defaultValue === null ? 'null' : Array.isArray(defaultValue) ? defaultValue.join(',') : undefined,
        );
      if (type.kind === 'enum' && type.choices) option.choices(type.choices);
      const parse = parserFor(type);
      if (parse) option.argParser(parse);
      option.helpGroup(`${titles[group] ?? group} options:`);
      command.addOption(option);
      fields.push(field);
    }
  }
  return fields;
}

/** The fields given on the command line, by config name. */
export function readConfigFlags(cmd: Command, fields: readonly string[]): Record<string, unknown> {
  const input: Record<string, unknown> = {};
  for (const field of fields) {
    const attribute = attributeOf(field);
    if (cmd.getOptionValueSource(attribute) === 'cli') input[field] = cmd.getOptionValue(attribute);
  }
  return input;
}
