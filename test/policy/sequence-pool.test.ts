import { describe, expect, it } from 'vitest';
import { SequencePool, SlotWaitAborted } from '../../src/policy/sequence-pool.ts';

describe('SequencePool', () => {
  it('hands out free slots, then serves waiters first come first served', async () => {
    const pool = new SequencePool(['a', 'b']);
    expect([await pool.acquire(), await pool.acquire()]).toEqual(['a', 'b']);
    const order: string[] = [];
    const first = pool.acquire().then((slot) => order.push(`first:${slot}`));
    const second = pool.acquire().then((slot) => order.push(`second:${slot}`));
    expect(pool.load).toEqual({ busy: 2, waiting: 2, free: 0 });
    pool.release('b');
    pool.release('a');
    await Promise.all([first, second]);
    expect(order).toEqual(['first:b', 'second:a']);
  });

  it('lets an aborted waiter leave the queue without taking a slot', async () => {
    const pool = new SequencePool(['a']);
    await pool.acquire();
    const controller = new AbortController();
    const leaving = pool.acquire(controller.signal);
    const staying = pool.acquire();
    controller.abort();
    await expect(leaving).rejects.toBeInstanceOf(SlotWaitAborted);
    expect(pool.load.waiting).toBe(1);
    pool.release('a');
    await expect(staying).resolves.toBe('a');
  });

  it('refuses an already aborted signal and fails waiters when closed', async () => {
    const pool = new SequencePool(['a']);
    await expect(pool.acquire(AbortSignal.abort())).rejects.toThrow(/aborted before/);
    await pool.acquire();
    const waiting = pool.acquire();
    pool.close();
    await expect(waiting).rejects.toThrow(/closed/);
    await expect(pool.acquire()).rejects.toThrow(/closed/);
  });
});
