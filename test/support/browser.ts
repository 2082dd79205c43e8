/**
 * The one way tests launch a real browser: Debian's Chromium driven by playwright-core. Where it is
 * missing, browser tests skip with the install command, unless the run must cover them (`CI`, or
 * `CORGI_REQUIRE_BROWSER=1`), where a missing browser fails them.
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type BrowserContext, chromium, type Page } from 'playwright-core';
import { describe } from 'vitest';

/** Where the browser is expected. @default process.env.CHROMIUM_PATH ?? "/usr/bin/chromium" */
export const CHROMIUM_PATH = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

/** The command that installs it on Debian (what `.ci/run` does). */
export const INSTALL_COMMAND = 'apt-get install -y chromium';

const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
];

/** Whether a missing browser fails the browser tests instead of skipping them. */
export function isBrowserRequired(env: NodeJS.ProcessEnv = process.env): boolean {
  const ci = env.CI !== undefined && env.CI !== '' && env.CI !== 'false' && env.CI !== '0';
  return ci || env.CORGI_REQUIRE_BROWSER === '1';
}

/** The reason browser tests skip here, or null when they run (the browser exists or is required). */
export function browserSkipReason(env: NodeJS.ProcessEnv = process.env): string | null {
  if (existsSync(CHROMIUM_PATH) || isBrowserRequired(env)) return null;
  return (
    `Chromium not found at ${CHROMIUM_PATH}: run \`${INSTALL_COMMAND}\` (or set CHROMIUM_PATH) ` +
    'to run the browser tests; CI=1 or CORGI_REQUIRE_BROWSER=1 makes a missing browser fail them'
  );
}

/**
 * `describe` for a suite that needs the browser: skipped, with the reason in its name and on stderr,
 * where Chromium is missing and not required.
 */
export function describeInBrowser(name: string, body: () => void): void {
  const reason = browserSkipReason();
  if (reason) {
    console.warn(`[browser tests skipped] ${reason}`);
    describe.skip(`${name} (skipped: ${reason})`, body);
    return;
  }
  describe(name, body);
}

export interface LaunchedBrowser {
  context: BrowserContext;
  page: Page;
  /** Closes the browser and removes its profile directory. */
  close(): Promise<void>;
}

/**
 * Launches headless Chromium with a fresh profile.
 * @throws naming the path and the install command when the browser is missing
 */
export async function launchBrowser(
  options: { viewport?: { width: number; height: number } } = {},
): Promise<LaunchedBrowser> {
  if (!existsSync(CHROMIUM_PATH)) {
    throw new Error(
      `Chromium not found at ${CHROMIUM_PATH}, and this run requires the browser tests (CI or ` +
        `CORGI_REQUIRE_BROWSER=1): run \`apt-get update && ${INSTALL_COMMAND}\`, or set CHROMIUM_PATH.`,
    );
  }
  const userDataDir = mkdtempSync(join(tmpdir(), 'corgi-chromium-'));
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM_PATH,
    headless: true,
    args: CHROMIUM_ARGS,
    viewport: options.viewport ?? { width: 1280, height: 900 },
    colorScheme: 'light',
  });
  const page = context.pages()[0] ?? (await context.newPage());
  return {
    context,
    page,
    async close() {
      await context.close();
      rmSync(userDataDir, { recursive: true, force: true });
    },
  };
}
