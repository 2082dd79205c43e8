/**
 * The web front end in a real headless Chromium (Debian's `chromium` driven by playwright-core),
 * against a real server with a scripted policy and the real PostgreSQL: a whole session is driven
 * through the page (constraints picked from a preset and from a generated form, streaming,
 * verdicts, feedback, the best answer, rating, history replay), at desktop and phone widths, by
 * keyboard, then the dashboard. Screenshots go to a temp directory whose path is printed; with
 * `UPDATE_SCREENSHOTS=1` the writing page's at 1280 and 390 px wide replace those in docs/screenshots/.
 */
import { mkdirSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Database } from '../../src/db/database.ts';
import { fixedPolicy } from '../../src/policy/types.ts';
import { type RunningServer, startServer } from '../../src/server/server.ts';
import { describeInBrowser, type LaunchedBrowser, launchBrowser } from '../support/browser.ts';
import { openTestDatabase } from '../support/database.ts';
import { ScriptedPolicy } from '../support/scripted-policy.ts';

const DOCS_SCREENSHOTS = fileURLToPath(new URL('../../docs/screenshots', import.meta.url));
/** `UPDATE_SCREENSHOTS=1` rewrites the committed ones; otherwise every screenshot goes to a temp directory. */
const UPDATE_DOCS = process.env.UPDATE_SCREENSHOTS === '1';

/**
 * With the Story preset (no repeated 4-gram) and concepts "dog, park" from the form: the first
 * answer fails both, the second repeats a 4-gram, the third passes.
 */
const ANSWERS = [
  'A cat sat on a mat and a cat sat on a mat.',
  'A dog ran in the park and a dog ran in the park.',
  'A happy dog chased a red ball across the sunny park.',
];
/** Milliseconds between streamed words: slow enough to watch, fast enough for a quick test. */
const TOKEN_DELAY_MS = 40;

