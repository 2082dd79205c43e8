import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Command } from 'commander';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { parseConstraints } from '../../../src/checkers/registry.ts';
import type { ConstraintSpec } from '../../../src/checkers/types.ts';
import { registerEvalCommand } from '../../../src/cli/eval-command.ts';
import type { ChatPolicy, GenerateOptions } from '../../../src/policy/types.ts';
import { renderInstruction } from '../../../src/session/render.ts';
import type { EvalCase } from '../../../src/tasks/cases.ts';
import {
  type EvalProgress,
  type EvalReport,
  evaluatePolicy,
  formatEvalTable,
  selectCases,
} from '../../../src/training/eval/eval.ts';
import { useBackend } from '../../policy/helpers.ts';
import { saveTinyCheckpoint, tinyModel } from '../../policy/tiny-policy.ts';
import { runCorgi } from '../../support/run-corgi.ts';
import { ScriptedPolicy } from '../../support/scripted-policy.ts';

const keyword = (word: string): ConstraintSpec => ({
  id: 'keywords:existence',
  kwargs: { keywords: [word] },
});
const noComma: ConstraintSpec = { id: 'punctuation:no_comma', kwargs: {} };

// Attempt k answers ANSWERS[k-1], so a case asking for the k-th word is first solved at attempt k.
const ANSWERS = ['alpha', 'alpha beta', 'alpha beta gamma'];
const CASES: EvalCase[] = [
  { id: 'kw/test/1', constraints: [keyword('alpha')] }, // solved at 1
  { id: 'kw/test/2', constraints: [keyword('beta')] }, // solved at 2
  { id: 'kw/test/3', constraints: [keyword('gamma')] }, // solved at 3
  { id: 'mixed_test_0', constraints: [noComma, keyword('delta')] }, // never: best score 0.5
];

