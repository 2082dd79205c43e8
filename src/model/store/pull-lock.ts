/**
 * One pull per name at a time: a server's background pull of the default model and a `corgi pull`
 * of the same name would otherwise write the same partial file.
 */
import { mkdir, open, readFile, rm, rmdir } from 'node:fs/promises';
import { join } from 'node:path';
import { partialDir } from './manifest.ts';
import { ModelStoreError } from './model-store-error.ts';

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Takes `.partial/<name>/pull.lock` (holding this process's pid), taking over a lock whose process
 * is gone, and returns its release.
 * @throws ModelStoreError `invalid_input` when a live process holds it
 */
export async function lockPull(dataDir: string, name: string): Promise<() => Promise<void>> {
  const dir = partialDir(dataDir, name);
  await mkdir(dir, { recursive: true });
  const path = join(dir, 'pull.lock');
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const handle = await open(path, 'wx');
      await handle.writeFile(String(process.pid));
      await handle.close();
      return async () => {
        await rm(path, { force: true });
        // An empty `.partial/<name>` goes too; one holding a download stays for the next pull.
        await rmdir(dir).catch(() => {});
      };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      const holder = Number(await readFile(path, 'utf8').catch(() => ''));
      if (Number.isInteger(holder) && holder > 0 && holder !== process.pid && isAlive(holder)) {
        throw new ModelStoreError(
          'invalid_input',
          `${name}: another pull (process ${holder}) is under way; wait for it`,
        );
      }
      if (holder === process.pid) {
        throw new ModelStoreError(
          'invalid_input',
          `${name}: a pull of it is already under way in this process`,
        );
      }
      await rm(path, { force: true });
    }
  }
  throw new ModelStoreError('invalid_input', `${name}: could not take the pull lock at ${path}`);
}
