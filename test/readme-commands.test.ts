/**
 * Every shell command README shows, accounted for. Each `npx corgi …` line is parsed by the real
 * command definitions (every option and argument must exist and take the value shown), with the
 * actions replaced; the quick ones also run for real below. Every other command is an npm script
 * that must exist, or is mapped to the test (or `.ci/run`) that exercises it, and the mapping is
 * checked: a README command that nothing covers fails this test.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Command } from 'commander';
import { afterAll, describe, expect, it } from 'vitest';
import { buildProgram } from '../src/cli/main.ts';
import { runCorgi } from './support/run-corgi.ts';
import { noteSkip, smollm2GgufPath } from './support/smollm2.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const README = readFileSync(join(ROOT, 'README.md'), 'utf8');
const PACKAGE = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
  scripts: Record<string, string>;
};

/** Splits a shell line into words, honouring single and double quotes. */
function shellWords(line: string): string[] {
  const words: string[] = [];
  let word = '';
  let quote: string | null = null;
  let inWord = false;
  for (const char of line) {
    if (quote) {
      if (char === quote) quote = null;
      else word += char;
    } else if (char === '"' || char === "'") {
      quote = char;
      inWord = true;
    } else if (/\s/.test(char)) {
      if (inWord) words.push(word);
      word = '';
      inWord = false;
    } else {
      word += char;
      inWord = true;
    }
  }
  if (inWord) words.push(word);
  return words;
}

