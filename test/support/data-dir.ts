/** A test file's own `$CORGI_DATA_DIR`: the default policy loader caches converted GGUF files there. */
import { afterAll, beforeAll } from 'vitest';

/** Points `CORGI_DATA_DIR` at `dir` for the test file (from its first hook) and restores it after. */
export function useDataDir(dir: string): void {
  let previous: string | undefined;
  beforeAll(() => {
    previous = process.env.CORGI_DATA_DIR;
    process.env.CORGI_DATA_DIR = dir;
  });
  afterAll(() => {
    if (previous === undefined) delete process.env.CORGI_DATA_DIR;
    else process.env.CORGI_DATA_DIR = previous;
  });
}
