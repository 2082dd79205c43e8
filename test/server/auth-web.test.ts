/**
 * The web front end on a server that requires API keys, in a real headless Chromium: the page asks
 * for a key when the API refuses it, keeps it in localStorage (not in the address bar), then loads,
 * connects and runs a session under that key — with helmet's Content-Security-Policy in force.
 */
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createApiKey } from '../../src/db/api-keys.ts';
import type { Database } from '../../src/db/database.ts';
import { fixedPolicy } from '../../src/policy/types.ts';
import { type RunningServer, startServer } from '../../src/server/server.ts';
import { describeInBrowser, type LaunchedBrowser, launchBrowser } from '../support/browser.ts';
import { openTestDatabase } from '../support/database.ts';
import { ScriptedPolicy } from '../support/scripted-policy.ts';

describeInBrowser('the writing page on a server that requires keys', () => {
  let db: Database;
  let server: RunningServer;
  let base: string;
  let browser: LaunchedBrowser;
  let page: Page;
  const consoleErrors: string[] = [];
  const dialogs: string[] = [];

  beforeAll(async () => {
    // First, so a required but missing browser fails the run before anything starts.
    browser = await launchBrowser();
    db = await openTestDatabase();
    // Bound beyond loopback: keys are required. The browser reaches it on 127.0.0.1.
    server = await startServer({
      db,
      policy: fixedPolicy(new ScriptedPolicy(['A dog sat in the park.'], 'scripted-keyed', 5)),
      port: 0,
      host: '0.0.0.0',
    });
    base = `http://127.0.0.1:${server.port}`;
    page = browser.page;
    page.on('console', (message) => {
      if (message.type() === 'error') consoleErrors.push(message.text());
    });
    page.on('pageerror', (error) => consoleErrors.push(String(error)));
  });

  afterAll(async () => {
    await browser?.close();
    await server?.close();
    await db?.close();
  });

  it('asks for a key, keeps it out of the address bar, and then works under it', async () => {
    const { id, key } = await createApiKey(db.pool, { name: 'browser' });
    page.on('dialog', (dialog) => {
      dialogs.push(dialog.message());
      void dialog.accept(key);
    });
    await page.goto(`${base}/`);
    await expect.poll(() => dialogs.length).toBeGreaterThan(0);
    expect(dialogs[0]).toMatch(/API key/);

    // After the reload: the key is stored, stripped from the URL, and used by fetch and socket.io.
    await expect.poll(() => page.getAttribute('#connection', 'data-state'), { timeout: 15_000 }).toBe('up');
    await expect.poll(() => page.locator('#checker-select option').count()).toBeGreaterThan(1);
    // The page fetches /v1/policy on its own schedule: wait for it, as the browser test does.
    await expect.poll(() => page.textContent('#policy-version')).toBe('policy scripted-keyed');
    expect(new URL(page.url()).searchParams.has('key')).toBe(false);
    expect(await page.evaluate(() => localStorage.getItem('corgi.apiKey'))).toBe(key);
    expect(dialogs).toHaveLength(1);

    await page.getByRole('button', { name: /^Story/ }).click();
    await page.fill('#prompt', 'Write about a dog.');
    await page.getByRole('button', { name: 'Start' }).click();
    await page.locator('.summary').waitFor({ timeout: 15_000 });
    const sessionId = await page.getAttribute('.summary', 'data-session-id');
    const { rows } = await db.pool.query('SELECT api_key_id FROM sessions WHERE id = $1', [sessionId]);
    expect(rows).toEqual([{ api_key_id: id }]);

    // Nothing the page loads or runs is blocked by the security headers.
    expect(consoleErrors.filter((text) => !/401|Unauthorized/.test(text))).toEqual([]);
  });
});
