/**
 * The package as a consumer gets it: `npm pack` (whose prepare script builds dist/ with tsc), the
 * tarball installed into a scratch project under the OS temp dir, and the public names imported from
 * `corgi-live` by a plain .mjs and type-checked from a .ts against the shipped declarations. README's
 * own examples that import `corgi-live` run there too, on the built-in model the package ships.
 *
 * The install is offline from the npm cache (`--prefer-offline`) and skips optional dependencies and
 * install scripts: tfjs-node's script downloads libtensorflow from a host that offline machines
 * cannot reach, and the library falls back to the wasm backend without it anyway.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const run = promisify(execFile);
const REPO = fileURLToPath(new URL('../..', import.meta.url));
const TSC = join(REPO, 'node_modules', 'typescript', 'bin', 'tsc');

/** README's JavaScript examples that import the package, by the heading above each. */
function readmePackageExamples(): { heading: string; code: string }[] {
  const readme = readFileSync(join(REPO, 'README.md'), 'utf8');
  const examples: { heading: string; code: string }[] = [];
  for (const match of readme.matchAll(/```js\n([\s\S]*?)```/g)) {
    if (!match[1].includes("from 'corgi-live'")) continue;
    const heading = [...readme.slice(0, match.index).matchAll(/^#+ (.+)$/gm)].at(-1)?.[1] ?? '';
    examples.push({ heading, code: match[1] });
  }
  return examples;
}

let scratch: string;
beforeAll(async () => {
  scratch = mkdtempSync(join(tmpdir(), 'corgi-package-'));
  await run('npm', ['pack', '--pack-destination', scratch], { cwd: REPO, maxBuffer: 16 << 20 });
  const tarball = readdirSync(scratch).find((f) => f.endsWith('.tgz'));
  if (!tarball) throw new Error(`npm pack wrote no tarball into ${scratch}`);
  writeFileSync(
    join(scratch, 'package.json'),
    JSON.stringify({ name: 'scratch', private: true, type: 'module' }),
  );
  // --omit=optional leaves out tfjs-node (its install cannot reach its download host here) and
  // llama.cpp's GPU builds; llama.cpp's CPU build for this platform is named, as a user's install has it.
  const llamaVersion = JSON.parse(
    readFileSync(join(REPO, 'node_modules', 'node-llama-cpp', 'package.json'), 'utf8'),
  ).version as string;
  const platform =
    process.platform === 'darwin'
      ? `mac-${process.arch}${process.arch === 'arm64' ? '-metal' : ''}`
      : `${process.platform === 'win32' ? 'win' : process.platform}-${process.arch}`;
  await run(
    'npm',
    [
      'install',
      `./${tarball}`,
      `@node-llama-cpp/${platform}@${llamaVersion}`,
      '--prefer-offline',
      '--no-audit',
      '--no-fund',
      '--no-package-lock',
      '--omit=optional',
      '--ignore-scripts',
    ],
    { cwd: scratch, maxBuffer: 16 << 20 },
  );
}, 300_000);
afterAll(() => {
  if (scratch) rmSync(scratch, { recursive: true, force: true });
});

describe('the packed package', () => {
  it('imports CorgiChatModel, withCheckerFeedback, checkAll and checkers from compiled JS', async () => {
    writeFileSync(
      join(scratch, 'consumer.mjs'),
      `import { CorgiChatModel, withCheckerFeedback, checkAll, checkers } from 'corgi-live';
import { FakeListChatModel } from '@langchain/core/utils/testing';

const rule = [{ id: 'punctuation:no_comma' }];
const guarded = withCheckerFeedback(new FakeListChatModel({ responses: ['a, b', 'a and b'] }), rule);
const result = await guarded.invoke('Write.');
const echo = { version: 'echo-1', async *generate(messages) {
  yield { text: messages.at(-1).content, tokenIds: [1], logprobs: [0] };
  return { text: messages.at(-1).content, tokenIds: [1], logprobs: [0], finishReason: 'stop' };
} };
const answer = await new CorgiChatModel({ policy: echo }).invoke('hello');
console.log(JSON.stringify({
  resolved: import.meta.resolve('corgi-live'),
  check: checkAll('a, b', rule).ok,
  checkers: checkers.size,
  result: [result.ok, result.attempts.length, result.text],
  answer: [answer.content, answer.response_metadata.policy_version],
}));
`,
    );
    const { stdout } = await run(process.execPath, ['consumer.mjs'], { cwd: scratch });
    const out = JSON.parse(stdout);
    expect(out.resolved).toMatch(/node_modules\/corgi-live\/dist\/index\.js$/);
    expect(out).toMatchObject({
      check: false,
      checkers: 30,
      result: [true, 2, 'a and b'],
      answer: ['hello', 'echo-1'],
    });
  });

  it('type-checks a TypeScript consumer against the shipped declarations', async () => {
    writeFileSync(
      join(scratch, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: {
          target: 'ES2022',
          module: 'NodeNext',
          moduleResolution: 'NodeNext',
          strict: true,
          noEmit: true,
          skipLibCheck: true,
          types: [],
        },
        files: ['consumer.ts'],
      }),
    );
    writeFileSync(
      join(scratch, 'consumer.ts'),
      `import { type CheckerFeedbackResult, type CheckResult, CorgiChatModel, checkAll, checkers, withCheckerFeedback } from 'corgi-live';

const verdict: CheckResult = checkAll('a, b', [{ id: 'punctuation:no_comma' }]);
const count: number = checkers.size + verdict.score;
// The declarations are real, not \`any\`: each misuse below must be an error.
// @ts-expect-error the response is a string
checkAll(42, []);
// @ts-expect-error temperature is a number
new CorgiChatModel({ temperature: 'hot' });
export async function run(): Promise<CheckerFeedbackResult> {
  const model = new CorgiChatModel({ policy: 'models/base', temperature: 0 });
  const result = await withCheckerFeedback(model, [{ id: 'punctuation:no_comma' }], { maxAttempts: 2 }).invoke('Write.');
  // @ts-expect-error bestScore is a number
  const wrong: string = result.bestScore;
  return { ...result, bestScore: result.bestScore + count + wrong.length * 0 };
}
`,
    );
    const check = await run(process.execPath, [TSC, '-p', 'tsconfig.json'], { cwd: scratch }).catch(
      (error: { stdout: string; code: number }) => ({ stdout: error.stdout, code: error.code }),
    );
    expect(check.stdout).toBe('');
  });

  it('ships the built-in model, so the default policy needs no checkpoint of its own', () => {
    const shipped = join(scratch, 'node_modules', 'corgi-live', 'models', 'base');
    for (const file of ['config.json', 'model.safetensors', 'tokenizer.json', 'checksums.sha256']) {
      expect(existsSync(join(shipped, file)), file).toBe(true);
    }
    expect(existsSync(join(scratch, 'models'))).toBe(false);
  });

  const examples = readmePackageExamples();
  it('finds README examples that import the package', () => {
    expect(examples.map((example) => example.heading)).toEqual(expect.arrayContaining(['LangChain']));
  });

  it.each(examples.map((example, i) => [example.heading, i] as const))(
    "runs README's example from the installed package: %s",
    async (_heading, i) => {
      const file = `readme-example-${i}.mjs`;
      writeFileSync(join(scratch, file), examples[i].code);
      const env: NodeJS.ProcessEnv = { ...process.env, CORGI_DATA_DIR: join(scratch, `data-${i}`) };
      delete env.DATABASE_URL;
      delete env.CORGI_POLICY;
      const { stdout, stderr } = await run(process.execPath, [file], {
        cwd: scratch,
        env,
        maxBuffer: 16 << 20,
      }).catch((error: { stdout: string; stderr: string; code: number }) => {
        throw new Error(`${file} exited ${error.code}:\n${error.stderr}\n${error.stdout}`);
      });
      expect(stderr).not.toMatch(/no checkpoint|Error/);
      expect(stdout.trim().length).toBeGreaterThan(0);
    },
    300_000,
  );
});
