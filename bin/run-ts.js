#!/usr/bin/env node
import { resolve } from 'node:path';
// Runs a TypeScript entry point (benchmarks, scripts) through tsx: `node bin/run-ts.js bench/x.ts`.
import { pathToFileURL } from 'node:url';
import { register } from 'tsx/esm/api';

register();
const [entry, ...rest] = process.argv.slice(2);
if (!entry) {
  console.error('usage: node bin/run-ts.js <file.ts> [args...]');
  process.exit(2);
}
process.argv = [process.argv[0], resolve(entry), ...rest];
await import(pathToFileURL(resolve(entry)).href);
