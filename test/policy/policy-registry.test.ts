import { describe, expect, it } from 'vitest';
import { PolicyRegistry } from '../../src/policy/policy-registry.ts';
import { ScriptedPolicy } from '../support/scripted-policy.ts';

class DisposableScripted extends ScriptedPolicy {
  disposed = 0;
  dispose(): void {
    this.disposed++;
  }
}

describe('PolicyRegistry', () => {
  it('lets an attempt in flight finish on its version and disposes that version afterwards', async () => {
    const v1 = new DisposableScripted(['one two three'], 'v1', 5);
    const v2 = new DisposableScripted(['four'], 'v2');
    const registry = new PolicyRegistry(v1);
    const swaps: string[] = [];
    registry.onSwap((version) => swaps.push(version));

    const stream = registry.current().generate([{ role: 'user', content: 'x' }]);
    const first = await stream.next();
    expect(first.value).toMatchObject({ text: 'one ' });

    await registry.swap(v2);
    expect(registry.version).toBe('v2');
    expect(registry.current().version).toBe('v2');
    expect(swaps).toEqual(['v2']);
    expect(v1.disposed).toBe(0); // still generating

    let rest = '';
    for (;;) {
      const next = await stream.next();
      if (next.done) {
        expect(next.value.text).toBe('one two three');
        break;
      }
      rest += next.value.text;
    }
    expect(rest).toBe('two three');
    expect(v1.disposed).toBe(1);
    expect(v2.disposed).toBe(0);
  });

  it('disposes an idle version at once', async () => {
    const v1 = new DisposableScripted(['a'], 'v1');
    const registry = new PolicyRegistry(v1);
    await registry.swap(new DisposableScripted(['b'], 'v2'));
    expect(v1.disposed).toBe(1);
  });
});
