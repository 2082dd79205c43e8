import { describe, expect, it } from 'vitest';
import { spareContextFromEnv } from '../../src/cli/command-env.ts';

describe('spareContextFromEnv', () => {
  it('is on unless CORGI_SPARE_CONTEXT says off', () => {
    expect(spareContextFromEnv({})).toBe(true);
    for (const value of ['on', '1', 'true', ' ON '])
      expect(spareContextFromEnv({ CORGI_SPARE_CONTEXT: value })).toBe(true);
    for (const value of ['off', '0', 'false', 'Off'])
      expect(spareContextFromEnv({ CORGI_SPARE_CONTEXT: value })).toBe(false);
  });

  it('refuses any other value, naming the variable', () => {
    expect(() => spareContextFromEnv({ CORGI_SPARE_CONTEXT: 'maybe' })).toThrow(
      /CORGI_SPARE_CONTEXT must be on or off .*"maybe"/,
    );
  });
});
