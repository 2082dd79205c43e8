/**
 * The import directions of docs/architecture.md, checked on the code: every import in src/ (static,
 * `export … from`, and dynamic `import()`, type-only ones included, as TypeScript's own pre-processor
 * finds them) must go from a folder to one its row in the "Folders" table allows, the folders must
 * not import each other in a cycle, and every allowed direction must be one the code really takes,
 * so the page draws the imports as they are.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const SRC = join(ROOT, 'src');

/** The folder a source file belongs to: its top folder under src/, `training/<part>` inside training/. */
function folderOf(file: string): string {
  const parts = relative(SRC, file).split('/');
  if (parts.length === 1) return 'index.ts';
  if (parts[0] === 'training' && parts.length > 2) return `training/${parts[1]}`;
  return parts[0];
}

interface Import {
  from: string;
  to: string;
  /** `src/db/sessions.ts:9 → src/session/session-runner.ts` */
  where: string;
}

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(path);
    return /\.(ts|mts|mjs|js)$/.test(entry.name) ? [path] : [];
  });
}

/** Every relative import in src/, between two different folders. */
function crossFolderImports(): Import[] {
  const imports: Import[] = [];
  for (const file of sourceFiles(SRC)) {
    const text = readFileSync(file, 'utf8');
    const { importedFiles } = ts.preProcessFile(text, true, true);
    for (const { fileName, pos } of importedFiles) {
      if (!fileName.startsWith('.')) continue;
      const target = resolve(dirname(file), fileName);
      const from = folderOf(file);
      const to = folderOf(target);
      if (from === to) continue;
      const line = text.slice(0, pos).split('\n').length;
      imports.push({ from, to, where: `${relative(ROOT, file)}:${line} → ${relative(ROOT, target)}` });
    }
  }
  return imports;
}

/** docs/architecture.md's "Folders" table: folder → the folders it may import. */
function allowedDirections(): Map<string, Set<string>> {
  const page = readFileSync(join(ROOT, 'docs', 'architecture.md'), 'utf8');
  const section = page.split(/^## /m).find((part) => part.startsWith('Folders'));
  if (!section) throw new Error('docs/architecture.md has no "## Folders" section');
  const allowed = new Map<string, Set<string>>();
  for (const [, folder, imports] of section.matchAll(/^\| `src\/([^`]+?)\/?` \|[^|]*\| ([^|]*) \|$/gm)) {
    const names = [...imports.matchAll(/`([^`]+)`/g)].map(([, name]) => name);
    allowed.set(folder, new Set(names));
  }
  return allowed;
}

/** One cycle in a directed graph, as its nodes in order, or null. */
function findCycle(graph: Map<string, Set<string>>): string[] | null {
  const state = new Map<string, 'open' | 'done'>();
  const path: string[] = [];
  const visit = (node: string): string[] | null => {
    state.set(node, 'open');
    path.push(node);
    for (const next of [...(graph.get(node) ?? [])].sort()) {
      if (state.get(next) === 'open') return [...path.slice(path.indexOf(next)), next];
      if (!state.has(next)) {
        const cycle = visit(next);
        if (cycle) return cycle;
      }
    }
    path.pop();
    state.set(node, 'done');
    return null;
  };
  for (const node of [...graph.keys()].sort()) {
    if (state.has(node)) continue;
    const cycle = visit(node);
    if (cycle) return cycle;
  }
  return null;
}

describe('the architecture (docs/architecture.md)', () => {
  const imports = crossFolderImports();
  const allowed = allowedDirections();

  it('finds the imports it checks', () => {
    expect(imports.length).toBeGreaterThan(100);
    expect(allowed.size).toBeGreaterThan(10);
  });

  it('names every folder of src/ in its table', () => {
    const folders = new Set(sourceFiles(SRC).map(folderOf));
    const missing = [...folders].filter((folder) => !allowed.has(folder)).sort();
    expect(missing, 'folders in src/ without a row in docs/architecture.md').toEqual([]);
    const gone = [...allowed.keys()].filter((folder) => !folders.has(folder)).sort();
    expect(gone, 'rows in docs/architecture.md for folders src/ does not have').toEqual([]);
  });

  it('has every import go in an allowed direction', () => {
    const forbidden = imports
      .filter(({ from, to }) => !allowed.get(from)?.has(to))
      .map(({ from, to, where }) => `${where} (${from} → ${to} is not allowed)`);
    expect(forbidden).toEqual([]);
  });

  it('has no cycle between folders', () => {
    const graph = new Map<string, Set<string>>();
    for (const { from, to } of imports) graph.set(from, (graph.get(from) ?? new Set()).add(to));
    const cycle = findCycle(graph);
    const explained = cycle?.slice(1).map((to, i) => {
      const from = cycle[i];
      return imports.find((edge) => edge.from === from && edge.to === to)?.where;
    });
    expect(explained ?? [], `a cycle: ${cycle?.join(' → ')}`).toEqual([]);
    expect(findCycle(allowed), 'the allowed directions themselves form a cycle').toBeNull();
  });

  it('allows only directions the code takes, so the page shows the imports as they are', () => {
    const taken = new Set(imports.map(({ from, to }) => `${from} → ${to}`));
    const unused = [...allowed].flatMap(([from, tos]) =>
      [...tos].filter((to) => !taken.has(`${from} → ${to}`)).map((to) => `${from} → ${to}`),
    );
    expect(unused, 'allowed in docs/architecture.md but imported nowhere: remove them').toEqual([]);
  });

  it('reads the environment only in the command layer, where the exceptions say why', () => {
    // Files outside src/cli/ that mention process.env, and why each may.
    const exceptions: Record<string, string> = {
      'src/model/store/pypi-download.ts': "passes this process's environment on to pip",
      'src/training/lm/train.ts': "passes this process's environment on to its gradient worker",
      'src/training/background/trainer-worker.ts': "builds its child's environment from this one",
      'src/server/security-flags.ts': "defines corgi serve's flags, whose defaults are variables",
      'src/policy/remote-policy.ts': "an OpenAI-compatible client's API key, by the SDKs' convention",
      'src/langchain/corgi-chat-model.ts': "LangChain's convention: a model's defaults from the environment",
    };
    const reading = sourceFiles(SRC)
      .map((file) => relative(ROOT, file))
      .filter((file) => !file.startsWith('src/cli/'))
      .filter((file) => readFileSync(join(ROOT, file), 'utf8').includes('process.env'));
    expect(reading.sort()).toEqual(Object.keys(exceptions).sort());
  });
});
