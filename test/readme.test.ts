import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { updatedCheckerDocs } from '../scripts/checker-docs.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const README = join(ROOT, 'README.md');
const DOCS = join(ROOT, 'docs');

/** README and every markdown page under docs/, as absolute paths. */
function listPages(): string[] {
  const pages = [README];
  const walk = (dir: string) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) walk(path);
      else if (entry.name.endsWith('.md')) pages.push(path);
    }
  };
  walk(DOCS);
  return pages;
}

/** The code and its comments: every source file under src/, scripts/, bench/, test/, web/ and bin/. */
function listSources(): string[] {
  const sources: string[] = [];
  const walk = (dir: string) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) walk(path);
      else if (/\.(ts|js|mjs|cjs|py|html|css|sh)$/.test(entry.name)) sources.push(path);
    }
  };
  for (const dir of ['src', 'scripts', 'bench', 'test', 'web', 'bin']) walk(join(ROOT, dir));
  // This file names the phrases it looks for.
  return sources.filter((path) => path !== fileURLToPath(import.meta.url));
}

/** GitHub's anchor for a heading: lowercase, punctuation dropped, spaces to hyphens. */
function slugify(heading: string): string {
  return heading
    .toLowerCase()
    .replace(/[^\p{L}\p{N} _-]/gu, '')
    .replace(/ /g, '-');
}

/** The anchors a markdown page offers, one per heading. */
function listAnchors(page: string): Set<string> {
  const headings = readFileSync(page, 'utf8').matchAll(/^#{1,6} (.+)$/gm);
  return new Set([...headings].map(([, text]) => slugify(text)));
}

describe('README and docs', () => {
  it('document every checker exactly as the registry behaves (run `npm run docs:checkers -- --write`)', () => {
    const page = readFileSync(join(DOCS, 'checkers.md'), 'utf8');
    expect(updatedCheckerDocs(page)).toBe(page);
  });

  it('give the two quick-start commands', () => {
    const readme = readFileSync(README, 'utf8');
    expect(readme).toContain('npm ci && npm start');
    expect(readme).toContain('npm ci && npm test');
  });

  it('keep README to at most 300 lines', () => {
    expect(readFileSync(README, 'utf8').trimEnd().split('\n').length).toBeLessThanOrEqual(300);
  });

  it('link only to files and headings that exist', () => {
    const broken: string[] = [];
    for (const page of listPages()) {
      const text = readFileSync(page, 'utf8').replace(/```[\s\S]*?```/g, '');
      for (const [, target] of text.matchAll(/\]\(([^)\s]+)\)/g)) {
        if (/^[a-z]+:/i.test(target)) continue;
        const [file, anchor] = target.split('#');
        const path = file ? join(dirname(page), file) : page;
        const missing =
          !existsSync(path) ||
          (anchor !== undefined && path.endsWith('.md') && !listAnchors(path).has(anchor));
        if (missing) broken.push(`${relative(ROOT, page)} → ${target}`);
      }
    }
    expect(broken).toEqual([]);
  });

  it('speak of the product, not of how it was developed; so do the code and its comments', () => {
    const history = /\b(session|issue) \d+\b|left to try|next lever|DESIGN\.md/i;
    const found = [...listPages(), ...listSources()].flatMap((page) =>
      readFileSync(page, 'utf8')
        .split('\n')
        .map((line, index) => ({ line, where: `${relative(ROOT, page)}:${index + 1}` }))
        .filter(({ line }) => history.test(line))
        .map(({ line, where }) => `${where}: ${line.trim()}`),
    );
    expect(found).toEqual([]);
  });
});