describe('evaluatePolicy', () => {
  it('reports success@k exactly and monotone in k, with the mean best score', async () => {
    const report = await evaluatePolicy({ policy: new ScriptedPolicy(ANSWERS), cases: CASES, attempts: 4 });
    expect(report).toEqual({
      policy: 'scripted-v1',
      attempts: 4,
      n: 4,
      success_at: [0.25, 0.5, 0.75, 0.75],
      mean_best_score: (1 + 1 + 1 + 0.5) / 4,
      by_task: {
        kw: { n: 3, success_at: [1 / 3, 2 / 3, 1, 1], mean_best_score: 1 },
        mixed: { n: 1, success_at: [0, 0, 0, 0], mean_best_score: 0.5 },
      },
    });
    // The contract's key order, as `--json` prints it.
    expect(Object.keys(report)).toEqual([
      'policy',
      'attempts',
      'n',
      'success_at',
      'mean_best_score',
      'by_task',
    ]);
    for (let k = 1; k < report.success_at.length; k++) {
      expect(report.success_at[k]).toBeGreaterThanOrEqual(report.success_at[k - 1]);
    }
  });

  it('gives the same success@1..k with K = k attempts as the first k numbers of a longer run', async () => {
    const short = await evaluatePolicy({ policy: new ScriptedPolicy(ANSWERS), cases: CASES, attempts: 2 });
    expect(short.success_at).toEqual([0.25, 0.5]);
    // Best scores only count the attempts made: "gamma" is never reached in 2 attempts.
    expect(short.mean_best_score).toBe((1 + 1 + 0 + 0.5) / 4);
  });

  it('groups by_task by case id, else by constraint ids, in alphabetical order', async () => {
    const report = await evaluatePolicy({
      policy: new ScriptedPolicy(['alpha']),
      cases: [
        { id: 'word_count/test/cn01-2', constraints: [keyword('alpha')] },
        { id: 'cmg_hard_test_3', constraints: [keyword('zeta')] },
        { constraints: [keyword('alpha')] },
        { id: 'free-form', constraints: [noComma, keyword('alpha')] },
      ],
      attempts: 1,
    });
    expect(Object.keys(report.by_task)).toEqual([
      'cmg_hard',
      'keywords:existence',
      'punctuation:no_comma+keywords:existence',
      'word_count',
    ]);
    expect(report.by_task.cmg_hard).toEqual({ n: 1, success_at: [0], mean_best_score: 0 });
    expect(report.by_task.word_count).toEqual({ n: 1, success_at: [1], mean_best_score: 1 });
  });

  it('renders the instruction from the constraints when a case has no prompt, and decodes greedily', async () => {
    const policy = new ScriptedPolicy(['nothing']);
    await evaluatePolicy({
      policy,
      cases: [
        { constraints: [noComma, keyword('dog')] },
        { constraints: [noComma], prompt: 'Describe a park.' },
      ],
      attempts: 2,
      maxTokens: 17,
      concurrency: 1, // calls in case order
    });
    expect(policy.calls[0].messages).toEqual([
      { role: 'user', content: renderInstruction(undefined, parseConstraints([noComma, keyword('dog')])) },
    ]);
    expect(policy.calls[0].messages[0].content).toBe(
      "In your entire response, refrain from the use of any commas. Include keywords ['dog'] in the response.",
    );
    expect(policy.calls[1].messages[1].role).toBe('assistant'); // attempt 2 carries the feedback turn
    expect(policy.calls[2].messages[0].content).toMatch(/^Describe a park\.\n\n/);
    for (const call of policy.calls) expect(call.options).toMatchObject({ temperature: 0, maxTokens: 17 });
  });

  it('samples with --temperature: seeds by case and attempt, whatever K, and says so in the report', async () => {
    const policy = new ScriptedPolicy(ANSWERS);
    const report = await evaluatePolicy({
      policy,
      cases: CASES,
      attempts: 3,
      temperature: 0.7,
      samplingSeed: 5,
      maxTokens: 9,
      concurrency: 1, // calls in case order
    });
    // Case i's attempt j draws with seed 5 + 10·i + (j − 1): cases solved at 1, 2, 3, never.
    expect(policy.calls.map((call) => call.options.seed)).toEqual([5, 15, 16, 25, 26, 27, 35, 36, 37]);
    for (const call of policy.calls) expect(call.options).toMatchObject({ temperature: 0.7, maxTokens: 9 });
    expect(report.temperature).toBe(0.7);
    expect(Object.keys(report).at(-1)).toBe('temperature');
    expect(report.success_at).toEqual([0.25, 0.5, 0.75]);

    await expect(evaluatePolicy({ policy, cases: CASES, temperature: -1 })).rejects.toThrow(
      /temperature must be a number ≥ 0, got -1/,
    );
    await expect(evaluatePolicy({ policy, cases: CASES, temperature: 1, samplingSeed: 0.5 })).rejects.toThrow(
      /samplingSeed must be an integer/,
    );
  });

  it('keeps `concurrency` sessions in flight and reports progress after every case', async () => {
    let inFlight = 0;
    let maxInFlight = 0;
    const scripted = new ScriptedPolicy(['alpha'], 'slow', 2);
    const counting: ChatPolicy = {
      version: 'slow',
      async *generate(messages, options?: GenerateOptions) {
        inFlight++;
        maxInFlight = Math.max(maxInFlight, inFlight);
        try {
          return yield* scripted.generate(messages, options);
        } finally {
          inFlight--;
        }
      },
    };
    const cases = Array.from({ length: 20 }, (_, i) => ({
      constraints: [keyword(i % 2 ? 'alpha' : 'zeta')],
    }));
    const progress: EvalProgress[] = [];
    const report = await evaluatePolicy({
      policy: counting,
      cases,
      attempts: 1,
      concurrency: 6,
      onProgress: (p) => progress.push(p),
    });
    expect(maxInFlight).toBe(6);
    expect(progress.map((p) => p.done)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
    expect(progress.at(-1)).toMatchObject({
      total: 20,
      success_at: report.success_at,
      errors: 0,
      etaSeconds: 0,
    });
    expect(report.success_at).toEqual([0.5]);
  });

  it('counts a case whose generation fails as unsolved and records the error', async () => {
    const failing: ChatPolicy = {
      version: 'broken',
      // biome-ignore lint/correctness/useYield: fails before its first token, as a too-long prompt does
      async *generate() {
        throw new Error('prompt of 999 tokens leaves no room to generate');
      },
    };
    const errors: (string | undefined)[] = [];
    const report = await evaluatePolicy({
      policy: failing,
      cases: [{ constraints: [noComma] }],
      attempts: 3,
      onCase: (result) => errors.push(result.error),
    });
    expect(report.success_at).toEqual([0, 0, 0]);
    expect(errors).toEqual(['prompt of 999 tokens leaves no room to generate']);
  });

  it('stops on abort: the sessions in flight end, no new one starts, and it rejects with the reason', async () => {
    const controller = new AbortController();
    const policy = new ScriptedPolicy(['zeta zeta zeta'], 'slow', 5);
    const run = evaluatePolicy({
      policy,
      cases: Array.from({ length: 10 }, () => ({ constraints: [keyword('alpha')] })),
      attempts: 1,
      concurrency: 2,
      signal: controller.signal,
      onCase: () => controller.abort(new Error('stop')),
    });
    await expect(run).rejects.toThrow('stop');
    expect(policy.calls).toHaveLength(2);
  });

  it('refuses attempts outside 1..10, no cases, and names an invalid case', async () => {
    const policy = new ScriptedPolicy(['x']);
    await expect(evaluatePolicy({ policy, cases: CASES, attempts: 0 })).rejects.toThrow(/attempts .*1\.\.10/);
    await expect(evaluatePolicy({ policy, cases: CASES, attempts: 11 })).rejects.toThrow(
      /attempts .*1\.\.10/,
    );
    await expect(evaluatePolicy({ policy, cases: [] })).rejects.toThrow(/at least one case/);
    await expect(
      evaluatePolicy({ policy, cases: [CASES[0], { constraints: [{ id: 'no:such', kwargs: {} }] }] }),
    ).rejects.toThrow(/^cases\[1\]\.constraints\[0\]\.id: unknown constraint id/);
    expect(policy.calls).toHaveLength(0); // validated before any generation
  });
});

describe('selectCases', () => {
  const items = Array.from({ length: 50 }, (_, i) => i);

  it('takes the first n without a seed, and everything without n', () => {
    expect(selectCases(items, { n: 3 })).toEqual([0, 1, 2]);
    expect(selectCases(items, {})).toEqual(items);
    expect(selectCases(items, { n: 500, seed: 1 })).toEqual(items);
  });

  it('draws a reproducible sample in file order with a seed', () => {
    const a = selectCases(items, { n: 10, seed: 7 });
    expect(selectCases(items, { n: 10, seed: 7 })).toEqual(a);
    expect(selectCases(items, { n: 10, seed: 8 })).not.toEqual(a);
    expect(new Set(a).size).toBe(10);
    expect(a).toEqual([...a].sort((x, y) => x - y));
    expect(a).not.toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  });
});

describe('formatEvalTable', () => {
  it('prints overall then one row per task, success@1..K, mean best score and n', () => {
    const report: EvalReport = {
      policy: 'p',
      attempts: 2,
      n: 3,
      success_at: [1 / 3, 2 / 3],
      mean_best_score: 0.8,
      by_task: {
        concepts: { n: 2, success_at: [0.5, 1], mean_best_score: 0.95 },
        num_planning: { n: 1, success_at: [0, 0], mean_best_score: 0.5 },
      },
    };
    expect(formatEvalTable(report)).toBe(
      [
        '| task         | success@1 | success@2 | mean best score | n |',
        '|--------------|----------:|----------:|----------------:|--:|',
        '| overall      |     0.333 |     0.667 |           0.800 | 3 |',
        '| concepts     |     0.500 |     1.000 |           0.950 | 2 |',
        '| num_planning |     0.000 |     0.000 |           0.500 | 1 |',
      ].join('\n'),
    );
  });
});

describe('corgi eval (the real CLI)', () => {
  let root: string;
  let policyDir: string;
  let casesFile: string;

  beforeAll(async () => {
    await useBackend('wasm');
    root = mkdtempSync(join(tmpdir(), 'corgi-eval-test-'));
    const model = tinyModel(3);
    policyDir = await saveTinyCheckpoint(model, root, 'tiny');
    model.dispose();
    casesFile = join(root, 'cases.jsonl');
    // Short instructions: the tiny model's context is 256 byte-level tokens, feedback turns included.
    writeFileSync(
      casesFile,
      [
        { id: 'keywords/test/a', constraints: [noComma] },
        { constraints: [keyword('dog')], prompt: 'Hi.' },
        { id: 'word_count_test_1', constraints: [noComma] },
        { id: 'keywords/test/b', constraints: [keyword('cat')] },
      ]
        .map((line) => JSON.stringify(line))
        .join('\n'),
    );
  });
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  const corgi = (args: string[]) => runCorgi(args, { env: { ...process.env, CORGI_BACKEND: 'wasm' } });

  it('prints the contract JSON for a tiny checkpoint and writes every session with --out', async () => {
    const out = join(root, 'sessions.jsonl');
    const args = ['eval', '--policy', policyDir, '--cases', casesFile, '--attempts', '2', '--n', '3'];
    const { code, stdout, stderr } = await corgi([...args, '--max-tokens', '6', '--json', '--out', out]);
    expect(stderr).toContain('eval 3/3 | success@1..2');
    expect(code).toBe(0);
    const report = JSON.parse(stdout) as EvalReport;
    expect(Object.keys(report)).toEqual([
      'policy',
      'attempts',
      'n',
      'success_at',
      'mean_best_score',
      'by_task',
    ]);
    expect(report).toMatchObject({ policy: 'tiny', attempts: 2, n: 3 });
    expect(report.success_at).toHaveLength(2);
    expect(report.success_at[1]).toBeGreaterThanOrEqual(report.success_at[0]);
    expect(report.mean_best_score).toBeGreaterThanOrEqual(0);
    expect(report.mean_best_score).toBeLessThanOrEqual(1);
    expect(Object.keys(report.by_task)).toEqual(['keywords', 'keywords:existence', 'word_count']);
    for (const scores of Object.values(report.by_task)) {
      expect(Object.keys(scores)).toEqual(['n', 'success_at', 'mean_best_score']);
      expect(scores.success_at).toHaveLength(2);
    }
    const sessions = readFileSync(out, 'utf8')
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line));
    expect(sessions.map((s) => s.index)).toEqual([0, 1, 2]);
    expect(sessions[1].instruction).toBe("Hi.\n\nInclude keywords ['dog'] in the response.");
    for (const s of sessions) expect(s.attempts.length).toBeGreaterThanOrEqual(1);
  });

  it('samples reproducibly with --temperature and --seed on llama.cpp, and a new seed draws anew', async () => {
    const sampled = async (seed: string) => {
      const out = join(root, `sampled-${seed}.jsonl`);
      const { code, stdout } = await corgi([
        'eval',
        '--policy',
        policyDir,
        '--cases',
        casesFile,
        '--attempts',
        '2',
        '--max-tokens',
        '6',
        '--concurrency',
        '1', // one sequence at a time: no batch-dependent rounding between the runs
        '--temperature',
        '1',
        '--seed',
        seed,
        '--json',
        '--out',
        out,
      ]);
      expect(code).toBe(0);
      expect(JSON.parse(stdout)).toMatchObject({ policy: 'tiny', attempts: 2, n: 4, temperature: 1 });
      return readFileSync(out, 'utf8')
        .trim()
        .split('\n')
        .map((line) => (JSON.parse(line) as { attempts: { text: string }[] }).attempts.map((a) => a.text));
    };
    const first = await sampled('3');
    expect(await sampled('3')).toEqual(first);
    // The tiny model's next-token distribution is broad: 4 cases' draws under another seed all
    // coinciding would be a seed that does not reach the sampler.
    expect(await sampled('4')).not.toEqual(first);
  });

  /** `corgi eval <args>` in-process (bad input never loads the model): fast, no tsx startup. */
  async function corgiInProcess(args: string[]) {
    const program = new Command('corgi').exitOverride();
    registerEvalCommand(program);
    const out: string[] = [];
    const err: string[] = [];
    vi.spyOn(process.stdout, 'write').mockImplementation((chunk) => out.push(String(chunk)) > 0);
    vi.spyOn(process.stderr, 'write').mockImplementation((chunk) => err.push(String(chunk)) > 0);
    try {
      await program.parseAsync(['node', 'corgi', ...args]);
    } finally {
      vi.restoreAllMocks();
    }
    const code = process.exitCode;
    process.exitCode = undefined;
    return { code, stdout: out.join(''), stderr: err.join('') };
  }

  it.each([
    ['a missing --cases file', ['--cases', '/no/such/cases.jsonl'], /--cases: no such file/],
    [
      'an invalid case line',
      ['--cases', 'BAD'],
      /--cases: .*bad\.jsonl:2: constraints\[0\]\.id: unknown constraint id/,
    ],
    ['--attempts above 10', ['--attempts', '11'], /--attempts: expected an integer in 1\.\.10, got "11"/],
    ['--attempts 0', ['--attempts', '0'], /--attempts: expected an integer in 1\.\.10/],
    ['--n 0', ['--n', '0'], /--n: expected an integer ≥ 1, got "0"/],
    [
      'a negative --temperature',
      ['--temperature', '-0.5'],
      /--temperature: expected a number ≥ 0 .*got "-0\.5"/,
    ],
    [
      'a --temperature that is not a number',
      ['--temperature', 'hot'],
      /--temperature: expected a number ≥ 0/,
    ],
  ])('refuses %s with exit 2 and a message naming it', async (_, flags, message) => {
    const bad = join(root, 'bad.jsonl');
    writeFileSync(
      bad,
      `${JSON.stringify({ constraints: [noComma] })}\n{"constraints": [{"id": "no:such"}]}\n`,
    );
    const args = [
      'eval',
      '--policy',
      policyDir,
      '--cases',
      casesFile,
      ...flags.map((f) => (f === 'BAD' ? bad : f)),
    ];
    const { code, stdout, stderr } = await corgiInProcess([...args, '--json']);
    expect(code).toBe(2);
    expect(stderr).toMatch(message);
    expect(JSON.parse(stdout).error).toMatch(message);
  });
});
