/**
 * CPython's Mersenne Twister as src/text/python-random.ts reproduces it (langdetect's seeded draws
 * depend on it). Expected values from Python 3.11: `random.Random(seed).random()`.
 */
import { describe, expect, it } from 'vitest';
import { PythonRandom } from '../../src/text/python-random.ts';

describe("CPython's random.Random", () => {
  it.each([
    [0, [0.8444218515250481, 0.7579544029403025, 0.420571580830845]],
    [1, [0.13436424411240122, 0.8474337369372327, 0.763774618976614]],
    // Seeds past 32 bits are split into 32-bit words, as init_by_array does.
    [12345678901, [0.9460118159397316, 0.3279999559233737, 0.3837905031006764]],
  ])('seed %i draws what Python draws', (seed, expected) => {
    const random = new PythonRandom(seed);
    expect([random.random(), random.random(), random.random()]).toEqual(expected);
  });

  it('stays in step past the first block of 624 words', () => {
    const random = new PythonRandom(0);
    for (let i = 0; i < 1000; i++) random.random();
    expect(random.random()).toBe(0.9466893945947962);
  });
});
