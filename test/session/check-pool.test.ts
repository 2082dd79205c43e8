import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkAll, parseConstraints } from '../../src/checkers/registry.ts';
import { configureRuntime, runtimeSettings } from '../../src/common/runtime-settings.ts';
import { CheckError } from '../../src/session/check-error.ts';
import { type CheckPool, createCheckPool } from '../../src/session/check-pool.ts';
import { ADVERSARIAL_SHAPES } from '../support/adversarial-texts.ts';

const CONCEPTS = parseConstraints([
  { id: 'corgi:concepts', kwargs: { concepts: ['dog', 'park'], pos: ['noun', 'noun'] } },
  { id: 'corgi:sentiment', kwargs: { label: 'positive' } },
]);
/** ~1–2 s of checking on one core: far past a 300 ms budget. */
const SLOW = ADVERSARIAL_SHAPES['lone surrogates'](250_000);

describe('the check pool', () => {
  let pool: CheckPool;
  beforeAll(() => {
    pool = createCheckPool({ threads: 1, timeoutMs: 300 });
  });
  afterAll(async () => {
    await pool?.close();
  });

  it('gives the verdicts checkAll gives on this thread', async () => {
    const requests: [string, unknown[]][] = [
      [
        'The dog ran happily in the sunny park.',
        [{ id: 'corgi:concepts', kwargs: { concepts: ['dog', 'park'] } }],
      ],
      [
        'Yes, a comma.',
        [{ id: 'punctuation:no_comma' }, { id: 'keywords:existence', kwargs: { keywords: ['cat'] } }],
      ],
      ['It was a terrible day.', [{ id: 'corgi:sentiment', kwargs: { label: 'positive' } }]],
    ];
    for (const [response, specs] of requests) {
      const constraints = parseConstraints(specs);
      expect(await pool.check(response, constraints)).toEqual(checkAll(response, constraints));
    }
  }, 60_000);

  it('stops a check past its budget with check_timeout, keeping the event loop free, and then checks again', async () => {
    let longestGapMs = 0;
    let last = performance.now();
    const ticker = setInterval(() => {
      const now = performance.now();
      longestGapMs = Math.max(longestGapMs, now - last);
      last = now;
    }, 10);
    const started = performance.now();
    const error = await pool.check(SLOW, CONCEPTS).catch((caught: unknown) => caught);
    const elapsed = performance.now() - started;
    clearInterval(ticker);
    expect(CheckError.isInstance(error)).toBe(true);
    expect(error).toMatchObject({ code: 'check_timeout' });
    expect((error as Error).message).toMatch(/^response: checking took longer than the 300 ms budget/);
    expect(elapsed).toBeLessThan(2_000);
    expect(longestGapMs).toBeLessThan(200);
    expect(pool.timeouts).toBe(1);
    // The terminated worker was replaced: the next check gets a verdict.
    const after = await pool.check('The dog sat in the park.', CONCEPTS.slice(0, 1));
    expect(after.ok).toBe(true);
  }, 60_000);

  it('lets the caller cancel a check without counting a timeout', async () => {
    const controller = new AbortController();
    const pending = pool.check(SLOW, CONCEPTS, { signal: controller.signal });
    setTimeout(() => controller.abort(), 50);
    const error = await pending.catch((caught: unknown) => caught);
    expect(CheckError.isInstance(error)).toBe(false);
    expect((error as Error).name).toBe('AbortError');
    expect(pool.timeouts).toBe(1);
  }, 60_000);

  it('takes its size and budget from the process defaults when the caller does not say', async () => {
    const before = { ...runtimeSettings() };
    configureRuntime({ checkThreads: 2, checkTimeoutMs: 1_234 });
    const defaulted = createCheckPool();
    try {
      expect([defaulted.threads, defaulted.timeoutMs]).toEqual([2, 1_234]);
    } finally {
      await defaulted.close();
      configureRuntime({
        checkThreads: before.checkThreads ?? 1,
        checkTimeoutMs: before.checkTimeoutMs ?? 5_000,
      });
    }
  });
});
