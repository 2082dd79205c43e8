/**
 * One process at a time on an embedded (PGlite) data directory. PGlite has no lock of its own: two
 * processes opening the same directory each get their own copy of the database in memory, do not
 * see each other's writes and overwrite each other's files (measured: two processes inserting one
 * row each both counted one). So the first process to open a directory writes its pid into
 * `corgi.pid` there, and any other live process is refused with a message saying what to do
 * instead. Opening it again in the same process is allowed (counted), as before.
 */
import { readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const held = new Map<string, number>();

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: the process exists but belongs to someone else.
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Claims `dataDir` for this process, or throws when another live process holds it. Returns the
 * release function (call it once, when the database is closed).
 */
export function lockEmbeddedDatabase(dataDir: string): () => void {
  const file = join(dataDir, 'corgi.pid');
  const count = held.get(file) ?? 0;
  if (count === 0) {
    let owner: number | undefined;
    try {
      writeFileSync(file, String(process.pid), { flag: 'wx' });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      owner = Number(readFileSync(file, 'utf8').trim());
    }
    if (owner !== undefined) {
      if (Number.isInteger(owner) && owner !== process.pid && isAlive(owner)) {
        throw new Error(
          `the embedded database in ${dataDir} is open in process ${owner} (a running \`corgi serve\`?), and ` +
            'PGlite cannot be shared between processes. Stop that process, point DATABASE_URL at a PostgreSQL ' +
            'server, or go through the running server (e.g. `corgi keys create --name N --server http://127.0.0.1:3000`).',
        );
      }
      // Left behind by a process that died (or by this one): take it over.
      writeFileSync(file, String(process.pid));
    }
  }
  held.set(file, count + 1);
  let released = false;
  return () => {
    if (released) return;
    released = true;
    const left = (held.get(file) ?? 1) - 1;
    if (left > 0) {
      held.set(file, left);
      return;
    }
    held.delete(file);
    try {
      unlinkSync(file);
    } catch {
      // Already gone (the directory was removed): nothing to release.
    }
  };
}
