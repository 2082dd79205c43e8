import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { describe, expect, it } from 'vitest';
import { buildProgram, LAZY_COMMANDS } from '../../src/cli/main.ts';
import { CORGI_BIN, runCorgi } from '../support/run-corgi.ts';

/** Runs `corgi <args>` with `input` on stdin. */
const corgi = (args: string[], input = '') => runCorgi(args, { input });

describe('corgi check', () => {
  it('prints a check result and exits 0 when the response fails its constraints', async () => {
    const request = {
      response: 'Hello, world',
      constraints: [
        { id: 'punctuation:no_comma', kwargs: {} },
        { id: 'keywords:existence', kwargs: { keywords: ['world'] } },
      ],
    };
    const { code, stdout } = await corgi(['check'], JSON.stringify(request));
    expect(code).toBe(0);
    const result = JSON.parse(stdout);
    expect(result.ok).toBe(false);
    expect(result.score).toBeCloseTo(0.5);
    expect(result.results.map((r: { id: string; ok: boolean }) => [r.id, r.ok])).toEqual([
      ['punctuation:no_comma', false],
      ['keywords:existence', true],
    ]);
    expect(result.feedback).toMatch(/comma/i);
  });

  it("accepts IFEval's input form, dropping null kwargs", async () => {
    const request = {
      key: 1,
      prompt: 'Write without commas.',
      response: 'No commas here at all',
      instruction_id_list: ['punctuation:no_comma', 'length_constraints:number_words'],
      kwargs: [{ num_words: null }, { relation: 'less than', num_words: 10 }],
    };
    const { code, stdout } = await corgi(['check'], JSON.stringify(request));
    expect(code).toBe(0);
    expect(JSON.parse(stdout)).toMatchObject({ ok: true, score: 1, feedback: null });
  });

  it.each([
    ['invalid JSON', '{"response": "x"', 'stdin'],
    ['empty input', '', 'stdin'],
    ['a missing response', JSON.stringify({ constraints: [{ id: 'punctuation:no_comma' }] }), 'response'],
    ['a non-string response', JSON.stringify({ response: 3, constraints: [] }), 'response'],
    ['an unknown top-level field', JSON.stringify({ response: 'x', constraints: [], extra: 1 }), 'extra'],
    [
      'an unknown constraint id',
      JSON.stringify({ response: 'x', constraints: [{ id: 'nope:nope' }] }),
      'constraints[0].id',
    ],
    [
      'a kwarg of the wrong type',
      JSON.stringify({
        response: 'x',
        constraints: [
          { id: 'length_constraints:number_words', kwargs: { relation: 'at least', num_words: 'ten' } },
        ],
      }),
      'constraints[0].kwargs.num_words',
    ],
    [
      'conflicting constraints',
      JSON.stringify({
        response: 'x',
        constraints: [
          { id: 'punctuation:no_comma', kwargs: {} },
          { id: 'detectable_format:constrained_response', kwargs: {} },
        ],
      }),
      'constraints[1].id',
    ],
    [
      'IFEval kwargs of the wrong length',
      JSON.stringify({ response: 'x', instruction_id_list: ['punctuation:no_comma'], kwargs: [{}, {}] }),
      'kwargs',
    ],
  ])('exits 2 with an error naming the field on %s', async (_name, input, field) => {
    const { code, stdout } = await corgi(['check'], input);
    expect(code).toBe(2);
    const error = JSON.parse(stdout);
    expect(error.field).toBe(field);
    expect(error.error.startsWith(`${field}: `) || error.error.startsWith(`${field} `)).toBe(true);
  });

  it('answers one line per request, in order, with --jsonl', async () => {
    const lines = [
      JSON.stringify({ response: 'a, b', constraints: [{ id: 'punctuation:no_comma' }] }),
      'not json',
      '',
      JSON.stringify({ response: 'a b', constraints: [{ id: 'punctuation:no_comma' }] }),
    ];
    const { code, stdout } = await corgi(['check', '--jsonl'], `${lines.join('\n')}\n`);
    const outputs = stdout
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line));
    expect(outputs).toHaveLength(3);
    expect(outputs[0].ok).toBe(false);
    expect(outputs[1].error).toMatch(/^line 2: invalid JSON/);
    expect(outputs[2].ok).toBe(true);
    expect(code).toBe(2);
  });
});

describe('corgi checkers', () => {
  it('lists every checker with its kwargs JSON Schema', async () => {
    const { code, stdout } = await corgi(['checkers', '--json']);
    expect(code).toBe(0);
    const infos = JSON.parse(stdout) as { id: string; description: string; kwargsSchema: { type: string } }[];
    expect(infos).toHaveLength(30);
    expect(infos.map((info) => info.id)).toContain('corgi:num_planning');
    for (const info of infos) {
      expect(info.description.length).toBeGreaterThan(10);
      expect(info.kwargsSchema.type).toBe('object');
    }
  });
});

describe('the corgi entry point', () => {
  it('exits quietly when the reader closes the pipe early (`corgi checkers | head -1`)', async () => {
    // The read end is closed before the CLI writes a byte, so its first write meets EPIPE.
    const child = spawn(process.execPath, [CORGI_BIN, 'checkers', '--json'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stdout.destroy();
    let stderr = '';
    child.stderr.on('data', (chunk) => {
      stderr += chunk;
    });
    const [code, signal] = await once(child, 'close');
    expect(stderr).toBe('');
    expect({ code, signal }).toEqual({ code: 0, signal: null });
  });

  it('lists every command in --help', async () => {
    const { code, stdout } = await corgi(['--help']);
    expect(code).toBe(0);
    for (const name of [
      'check',
      'checkers',
      ...LAZY_COMMANDS.flatMap((lazy) => Object.keys(lazy.commands)),
    ]) {
      expect(stdout).toMatch(new RegExp(`^  ${name}\\b`, 'm'));
    }
  });

  it.each(LAZY_COMMANDS.flatMap((lazy) => Object.keys(lazy.commands)))(
    'defines %s in full, from its module, when it is the command asked for',
    async (name) => {
      const program = await buildProgram(['node', 'corgi', name]);
      const matching = program.commands.filter((command) => command.name() === name);
      expect(matching).toHaveLength(1);
      // The module's definition, not the summary stub (which has neither options nor subcommands).
      expect(matching[0].options.length + matching[0].commands.length).toBeGreaterThan(0);
    },
  );
});
