import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { updatedReadme } from '../scripts/checker-docs.ts';

const README = fileURLToPath(new URL('../README.md', import.meta.url));

describe('README', () => {
  it('documents every checker exactly as the registry behaves (run `npm run docs:checkers -- --write`)', () => {
    const readme = readFileSync(README, 'utf8');
    expect(updatedReadme(readme)).toBe(readme);
  });

  it('gives the two quick-start commands', () => {
    const readme = readFileSync(README, 'utf8');
    expect(readme).toContain('npm ci && npm start');
    expect(readme).toContain('npm ci && npm test');
  });
});
