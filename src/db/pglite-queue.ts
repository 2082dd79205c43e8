/**
 * Several connections to the embedded database without their messages interleaving.
 *
 * pglite-socket (0.2.17) serves every connection from PGlite's one backend session, one protocol
 * message at a time, first come first served, except that a connection inside an explicit
 * transaction keeps the backend until it ends. An extended-protocol query is several messages
 * (Parse, Bind, Describe, Execute, then Sync), and when two connections' messages wait in the queue
 * together (one connection was holding the backend in a transaction, or the event loop stalled while
 * both wrote) the next message may be the other connection's Parse, which replaces the unnamed
 * statement the first one's Bind is about to use: "bind message supplies 2 parameters, but prepared
 * statement "" requires 1", or a silently wrong result (test/db/pglite-queue.test.ts reproduces it).
 *
 * `SequencedQueryQueue` is a drop-in replacement for its queue that also keeps the backend with a
 * connection from the first message of an extended-protocol query to its Sync, so one connection's
 * query always runs whole. With it a second process (the background trainer `corgi serve` starts)
 * can use the embedded database through the socket beside the server's own pool.
 */
import type { PGlite } from '@electric-sql/pglite';
import type { PGLiteSocketServer } from '@electric-sql/pglite-socket';

/** Extended-protocol messages that leave a query unfinished until the Sync ('S'). */
const MID_QUERY = new Set(['P', 'B', 'D', 'E', 'C', 'H'].map((c) => c.charCodeAt(0)));
/** Sync: ends an extended-protocol query (the backend answers ReadyForQuery). */
const SYNC = new Uint8Array([0x53, 0, 0, 0, 4]);

interface Queued {
  handlerId: number;
  message: Uint8Array;
  onData: (data: Uint8Array) => void;
  resolve: (bytes: number) => void;
  reject: (error: unknown) => void;
}

/** The queue pglite-socket's handlers call (its QueryQueueManager's public methods). */
export class SequencedQueryQueue {
  private queue: Queued[] = [];
  private processing = false;
  /** The connection whose message ran last. */
  private lastHandlerId: number | null = null;
  /** True while that connection is between the first message of a query and its Sync. */
  private midQuery = false;

  constructor(private readonly db: PGlite) {}

  enqueue(handlerId: number, message: Uint8Array, onData: (data: Uint8Array) => void): Promise<number> {
    return new Promise((resolve, reject) => {
      this.queue.push({ handlerId, message, onData, resolve, reject });
      if (!this.processing) void this.processQueue();
    });
  }

  /** The connection that must go next (mid-query, or inside a transaction), or null for anyone. */
  private owner(): number | null {
    if (this.lastHandlerId === null) return null;
    return this.midQuery || this.db.isInTransaction() ? this.lastHandlerId : null;
  }

  private async processQueue(): Promise<void> {
    if (this.processing) return;
    this.processing = true;
    try {
      while (this.queue.length > 0) {
        const owner = this.owner();
        const index = owner === null ? 0 : this.queue.findIndex((item) => item.handlerId === owner);
        // The owner's next message has not arrived yet: the others wait for it.
        if (index < 0) break;
        const [item] = this.queue.splice(index, 1) as [Queued];
        let bytes = 0;
        try {
          await this.db.runExclusive(() =>
            this.db.execProtocolRawStream(item.message, {
              onRawData: (data) => {
                bytes += data.length;
                item.onData(data);
              },
            }),
          );
        } catch (error) {
          item.reject(error);
          this.lastHandlerId = item.handlerId;
          this.midQuery = false;
          continue;
        }
        this.lastHandlerId = item.handlerId;
        this.midQuery = MID_QUERY.has(item.message[0]!);
        item.resolve(bytes);
      }
    } finally {
      this.processing = false;
    }
  }

  getQueueLength(): number {
    return this.queue.length;
  }

  /** A connection went away: its waiting messages are dropped. */
  clearQueueForHandler(handlerId: number): void {
    this.queue = this.queue.filter((item) => {
      if (item.handlerId !== handlerId) return true;
      item.reject(new Error('Handler disconnected'));
      return false;
    });
  }

  /**
   * A connection went away: if it held the backend (half a query, or an open transaction), finish
   * the query and roll the transaction back, then let the others go on.
   */
  async clearTransactionIfNeeded(handlerId: number): Promise<void> {
    if (this.lastHandlerId !== handlerId) return;
    if (this.midQuery) {
      await this.db.runExclusive(() => this.db.execProtocolRaw(SYNC)).catch(() => {});
      this.midQuery = false;
    }
    if (this.db.isInTransaction()) await this.db.exec('ROLLBACK').catch(() => {});
    this.lastHandlerId = null;
    void this.processQueue();
  }
}

/** Makes `server` (not yet started) keep each connection's queries whole (see above). */
export function sequenceConnections(server: PGLiteSocketServer, db: PGlite): void {
  (server as unknown as { queryQueue: unknown }).queryQueue = new SequencedQueryQueue(db);
}
