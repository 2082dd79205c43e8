#!/usr/bin/env node
// The `corgi` bin runs the TypeScript sources directly through tsx, so `npx corgi` works right
// after `npm ci` with no build step.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../src/cli.ts');
await main(process.argv);
