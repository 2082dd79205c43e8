import { describe, expect, it } from 'vitest';
import { ConstraintError } from '../../src/checkers/errors.ts';
import { CorgiError } from '../../src/common/errors.ts';
import { GgufError } from '../../src/model/gguf/errors.ts';
import { ModelStoreError } from '../../src/model/store/model-store-error.ts';
import { HttpError } from '../../src/server/http-error.ts';

describe('CorgiError', () => {
  it('gives each error its class name, code, message and cause', () => {
    const cause = new Error('disk');
    const error = new GgufError('truncated', 'tensor x: runs past the end', { cause });
    expect(error).toBeInstanceOf(Error);
    expect(error.name).toBe('GgufError');
    expect(error.code).toBe('truncated');
    expect(error.message).toBe('tensor x: runs past the end');
    expect(error.cause).toBe(cause);
    expect(String(error)).toBe('GgufError: tensor x: runs past the end');
  });

  it('isInstance matches the class it is called on and its bases, not siblings', () => {
    const error = new ConstraintError('constraints[0].id', 'unknown checker');
    expect(ConstraintError.isInstance(error)).toBe(true);
    expect(CorgiError.isInstance(error)).toBe(true);
    expect(GgufError.isInstance(error)).toBe(false);
    expect(HttpError.isInstance(new HttpError(404, 'not_found', 'no such session'))).toBe(true);
    expect(CorgiError.isInstance(new Error('plain'))).toBe(false);
    expect(CorgiError.isInstance(null)).toBe(false);
    expect(CorgiError.isInstance('ModelStoreError')).toBe(false);
  });

  it('isInstance recognises an error from another copy of the module, where instanceof fails', async () => {
    // A query string makes the loader evaluate the module a second time: a distinct class.
    const path: string = '../../src/model/store/model-store-error.ts?copy';
    const copy = (await import(/* @vite-ignore */ path)) as {
      ModelStoreError: typeof ModelStoreError;
    };
    expect(copy.ModelStoreError).not.toBe(ModelStoreError);
    const foreign = new copy.ModelStoreError('network', 'no source could be reached');
    expect(foreign instanceof ModelStoreError).toBe(false);
    expect(ModelStoreError.isInstance(foreign)).toBe(true);
    expect(CorgiError.isInstance(foreign)).toBe(true);
    expect(GgufError.isInstance(foreign)).toBe(false);
  });
});