/** Every command in README's ```sh blocks: continuation lines joined, comments, prompts and output dropped. */
function readmeCommands(): string[] {
  const commands: string[] = [];
  for (const [, block] of README.matchAll(/```sh\n([\s\S]*?)```/g)) {
    // A backslash continues a line, and so does an open single quote (the JSON of the check example).
    const lines: string[] = [];
    for (const line of block.replace(/\\\n\s*/g, ' ').split('\n')) {
      const last = lines.at(-1);
      if (last !== undefined && (last.split("'").length - 1) % 2 === 1)
        lines[lines.length - 1] = `${last} ${line.trim()}`;
      else lines.push(line);
    }
    for (const raw of lines) {
      const line = raw.replace(/\s+#\s.*$/, '').trim();
      if (line === '' || line.startsWith('#') || line.startsWith('{')) continue;
      for (const part of line.replace(/^\$ /, '').split(/\s*(?:&&|;)\s*/)) {
        // The last command of a pipe, without its input or output redirection.
        const command = part
          .split(/\s\|\s/)
          .at(-1)!
          .replace(/\s+[<>]\s*\S+/g, '')
          .trim();
        if (command) commands.push(command);
      }
    }
  }
  return commands;
}

/** A usage line as a runnable one: `<id>` → a UUID, `a|b|c` → a, `[--x y]` → --x y. */
function instantiate(words: string[]): string[] {
  return words
    .map((word) => word.replace(/^\[/, '').replace(/\]$/, ''))
    .map((word) => (word === '<id>' ? '00000000-0000-4000-8000-000000000000' : word))
    .map((word) => (/^[a-z]+(\|[a-z]+)+$/.test(word) ? word.split('|')[0] : word));
}

/** Parses `argv` with every action replaced, so nothing runs; throws what commander refuses. */
async function parseOnly(argv: string[]): Promise<void> {
  const program = await buildProgram(['node', 'corgi', ...argv]);
  const silence = (command: Command): void => {
    command.exitOverride().configureOutput({ writeOut: () => {}, writeErr: () => {} });
    command.action(() => {});
    for (const child of command.commands) silence(child);
  };
  silence(program);
  await program.parseAsync(['node', 'corgi', ...argv]);
}

/** Commands other than `corgi` and npm scripts, and what exercises each. */
const COVERED_ELSEWHERE: { match: RegExp; by: string; mentions: string }[] = [
  { match: /^npm ci$/, by: '.ci/run', mentions: 'npm ci' },
  { match: /^npm test$/, by: '.ci/run', mentions: 'npm test' },
  { match: /^npx vitest run test\/\S+$/, by: 'package.json', mentions: 'vitest run' },
  { match: /^npm start$/, by: 'test/cli/serve-command.test.ts', mentions: 'serve' },
  { match: /^curl .*\/v1\/sessions -d /, by: 'test/server/sessions.e2e.test.ts', mentions: '/v1/sessions' },
  { match: /^curl .*\/v1\/check -d /, by: 'test/server/sessions.e2e.test.ts', mentions: '/v1/check' },
  { match: /^curl .*\/v1\/sessions$/, by: 'test/server/sessions.e2e.test.ts', mentions: 'text/event-stream' },
  {
    match: /^curl .*\/v1\/admin\/promote$/,
    by: 'test/server/hot-swap.e2e.test.ts',
    mentions: '/v1/admin/promote',
  },
  {
    match: /^curl .*\/v1\/admin\/rollback$/,
    by: 'test/server/hot-swap.e2e.test.ts',
    mentions: '/v1/admin/rollback',
  },
  { match: /^curl .*\/v1\/policy$/, by: 'test/server/auth.test.ts', mentions: '/v1/policy' },
  {
    match: /^(\w+=\S+ )*vllm serve /,
    by: 'test/langchain/vllm-promotion.test.ts',
    mentions: 'load_lora_adapter',
  },
  { match: /^cp /, by: 'test/readme-commands.test.ts', mentions: 'plain shell' },
  { match: /^export \w+=\S+$/, by: 'test/readme-commands.test.ts', mentions: 'plain shell' },
];

/**
 * README commands no test runs, each with the reason; the list is pinned, so a new command that
 * nothing runs fails this test until it is covered or named here.
 */
const NOT_RUN_BY_TESTS: Record<string, string> = {
  'npm run format': 'rewrites files in place; `npm test` runs the same Biome check read-only',
};

const notRun = (command: string): boolean =>
  Object.keys(NOT_RUN_BY_TESTS).some((prefix) => command.startsWith(prefix));

/** npm scripts README shows, and the test that runs them (the long benchmarks run briefly there). */
const SCRIPT_TESTS: Record<string, string> = {
  'bench:load': 'test/bench/load.test.ts',
  'docs:checkers': 'test/readme.test.ts',
};

const scratch = mkdtempSync(join(tmpdir(), 'corgi-readme-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

describe('every shell command README shows', () => {
  const commands = readmeCommands();

  it('finds the commands (the extraction itself works)', () => {
    expect(commands.length).toBeGreaterThan(20);
    expect(commands).toContain('npm ci');
    expect(commands).toContain('npx corgi check');
    expect(commands).toContain('npx corgi check --jsonl');
  });

  it.each(commands.filter((command) => /^(\w+=\S+ )*npx corgi /.test(command)))(
    'parses with the real command definitions: %s',
    async (command) => {
      const words = instantiate(shellWords(command.replace(/^(\w+=\S+ )+/, '')));
      expect(words.slice(0, 2)).toEqual(['npx', 'corgi']);
      await expect(parseOnly(words.slice(2))).resolves.toBeUndefined();
    },
  );

  it.each(commands.filter((command) => command.startsWith('npm run ') && !notRun(command)))(
    'names an npm script that a test runs: %s',
    (command) => {
      const script = shellWords(command)[2];
      expect(PACKAGE.scripts[script], script).toBeDefined();
      const test = SCRIPT_TESTS[script];
      expect(test, `${script}: no test runs it`).toBeDefined();
      expect(readFileSync(join(ROOT, test), 'utf8')).toContain(script.split(':')[0]);
    },
  );

  it('maps every other command to what exercises it', () => {
    const others = commands.filter(
      (command) =>
        !/^(\w+=\S+ )*npx corgi /.test(command) && !command.startsWith('npm run ') && !notRun(command),
    );
    for (const prefix of Object.keys(NOT_RUN_BY_TESTS)) {
      expect(commands.some((command) => command.startsWith(prefix))).toBe(true);
    }
    for (const command of others) {
      const covered = COVERED_ELSEWHERE.find((entry) => entry.match.test(command));
      expect(covered, `README command not exercised by any test: ${command}`).toBeDefined();
      const file = join(ROOT, covered!.by);
      expect(existsSync(file), covered!.by).toBe(true);
      if (covered!.by !== 'test/readme-commands.test.ts') {
        expect(readFileSync(file, 'utf8'), covered!.by).toContain(covered!.mentions);
      }
    }
  });

  it("runs the check example and prints README's output", async () => {
    const line = commands.find(
      (command) => command.startsWith('npx corgi check') && README.includes(`${command}\n`),
    );
    expect(line).toBeDefined();
    const input = /echo '(\{"response"[^\n]*?)' \| npx corgi check\n/.exec(README)![1];
    const { code, stdout } = await runCorgi(['check'], { input });
    expect(code).toBe(0);
    expect(JSON.parse(stdout)).toMatchObject({
      ok: false,
      results: [{ id: 'punctuation:no_comma', ok: false }],
    });
  });

  it('runs the evaluation example from a clone: the case file it reads is one `corgi tasks` writes', async (ctx) => {
    // The first eval example (on the default model: it needs the model store, which CI pulls).
    const evalLine = commands.find((command) => command.startsWith('npx corgi eval --policy '))!;
    const policy = shellWords(evalLine)[shellWords(evalLine).indexOf('--policy') + 1]!;
    const gguf = smollm2GgufPath();
    if (policy === 'smollm2-135m-instruct' && !gguf) {
      noteSkip('README evaluation example', gguf);
      ctx.skip();
    }
    const tasksLine = commands.find(
      (command) =>
        command.startsWith('npx corgi tasks ') && shellWords(evalLine).includes(shellWords(command).at(-1)!),
    )!;
    expect(tasksLine, 'a `corgi tasks` line writing the case file the eval example reads').toBeDefined();
    const out = shellWords(tasksLine).at(-1)!;
    // Run in a scratch directory, with the store where the tests find the model.
    const env = {
      ...process.env,
      CORGI_POLICY: undefined,
      ...(gguf ? { CORGI_DATA_DIR: dirname(dirname(dirname(gguf))), CORGI_LLAMA_THREADS: '1' } : {}),
    };
    const cwd = scratch;
    const tasks = await runCorgi(
      shellWords(tasksLine)
        .slice(2)
        .map((word) => (word === out ? join(scratch, out) : word)),
      { env, cwd },
    );
    expect(tasks.code, tasks.stderr).toBe(0);
    const cases = readFileSync(join(scratch, out), 'utf8').trim().split('\n');
    expect(cases).toHaveLength(200);
    // The example's flags, on 2 cases and 2 attempts so the test stays short.
    const evalArgs = shellWords(evalLine)
      .slice(2)
      .map((word) => (word === out ? join(scratch, out) : word));
    if (!evalArgs.includes('--n')) evalArgs.push('--n', '2');
    evalArgs[evalArgs.indexOf('--n') + 1] = '2';
    evalArgs[evalArgs.indexOf('--attempts') + 1] = '2';
    const evaluated = await runCorgi(evalArgs, { env, cwd });
    expect(evaluated.code, evaluated.stderr).toBe(0);
    expect(JSON.parse(evaluated.stdout)).toMatchObject({ policy, attempts: 2, n: 2 });
  }, 180_000);
});
