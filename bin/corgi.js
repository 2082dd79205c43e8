#!/usr/bin/env node
// The `corgi` bin runs the built JavaScript in dist/ (built by `prepare` on `npm ci`, and by `npm pack`)
// when it is at least as new as every source file; otherwise (sources edited since, or no build) it
// runs the TypeScript sources through tsx, so `npx corgi` always runs the code as it is now.
import { existsSync, readdirSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const built = `${root}dist/cli/main.js`;

/** The newest modification time under `dir`, in ms. */
function newestMtime(dir) {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = `${dir}/${entry.name}`;
    newest = Math.max(newest, entry.isDirectory() ? newestMtime(path) : statSync(path).mtimeMs);
  }
  return newest;
}

function isBuildFresh() {
  if (process.env.CORGI_FROM_SOURCE === '1' || !existsSync(built)) return false;
  return !existsSync(`${root}src`) || statSync(built).mtimeMs >= newestMtime(`${root}src`);
}

let main;
if (isBuildFresh()) {
  ({ main } = await import(built));
} else {
  const { register } = await import('tsx/esm/api');
  register();
  ({ main } = await import('../src/cli/main.ts'));
}
await main(process.argv);