describeInBrowser('the web front end in Chromium', () => {
  let db: Database;
  let server: RunningServer;
  let browser: LaunchedBrowser;
  let page: Page;
  const screenshotDir = mkdtempSync(join(tmpdir(), 'corgi-web-'));
  /** Every URL the page asked for: none may leave the server's origin. */
  const requested: string[] = [];
  /** The body of every `POST /v1/check` the page sent (how it validates a constraint before adding it). */
  const checkBodies: { constraints: { id: string; kwargs: Record<string, unknown> }[] }[] = [];
  const consoleErrors: string[] = [];

  beforeAll(async () => {
    // First, so a required but missing browser fails the run before anything starts.
    browser = await launchBrowser({ viewport: { width: 1280, height: 900 } });
    db = await openTestDatabase();
    server = await startServer({
      db,
      policy: fixedPolicy(new ScriptedPolicy(ANSWERS, 'scripted-web', TOKEN_DELAY_MS)),
      port: 0,
    });
    page = browser.page;
    page.on('request', (request) => {
      requested.push(request.url());
      if (request.url().endsWith('/v1/check')) checkBodies.push(request.postDataJSON());
    });
    page.on('console', (message) => {
      if (message.type() === 'error') consoleErrors.push(message.text());
    });
    page.on('pageerror', (error) => consoleErrors.push(String(error)));
    console.log(`[web test] screenshots in ${screenshotDir}`);
  });

  afterAll(async () => {
    await browser?.close();
    await server?.close();
    await db?.close();
  });

  /** Takes a full-page screenshot (into docs/screenshots/ with `docs`) and checks it is a real, non-trivial PNG. */
  async function screenshot(name: string, { docs = false } = {}): Promise<string> {
    const toDocs = docs && UPDATE_DOCS;
    if (toDocs) mkdirSync(DOCS_SCREENSHOTS, { recursive: true });
    const path = join(toDocs ? DOCS_SCREENSHOTS : screenshotDir, `${name}.png`);
    await page.screenshot({ path, fullPage: true });
    const png = readFileSync(path);
    expect(png.subarray(1, 4).toString('ascii')).toBe('PNG');
    // IHDR: width and height, big-endian, at bytes 16..24.
    expect(png.readUInt32BE(16)).toBeGreaterThan(300);
    expect(png.readUInt32BE(20)).toBeGreaterThan(300);
    expect(png.length).toBeGreaterThan(20_000);
    return path;
  }

  /** The ids of the chosen constraints, and their names as the page shows them. */
  async function chosenConstraints(): Promise<{ ids: string[]; labels: string[] }> {
    const chips = page.locator('#chosen-constraints li');
    return {
      ids: await chips.evaluateAll((items) => items.map((item) => (item as HTMLElement).dataset.id ?? '')),
      labels: await chips.locator('.chip-label').allTextContents(),
    };
  }

  describe('the writing page in Chromium', () => {
    let sessionId: string;

    it('opens with checkers named in words and a default constraint anyone can read', async () => {
      await page.goto(`${server.url}/`);
      await expect.poll(() => page.locator('#checker-select option').count()).toBeGreaterThan(1);
      await expect.poll(() => page.textContent('#policy-version')).toBe('policy scripted-web');
      await expect.poll(() => page.getAttribute('#connection', 'data-state')).toBe('up');

      const options = await page.locator('#checker-select option').allTextContents();
      expect(options).toHaveLength(30);
      expect(options).toEqual(
        expect.arrayContaining(['Must include these words', 'No commas', 'Word limit']),
      );
      for (const text of options) expect(text).not.toMatch(/^[a-z_]+:[a-z_]+$/);
      await expect
        .poll(chosenConstraints)
        .toEqual({ ids: ['keywords:existence'], labels: ['Must include these words'] });
      expect(await page.textContent('#chosen-constraints .chip-kwargs')).toBe('dog, park');
      // The prompt is optional, as in the API: the page says what happens without one.
      expect(await page.textContent('label[for="prompt"]')).toMatch(/^Prompt\s*optional$/);
      expect(await page.textContent('#prompt-hint')).toBe(
        'Without a prompt, the constraints alone become the instruction.',
      );
    });

    it('takes plain words, escaping them for the checker; regular expressions only under Advanced', async () => {
      expect(await page.inputValue('#checker-select')).toBe('keywords:existence');
      expect(await page.textContent('label[for="kw-keywords"]')).toBe('Words');
      expect(await page.textContent('#kw-keywords-hint')).not.toMatch(/regular|regex|pattern/i);
      expect(await page.isVisible('#kw-keywords-regex')).toBe(false);

      await page.locator('#kw-keywords').fill('c++, park');
      await page.getByRole('button', { name: 'Add constraint' }).click();
      await expect.poll(() => page.locator('#chosen-constraints li').count()).toBe(2);
      expect(checkBodies.at(-1)?.constraints.at(-1)).toEqual({
        id: 'keywords:existence',
        kwargs: { keywords: ['c\\+\\+', 'park'] },
      });
      expect(await page.locator('#chosen-constraints .chip-kwargs').nth(1).textContent()).toBe('c++, park');

      await page.locator('.advanced summary').click();
      await page.locator('#kw-keywords-regex').check();
      await page.locator('#kw-keywords').fill('colou?r');
      await page.getByRole('button', { name: 'Add constraint' }).click();
      await expect.poll(() => page.locator('#chosen-constraints li').count()).toBe(3);
      expect(checkBodies.at(-1)?.constraints.at(-1)).toEqual({
        id: 'keywords:existence',
        kwargs: { keywords: ['colou?r'] },
      });
    });

    it('drives a whole session: preset + generated form, streaming, verdicts, feedback, the best answer', async () => {
      // One constraint from a preset ...
      await page.getByRole('button', { name: /^Story/ }).click();
      await expect.poll(() => page.locator('#chosen-constraints li').count()).toBe(1);

      // ... and one from the form generated out of corgi:concepts' JSON Schema.
      await page.selectOption('#checker-select', 'corgi:concepts');
      await expect.poll(() => page.locator('label[for="kw-pos"] .optional').count()).toBe(1);
      expect(await page.locator('label[for="kw-concepts"] .optional').count()).toBe(0);
      // An invalid value is refused inline, under its field, with the field named.
      await page.locator('#kw-pos').fill('dog-ish');
      await page.locator('#kw-concepts').fill('dog, park');
      await page.getByRole('button', { name: 'Add constraint' }).click();
      await expect.poll(() => page.textContent('#kw-pos-error')).toMatch(/kwargs\.pos/);
      expect(await page.getAttribute('#kw-pos', 'aria-invalid')).toBe('true');
      await page.locator('#kw-pos').fill('');
      await page.getByRole('button', { name: 'Add constraint' }).click();
      await expect.poll(() => page.locator('#chosen-constraints li').count()).toBe(2);
      expect(await chosenConstraints()).toEqual({
        ids: ['corgi:no_repeat_ngram', 'corgi:concepts'],
        labels: ['No repeated phrases', 'Use these concepts'],
      });

      await page.fill('#prompt', 'Write one sentence about a dog in a park.');
      await page.fill('#max-attempts', '4');
      await page.fill('#temperature', '0.5');
      // Record every length the first attempt's text goes through, to see it stream.
      await page.evaluate(() => {
        const seen: number[] = [];
        (window as unknown as { seenLengths: number[] }).seenLengths = seen;
        new MutationObserver(() => {
          const text = document.querySelector('.attempt[data-attempt="1"] .attempt-text');
          if (text) seen.push(text.textContent?.length ?? 0);
        }).observe(document.getElementById('conversation')!, {
          subtree: true,
          childList: true,
          characterData: true,
        });
      });
      // Started from the keyboard, from a field other than the prompt.
      await page.locator('#temperature').press('Control+Enter');

      // Tokens stream in: the text is seen partly written before it is complete.
      await page.locator('.attempt[data-attempt="1"] .attempt-text').waitFor();
      await page.locator('.summary').waitFor({ timeout: 15_000 });
      const seen = await page.evaluate(() => (window as unknown as { seenLengths: number[] }).seenLengths);
      const partial = new Set(seen.filter((n) => n > 0 && n < ANSWERS[0].length));
      expect(partial.size).toBeGreaterThan(3);

      // Three attempts, each with one verdict per constraint; two feedback turns between them.
      const attempts = page.locator('.attempt');
      expect(await attempts.count()).toBe(3);
      expect(await attempts.locator('.attempt-text').allTextContents()).toEqual(ANSWERS);
      for (let i = 0; i < 3; i++) {
        expect(await attempts.nth(i).locator('.verdict').count()).toBe(2);
      }
      expect(await attempts.nth(0).locator('.verdict .mark').allTextContents()).toEqual(['✗', '✗']);
      expect(await attempts.nth(1).locator('.verdict .mark').allTextContents()).toEqual(['✗', '✓']);
      expect(await attempts.nth(2).locator('.verdict .mark').allTextContents()).toEqual(['✓', '✓']);
      expect(await attempts.nth(0).locator('.verdict-label').allTextContents()).toEqual([
        'No repeated phrases',
        'Use these concepts',
      ]);
      expect(await attempts.nth(0).locator('.verdict-feedback').first().textContent()).toBeTruthy();
      const feedback = await page.locator('.message.feedback .message-text').allTextContents();
      expect(feedback).toHaveLength(2);
      expect(feedback[0]).toMatch(/^Feedback: .+ Please try again\.$/);
      expect(await page.textContent('.summary h3')).toBe('All constraints met on attempt 3');
      expect(await page.textContent('.summary .meta')).toContain('best score 1.00');
      // The result card carries the answer itself, not just its score.
      expect(await page.textContent('.summary .best figcaption')).toBe('The answer (attempt 3)');
      expect(await page.textContent('.summary .best-text')).toBe(ANSWERS[2]);
      sessionId = (await page.getAttribute('.summary', 'data-session-id'))!;
      expect(sessionId).toMatch(/^[0-9a-f-]{36}$/);
      console.log(`[web test] session screenshot: ${await screenshot('writer-1280', { docs: true })}`);
    });

    it('fits a 390 px phone screen without sideways scrolling', async () => {
      await page.setViewportSize({ width: 390, height: 844 });
      try {
        await page.locator('.summary').scrollIntoViewIfNeeded();
        console.log(`[web test] phone screenshot: ${await screenshot('writer-390', { docs: true })}`);
        // Every element stays inside the screen horizontally (named, to see which one does not).
        const overflowing = await page.evaluate(() =>
          [...document.querySelectorAll('body *')]
            .filter((element) => !element.closest('.visually-hidden, .skip-link'))
            .filter((element) => {
              const box = element.getBoundingClientRect();
              return box.width > 0 && (box.left < 0 || box.right > 390);
            })
            .map((element) => `${element.tagName.toLowerCase()}#${element.id}.${element.className}`),
        );
        expect(overflowing).toEqual([]);
        expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(390);
      } finally {
        await page.setViewportSize({ width: 1280, height: 900 });
      }
    });

    it('is usable from the keyboard: labelled controls, in reading order', async () => {
      const unlabelled = await page.evaluate(() =>
        [...document.querySelectorAll('input, select, textarea')]
          .filter((element) => {
            const input = element as HTMLInputElement;
            return input.type !== 'hidden' && input.labels?.length === 0 && !input.getAttribute('aria-label');
          })
          .map((element) => element.id),
      );
      expect(unlabelled).toEqual([]);
      // Tab order follows the page: constraints, then the prompt, then the settings, then Start.
      const order = await page.evaluate(() =>
        [
          ...document.querySelectorAll<HTMLElement>(
            '#checker-select, #prompt, #max-attempts, #temperature, #start',
          ),
        ].map((element) => element.id),
      );
      expect(order).toEqual(['checker-select', 'prompt', 'max-attempts', 'temperature', 'start']);
      const positive = await page.evaluate(
        () => document.querySelectorAll('[tabindex]:not([tabindex="0"]):not([tabindex="-1"])').length,
      );
      expect(positive).toBe(0);
      await page.locator('#prompt').focus();
      await page.keyboard.press('Tab');
      expect(await page.evaluate(() => document.activeElement?.id)).toBe('max-attempts');
      await page.keyboard.press('Tab');
      expect(await page.evaluate(() => document.activeElement?.id)).toBe('temperature');
    });

    it('rates the session and stores the rating', async () => {
      await page.getByRole('button', { name: 'Rate 4' }).click();
      await expect.poll(() => page.textContent('.summary .rating-status')).toBe('Thanks: rated 4.');
      expect(await page.getAttribute('[data-rating="4"]', 'aria-pressed')).toBe('true');
      const { rows } = await db.pool.query('SELECT rating FROM ratings WHERE session_id = $1', [sessionId]);
      expect(rows).toEqual([{ rating: 4 }]);
    });

    it('names the field of a refused start next to it', async () => {
      await page.fill('#max-attempts', '11');
      await page.getByRole('button', { name: 'Start' }).click();
      await expect.poll(() => page.textContent('#max-attempts-error')).toMatch(/^maxAttempts: /);
      expect(await page.getAttribute('#max-attempts', 'aria-invalid')).toBe('true');
      // Shown once, by its field: the follow-up session:error event does not repeat it.
      await page.waitForTimeout(200);
      expect(await page.isHidden('#start-error')).toBe(true);
      await page.fill('#max-attempts', '4');
    });

    it('lists the session in the history and replays it from its stored turns', async () => {
      const item = page.locator(`.history-item[data-id="${sessionId}"]`);
      await item.waitFor();
      expect(await item.locator('.history-title').textContent()).toBe(
        'Write one sentence about a dog in a park.',
      );
      await page.reload();
      await item.waitFor();
      expect(await page.locator('.attempt').count()).toBe(0);
      await item.click();
      await page.locator('.summary').waitFor();
      expect(await page.getAttribute(`.history-item[data-id="${sessionId}"]`, 'aria-current')).toBe('true');
      expect(await page.locator('.message[aria-label="Instruction"] .message-text').textContent()).toMatch(
        /^Write one sentence about a dog in a park\./,
      );
      expect(await page.locator('.attempt .attempt-text').allTextContents()).toEqual(ANSWERS);
      expect(await page.locator('.attempt .verdict').count()).toBe(6);
      expect(await page.locator('.message.feedback').count()).toBe(2);
      expect(await page.textContent('.summary h3')).toBe('All constraints met on attempt 3');
      // The replayed session's prompt and constraints can be reused for a new one.
      await page.getByRole('button', { name: 'Reuse prompt and constraints' }).click();
      expect((await chosenConstraints()).ids).toEqual(['corgi:no_repeat_ngram', 'corgi:concepts']);
      expect(await page.inputValue('#prompt')).toBe('Write one sentence about a dog in a park.');
      expect(await page.textContent('.summary .best-text')).toBe(ANSWERS[2]);
      console.log(`[web test] replay screenshot: ${await screenshot('2-replay')}`);
    });
  });

  describe('the dashboard in Chromium', () => {
    it('draws sessions per minute and success@k, and the training curves once steps exist', async () => {
      await page.goto(`${server.url}/dashboard`);
      await page.waitForSelector('body[data-loaded="true"]');
      expect(await page.title()).toContain('dashboard');
      const bars = page.locator('#chart-sessions svg rect.bar');
      expect(await bars.count()).toBe(60);
      const values = (
        await bars.evaluateAll((rects) => rects.map((r) => Number(r.getAttribute('data-value'))))
      ).reduce((sum, n) => sum + n, 0);
      expect(values).toBe(1);
      expect(
        await page.locator('#chart-success svg .series[data-series^="scripted-web"] circle').count(),
      ).toBe(4);
      expect(await page.textContent('#tile-success')).toBe('0%');
      expect(await page.textContent('#chart-reward .chart-empty')).toMatch(/No training steps yet/);

      for (const [step, reward, kl] of [
        [1, 0.2, 0.01],
        [2, 0.35, 0.02],
        [3, 0.5, 0.025],
        [4, 0.6, 0.03],
      ]) {
        await db.pool.query(
          `INSERT INTO training_steps (run_id, step, policy_version, metrics) VALUES ('run-1', $1, 'scripted-web', $2)`,
          [step, JSON.stringify({ reward, kl })],
        );
      }
      await page.reload();
      await page.waitForSelector('body[data-loaded="true"]');
      expect(await page.locator('#chart-reward svg circle').count()).toBe(4);
      expect(await page.locator('#chart-kl svg circle').count()).toBe(4);
      expect(await page.locator('#chart-reward svg path.line').count()).toBe(1);
      console.log(`[web test] dashboard screenshot: ${await screenshot('4-dashboard')}`);
    });

    it('made no request outside the server and logged no errors', () => {
      const origin = new URL(server.url).origin;
      const foreign = requested.filter((url) => !url.startsWith(origin) && !url.startsWith('data:'));
      expect(foreign).toEqual([]);
      // The refused kwargs above are an expected 400 from POST /v1/check; nothing else may fail.
      expect(consoleErrors.filter((e) => !/status of 400/.test(e))).toEqual([]);
    });
  });

  describe('a session that never meets its constraints', () => {
    it('shows the best attempt, with its score, in the result card', async () => {
      await page.goto(`${server.url}/`);
      await expect.poll(() => page.getAttribute('#connection', 'data-state')).toBe('up');
      await page.getByRole('button', { name: /^Story/ }).click();
      await page.selectOption('#checker-select', 'corgi:concepts');
      await page.locator('#kw-concepts').fill('dog, park');
      await page.getByRole('button', { name: 'Add constraint' }).click();
      await expect.poll(() => page.locator('#chosen-constraints li').count()).toBe(2);
      await page.fill('#max-attempts', '2');
      await page.getByRole('button', { name: 'Start' }).click();
      await page.locator('.summary').waitFor({ timeout: 15_000 });
      expect(await page.textContent('.summary h3')).toBe('Not all constraints met after 2 attempts');
      // Attempt 2 meets the concepts and repeats a phrase: it outscores attempt 1, which misses both.
      expect(await page.textContent('.summary .best figcaption')).toMatch(
        /^Best attempt \(2, score 0\.\d\d\)$/,
      );
      expect(await page.textContent('.summary .best-text')).toBe(ANSWERS[1]);
    });
  });
});
