/**
 * Promotion of LoRA adapters on llama.cpp under load, through the path `POST /v1/admin/promote`
 * takes (`PolicyFollower.promote` on PostgreSQL, `servingPolicyLoader`, `PolicyRegistry`), on the
 * built-in model: 8 sessions generate while two adapter versions are promoted one after the other.
 * No session fails; attempts generating when a promotion was called end on the version they started
 * on; a session started once the promotion resolved runs on the new version, as does every attempt
 * started after it; each swapped-out version is disposed, only once no attempt generates on it.
 * Run with and without the spare context `corgi serve` keeps (with it, each promotion starts on the
 * spare: the one made beside the base, then the swapped-out context, recycled once drained).
 */

import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConstraints } from '../../src/checkers/registry.ts';
import { silentLogger } from '../../src/common/logger.ts';
import type { Database } from '../../src/db/database.ts';
import { BUILTIN_MODEL_DIR } from '../../src/policy/builtin-model.ts';
import type { LlamaCppPolicy } from '../../src/policy/llama-cpp-policy.ts';
import { type DisposablePolicy, PolicyRegistry } from '../../src/policy/policy-registry.ts';
import { servingPolicyLoader } from '../../src/policy/serving-loader.ts';
import { followPromotions } from '../../src/promotion/follower.ts';
import { runSession, type SessionPart } from '../../src/session/session-runner.ts';
import { openTestDatabase } from '../support/database.ts';
import { writeRandomLoraAdapter } from '../support/lora-adapter-gguf.ts';

const SESSIONS = 8;
const dir = mkdtempSync(join(tmpdir(), 'corgi-promotion-hot-swap-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** One attempt as its session saw it. */
interface Attempt {
  session: number;
  version: string;
  endVersion?: string;
  /** Promotions already resolved when it started. */
  startedAfter: number;
  /** Started while a promotion was under way (either version is right). */
  duringPromotion: boolean;
}

describe.each([{ spareContext: false }, { spareContext: true }])(
  'promoting LoRA adapters on llama.cpp under load (spare context: $spareContext)',
  ({ spareContext }) => {
    let db: Database;
    beforeAll(async () => {
      db = await openTestDatabase();
    });
    afterAll(async () => {
      await db?.close();
    });

    it('swaps between attempts: none fails, in-flight attempts end on the old version, which is disposed after', async () => {
      // One thread: on a shared 2-core machine llama.cpp's two-thread barrier stalls.
      const engine = { cacheDir: join(dir, 'cache'), sequences: SESSIONS, threads: 1, spareContext };
      const base = await servingPolicyLoader(engine)(BUILTIN_MODEL_DIR, 'base');
      const disposed = new Map<string, { generating: number }>();
      const fromSpare = new Map<string, boolean>();
      const observed = (policy: LlamaCppPolicy): DisposablePolicy => {
        fromSpare.set(policy.version, policy.contextFromSpare);
        return {
          version: policy.version,
          generate: (messages, options) => policy.generate(messages, options),
          measurePrompt: (messages, options) => policy.measurePrompt(messages, options),
          dispose: async () => {
            disposed.set(policy.version, { generating: policy.generating });
            await policy.dispose();
          },
        };
      };
      const loader = servingPolicyLoader({ ...engine, baseModelPath: base.modelPath });
      const registry = new PolicyRegistry(observed(base));
      const follower = await followPromotions({
        db,
        registry,
        load: async (path, version) => observed(await loader(path, version)),
        pollMs: 0,
        logger: silentLogger,
      });
      const versions = ['adapter-1', 'adapter-2'];
      for (const [i, version] of versions.entries()) {
        mkdirSync(join(dir, version), { recursive: true });
        await writeRandomLoraAdapter(base.modelPath, join(dir, version, 'adapter.gguf'), { seed: 11 + i });
      }

      // Never satisfied: every session makes all its attempts.
      const constraints = parseConstraints([
        { id: 'length_constraints:number_words', kwargs: { num_words: 400, relation: 'at least' } },
      ]);
      const request = (s: number, maxAttempts: number) => ({
        prompt: `Write a sentence about lantern number ${s}.`,
        constraints,
        maxAttempts,
        sampling: { temperature: 0, maxTokens: 8 },
      });
      let promoted = 0;
      let promoting = false;
      const attempts: Attempt[] = [];
      const current: (Attempt | null)[] = Array.from({ length: SESSIONS }, () => null);
      const errors: SessionPart[] = [];
      const record = (session: number, part: SessionPart) => {
        if (part.type === 'attempt:start') {
          const attempt = {
            session,
            version: part.policyVersion,
            startedAfter: promoted,
            duringPromotion: promoting,
          };
          attempts.push(attempt);
          current[session] = attempt;
        } else if (part.type === 'attempt:end') {
          current[session]!.endVersion = part.policyVersion;
          current[session] = null;
        } else if (part.type === 'error') errors.push(part);
      };
      let stop = false;
      const running = Array.from({ length: SESSIONS }, async (_, s) => {
        while (!stop)
          for await (const part of runSession(request(s, 3), { policy: registry })) record(s, part);
      });
      const waitUntil = async (condition: () => boolean) => {
        while (!condition()) await new Promise((resolve) => setTimeout(resolve, 5));
      };

      const inFlight: Attempt[] = [];
      const newSessions: string[] = [];
      for (const version of versions) {
        await waitUntil(() => current.every((attempt) => attempt !== null));
        const previous = registry.version;
        const caught = current.filter((attempt): attempt is Attempt => attempt !== null);
        inFlight.push(...caught);
        promoting = true;
        await follower.promote({ checkpoint: join(dir, version), version });
        promoted++;
        promoting = false;
        expect(registry.version).toBe(version);
        for (const attempt of caught) expect(attempt.version).toBe(previous);
        // A session started now runs on the new version at once.
        for await (const part of runSession(request(99, 1), { policy: registry })) {
          if (part.type === 'attempt:start') newSessions.push(part.policyVersion);
          if (part.type === 'error') errors.push(part);
        }
        // Every running session reaches an attempt on the new version.
        await waitUntil(() => current.every((a) => a !== null && a.startedAfter === promoted));
      }
      stop = true;
      await Promise.all(running);
      await follower.close();

      expect(errors).toEqual([]);
      expect(newSessions).toEqual(versions);
      // With a spare, the first promotion took the one made beside the base, the second the base's
      // context, recycled once drained.
      expect(fromSpare).toEqual(
        new Map([
          ['base', false],
          ['adapter-1', spareContext],
          ['adapter-2', spareContext],
        ]),
      );
      expect(inFlight.length).toBe(SESSIONS * versions.length);
      // Every attempt ends on the version it started on: those caught in flight on the old one.
      for (const attempt of attempts) expect(attempt.endVersion).toBe(attempt.version);
      // Started after promotion k resolved (and before the next began): on version k, base before the first.
      for (const attempt of attempts.filter((a) => !a.duringPromotion))
        expect(attempt.version).toBe(['base', ...versions][attempt.startedAfter]);
      // The swapped-out versions were disposed, each with no attempt still generating on it.
      expect(disposed).toEqual(
        new Map([
          ['base', { generating: 0 }],
          ['adapter-1', { generating: 0 }],
        ]),
      );
      await registry.close();
      expect(disposed.get('adapter-2')).toEqual({ generating: 0 });
      const { rows } = await db.pool.query(`SELECT version, status FROM policy_versions ORDER BY version`);
      expect(rows).toEqual([
        { version: 'adapter-1', status: 'retired' },
        { version: 'adapter-2', status: 'promoted' },
      ]);
    }, 300_000);
  },
);
