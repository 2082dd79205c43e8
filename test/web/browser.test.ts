/**
 * The web front end in a real headless Chromium (Debian's `chromium` driven by playwright-core),
 * against a real server with a scripted policy and the real PostgreSQL: a whole session is driven
 * through the page (constraints picked from a preset and from a generated form, streaming,
 * verdicts, feedback, summary, rating, history replay), then the dashboard. Screenshots go to a
 * temp directory whose path is printed.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type BrowserContext, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Database } from '../../src/db/database.ts';
import { fixedPolicy } from '../../src/policy/types.ts';
import { type RunningServer, startServer } from '../../src/server/server.ts';
import { openTestDatabase } from '../support/database.ts';
import { ScriptedPolicy } from '../support/scripted-policy.ts';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
];

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

let db: Database;
let server: RunningServer;
let context: BrowserContext;
let page: Page;
let userDataDir: string;
const screenshotDir = mkdtempSync(join(tmpdir(), 'corgi-web-'));
/** Every URL the page asked for: none may leave the server's origin. */
const requested: string[] = [];
const consoleErrors: string[] = [];

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) {
    throw new Error(
      `Chromium not found at ${CHROMIUM}. The browser tests need the Debian package: ` +
        'run `apt-get update && apt-get install -y chromium` (CI installs it), or set CHROMIUM_PATH.',
    );
  }
  db = await openTestDatabase();
  server = await startServer({
    db,
    policy: fixedPolicy(new ScriptedPolicy(ANSWERS, 'scripted-web', TOKEN_DELAY_MS)),
    port: 0,
  });
  userDataDir = mkdtempSync(join(tmpdir(), 'corgi-chromium-'));
  context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM,
    headless: true,
    args: CHROMIUM_ARGS,
    viewport: { width: 1440, height: 900 },
    colorScheme: 'light',
  });
  page = context.pages()[0] ?? (await context.newPage());
  page.on('request', (request) => requested.push(request.url()));
  page.on('console', (message) => {
    if (message.type() === 'error') consoleErrors.push(message.text());
  });
  page.on('pageerror', (error) => consoleErrors.push(String(error)));
  console.log(`[web test] screenshots in ${screenshotDir}`);
});

afterAll(async () => {
  await context?.close();
  await server?.close();
  await db?.close();
  if (userDataDir) rmSync(userDataDir, { recursive: true, force: true });
});

/** Takes a full-page screenshot and checks it is a real, non-trivial PNG. */
async function screenshot(name: string): Promise<string> {
  const path = join(screenshotDir, `${name}.png`);
  await page.screenshot({ path, fullPage: true });
  const png = readFileSync(path);
  expect(png.subarray(1, 4).toString('ascii')).toBe('PNG');
  // IHDR: width and height, big-endian, at bytes 16..24.
  expect(png.readUInt32BE(16)).toBeGreaterThan(300);
  expect(png.readUInt32BE(20)).toBeGreaterThan(300);
  expect(png.length).toBeGreaterThan(20_000);
  return path;
}

describe('the writing page in Chromium', () => {
  let sessionId: string;

  it('drives a whole session: preset + generated form, streaming, verdicts, feedback, summary', async () => {
    await page.goto(`${server.url}/`);
    await expect.poll(() => page.locator('#checker-select option').count()).toBeGreaterThan(1);
    await expect.poll(() => page.textContent('#policy-version')).toBe('policy scripted-web');
    await expect.poll(() => page.getAttribute('#connection', 'data-state')).toBe('up');

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
    expect(await page.locator('#chosen-constraints li code').allTextContents()).toEqual([
      'corgi:no_repeat_ngram',
      'corgi:concepts',
    ]);

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
    await page.getByRole('button', { name: 'Start' }).click();

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
    expect(await attempts.nth(0).locator('.verdict-feedback').first().textContent()).toBeTruthy();
    const feedback = await page.locator('.message.feedback .message-text').allTextContents();
    expect(feedback).toHaveLength(2);
    expect(feedback[0]).toMatch(/^Feedback: .+ Please try again\.$/);
    expect(await page.textContent('.summary h3')).toBe('All constraints met on attempt 3');
    expect(await page.textContent('.summary .meta')).toContain('best score 1.00');
    sessionId = (await page.getAttribute('.summary', 'data-session-id'))!;
    expect(sessionId).toMatch(/^[0-9a-f-]{36}$/);
    console.log(`[web test] session screenshot: ${await screenshot('1-session')}`);
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
    expect(await page.locator('#chosen-constraints li code').allTextContents()).toEqual([
      'corgi:no_repeat_ngram',
      'corgi:concepts',
    ]);
    expect(await page.inputValue('#prompt')).toBe('Write one sentence about a dog in a park.');
    console.log(`[web test] replay screenshot: ${await screenshot('2-replay')}`);

    // Narrow screens stack the panels.
    await page.setViewportSize({ width: 420, height: 900 });
    console.log(`[web test] mobile screenshot: ${await screenshot('3-mobile')}`);
    await page.setViewportSize({ width: 1440, height: 900 });
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
    expect(await page.locator('#chart-success svg .series[data-series^="scripted-web"] circle').count()).toBe(
      4,
    );
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
        [step, JSON.stringify({ 'reward/mean': reward, kl })],
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
