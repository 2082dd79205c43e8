/**
 * `corgi serve` on the embedded database runs the background trainer as a low-priority child
 * process: a real server process (tmp data directory, tiny seeded policy, tiny thresholds) gets a
 * few sessions over HTTP, its trainer child (nice 19, every thread) trains a round through the
 * embedded database's socket, the gate passes it (tolerance 1), and the server swaps to the new
 * version; sessions keep being answered throughout.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { saveTinyCheckpoint, tinyModel } from '../policy/tiny-policy.ts';
import { corgiEnv, type ServeProcess, startServe, stopGently } from '../support/processes.ts';

const MINUTES = 60_000;

const TRAINER_ARGS = [
  '--budget steps --steps 1 --seed 1',
  '--prompts-per-step 2 --group-size 2 --attempts 2 --max-tokens 8 --epochs 1',
  '--lora-r 2 --pool-size 8 --tasks word_count',
  '--production-fraction 0.5 --replay-sessions 2',
  '--gate-cases 2 --tolerance 1',
].join(' ');

describe('corgi serve with the background trainer (embedded database)', () => {
  const root = mkdtempSync(join(tmpdir(), 'corgi-embedded-trainer-'));
  let server: ServeProcess;

  async function session(seed: number): Promise<{ status: number; versions: string[]; error?: unknown }> {
    const response = await fetch(`${server.url}/v1/sessions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        prompt: 'Write about a dog.',
        constraints: [
          { id: 'length_constraints:number_words', kwargs: { relation: 'less than', num_words: 2 } },
        ],
        maxAttempts: 2,
        sampling: { maxTokens: 8, seed },
      }),
    });
    const body = (await response.json()) as { turns?: { policyVersion?: string }[]; error?: unknown };
    const versions = (body.turns ?? []).flatMap((t) => (t.policyVersion ? [t.policyVersion] : []));
    return { status: response.status, versions, ...(response.ok ? {} : { error: body.error ?? body }) };
  }

  beforeAll(async () => {
    const model = tinyModel(3);
    const policyDir = await saveTinyCheckpoint(model, root, 'tiny-v1');
    model.dispose();
    const env = corgiEnv(join(root, 'data'), { CORGI_BACKEND: 'wasm' });
    delete env.CORGI_TRAINER;
    server = await startServe(
      [
        ...['--policy', policyDir],
        ...['--trainer-min-sessions', '3', '--trainer-poll-seconds', '1', '--trainer-args', TRAINER_ARGS],
        // The test's client sends more sessions than the per-minute default allows.
        ...['--session-rate-limit', '0', '--rate-limit', '0'],
      ],
      env,
      { timeoutMs: 2 * MINUTES },
    );
  }, 3 * MINUTES);

  afterAll(async () => {
    await stopGently(server);
    rmSync(root, { recursive: true, force: true });
  }, 2 * MINUTES);

  it(
    'trains a round in a nice 19 child process and swaps to the promoted version while serving',
    async () => {
      expect(server.stderr()).toMatch(/policy tiny-v1, database embedded \(PGlite\)/);
      await server.waitFor(
        /\[trainer\] background trainer on: a round when 3 new live sessions came in/,
        MINUTES,
      );
      // Two sessions: not due yet.
      for (const seed of [1, 2]) expect((await session(seed)).status).toBe(200);
      expect(server.stderr()).not.toMatch(/round started/);

      // The third makes a round due; sessions keep going while it trains.
      const outcomes: { status: number; versions: string[]; error?: unknown; duringRound: boolean }[] = [];
      let seed = 3;
      let promoted: string | null = null;
      const round = server.waitFor(
        /\[trainer\] (promoted (\S+)|the eval gate refused (\S+): .*|round failed.*)/,
        12 * MINUTES,
      );
      round.then(
        (match) => {
          promoted = match[2] ?? null;
        },
        () => {},
      );
      let settled = false;
      round.finally(() => {
        settled = true;
      });
      while (!settled) {
        const duringRound = /round started/.test(server.stderr());
        outcomes.push({ ...(await session(seed++)), duringRound });
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
      const verdict = await round;
      expect(verdict[1], server.stderr()).toMatch(/^promoted corgi-/);
      expect(promoted).toMatch(/^corgi-\d{8}T\d{6}$/);

      // The child: its own pid, every thread at nice 19 as the kernel reports it.
      const [, pid] = /\[trainer\] round started: pid (\d+), nice 19/.exec(server.stderr())!;
      expect(server.stderr()).toMatch(
        new RegExp(`\\[trainer ${pid}\\] \\[trainer\\] nice 19 on (\\d+) of \\1 threads`),
      );
      expect(Number(pid)).not.toBe(server.child.pid);

      // Serving went on: every session answered, some while the round ran.
      expect(outcomes.filter((o) => o.status !== 200)).toEqual([]);
      expect(outcomes.filter((o) => o.duringRound).length).toBeGreaterThan(0);

      // The server follows the promotion (the embedded follower polls every 2 s).
      const deadline = Date.now() + 2 * MINUTES;
      let live: { version: string; status?: string; parentVersion?: string | null } | undefined;
      while (Date.now() < deadline) {
        live = await (await fetch(`${server.url}/v1/policy`)).json();
        if (live?.version === promoted) break;
        await new Promise((resolve) => setTimeout(resolve, 250));
      }
      expect(live).toMatchObject({ version: promoted, status: 'promoted', parentVersion: 'tiny-v1' });
      const versions = (await (await fetch(`${server.url}/v1/admin/policy-versions`)).json()) as {
        live: string;
        versions: { version: string; status: string; eval: { passed: boolean } | null }[];
      };
      expect(versions.live).toBe(promoted);
      expect(versions.versions.find((v) => v.version === promoted)).toMatchObject({
        status: 'promoted',
        eval: { passed: true },
      });
      expect(versions.versions.find((v) => v.version === 'tiny-v1')?.status).toBe('retired');
      // New sessions run on it.
      const after = await session(seed++);
      expect(after.status).toBe(200);
      expect(after.versions.every((v) => v === promoted)).toBe(true);
    },
    16 * MINUTES,
  );

  it(
    'ends a running round when the server shuts down, leaving no trainer process behind',
    async () => {
      // More traffic makes the next round due (if the sessions above have not already).
      for (let i = 0; i < 3; i++) expect((await session(100 + i)).status).toBe(200);
      const starts = () =>
        [...server.stderr().matchAll(/\[trainer\] round started: pid (\d+)/g)].map((m) => Number(m[1]));
      await server.waitFor(/\[trainer\] round started[^\n]*\n[\s\S]*\[trainer\] round started/, 5 * MINUTES);
      server.child.kill('SIGTERM');
      expect((await server.exited).code).toBe(0);
      for (const pid of starts())
        expect(() => process.kill(pid, 0), `trainer ${pid} still running`).toThrow();
    },
    8 * MINUTES,
  );
});
