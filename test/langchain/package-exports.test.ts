/**
 * The package as a consumer gets it: `npm pack` (whose prepack builds dist/ with tsc), the tarball
 * installed into a scratch project under the OS temp dir, and the public names imported from
 * `corgi-live` by a plain .mjs and type-checked from a .ts against the shipped declarations.
 *
 * The install is offline from the npm cache (`--prefer-offline`) and skips optional dependencies and
 * install scripts: tfjs-node's script downloads libtensorflow from a host that offline machines
 * cannot reach, and the library falls back to the wasm backend without it anyway.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const run = promisify(execFile);
const REPO = fileURLToPath(new URL('../..', import.meta.url));
const TSC = join(REPO, 'node_modules', 'typescript', 'bin', 'tsc');

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
  await run(
    'npm',
    [
      'install',
      `./${tarball}`,
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
});
