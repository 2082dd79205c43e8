/**
 * What bench/serve.ts records about each session, shared by its two paths: the direct
 * `runSession` workers (main thread) and the socket.io clients (bench/serve-clients.ts, a worker
 * thread). Both feed the same recorder, so the numbers mean the same thing on both paths.
 */
import { gapsBetween } from './stats.ts';

/** What one session did, as seen by its consumer (the socket client, or the direct caller). */
export interface SessionRecord {
  error?: string;
  ok: boolean;
  attempts: number;
  tokens: number;
  /** Each attempt's final text, to compare the two paths. */
  texts: string[];
  /** Session start (the `session:start` emit, or the `runSession` call) → first token. */
  firstTokenMs: number | null;
  /** Per attempt: `attempt:start` → the attempt's first token. */
  attemptFirstTokenMs: number[];
  /** Between consecutive tokens of one attempt (the pause between attempts is not a gap). */
  gapsMs: number[];
  /** Session start → its end (`session:end`, or the failure). */
  durationMs: number;
}

/** Collects one session's timings from its events, whichever path delivers them. */
export class SessionRecorder {
  private readonly started = performance.now();
  private attemptStarted = this.started;
  private tokenTimes: number[] = [];
  readonly record: SessionRecord = {
    ok: false,
    attempts: 0,
    tokens: 0,
    texts: [],
    firstTokenMs: null,
    attemptFirstTokenMs: [],
    gapsMs: [],
    durationMs: 0,
  };

  attemptStart(): void {
    this.closeAttempt();
    this.attemptStarted = performance.now();
  }

  token(): void {
    const t = performance.now();
    if (this.tokenTimes.length === 0) this.record.attemptFirstTokenMs.push(t - this.attemptStarted);
    this.record.firstTokenMs ??= t - this.started;
    this.tokenTimes.push(t);
    this.record.tokens++;
  }

  attemptEnd(text: string): void {
    this.record.texts.push(text);
  }

  end(ok: boolean, attempts: number): SessionRecord {
    this.closeAttempt();
    this.record.ok = ok;
    this.record.attempts = attempts;
    return this.record;
  }

  fail(error: string): SessionRecord {
    this.closeAttempt();
    this.record.error = error;
    return this.record;
  }

  private closeAttempt(): void {
    this.record.gapsMs.push(...gapsBetween(this.tokenTimes));
    this.tokenTimes = [];
    this.record.durationMs = performance.now() - this.started;
  }
}

export interface QueueResult {
  wallMs: number;
  /** In the order of the items, whatever order they finished in. */
  records: SessionRecord[];
  /** Most sessions in flight at once. */
  peakConcurrent: number;
}

/**
 * Runs every item with `workers` concurrent workers pulling from one queue (a worker starts its
 * next session when its last one ends, as a user would), logging progress every 5 s. With
 * `durationMs`, the items are cycled instead and no session starts after that long (the ones in
 * flight finish); `records` then holds every session run, in the order they started.
 */
export async function runQueue<T>(
  label: string,
  items: readonly T[],
  workers: number,
  runOne: (worker: number, item: T) => Promise<SessionRecord>,
  log: (line: string) => void,
  { durationMs }: { durationMs?: number } = {},
): Promise<QueueResult> {
  const records: SessionRecord[] = new Array(durationMs === undefined ? items.length : 0);
  const deadline = durationMs === undefined ? undefined : performance.now() + durationMs;
  const more = () =>
    deadline === undefined ? next < items.length : items.length > 0 && performance.now() < deadline;
  let next = 0;
  let done = 0;
  let inFlight = 0;
  let peakConcurrent = 0;
  const started = performance.now();
  const progress = setInterval(() => {
    const seconds = (performance.now() - started) / 1000;
    const total = deadline === undefined ? `/${items.length}` : '';
    log(`${label}: ${done}${total} sessions, ${inFlight} in flight, ${seconds.toFixed(0)} s`);
  }, 5_000);
  try {
    await Promise.all(
      Array.from(
        { length: Math.min(workers, deadline === undefined ? items.length : workers) },
        async (_, worker) => {
          while (more()) {
            const index = next++;
            inFlight++;
            peakConcurrent = Math.max(peakConcurrent, inFlight);
            records[index] = await runOne(worker, items[index % items.length]);
            inFlight--;
            done++;
          }
        },
      ),
    );
  } finally {
    clearInterval(progress);
  }
  return { wallMs: performance.now() - started, records, peakConcurrent };
}

/** A progress logger to stderr, each line prefixed with the bench's name. */
export const benchLog =
  (bench: string) =>
  (line: string): void => {
    process.stderr.write(`[${bench}] ${line}\n`);
  };

export const logToStderr = benchLog('bench:serve');
