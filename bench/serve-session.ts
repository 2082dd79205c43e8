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
 * next session when its last one ends, as a user would), logging progress every 5 s.
 */
export async function runQueue<T>(
  label: string,
  items: readonly T[],
  workers: number,
  runOne: (worker: number, item: T) => Promise<SessionRecord>,
  log: (line: string) => void,
): Promise<QueueResult> {
  const records: SessionRecord[] = new Array(items.length);
  let next = 0;
  let done = 0;
  let inFlight = 0;
  let peakConcurrent = 0;
  const started = performance.now();
  const progress = setInterval(() => {
    const seconds = (performance.now() - started) / 1000;
    log(`${label}: ${done}/${items.length} sessions, ${inFlight} in flight, ${seconds.toFixed(0)} s`);
  }, 5_000);
  try {
    await Promise.all(
      Array.from({ length: Math.min(workers, items.length) }, async (_, worker) => {
        while (next < items.length) {
          const index = next++;
          inFlight++;
          peakConcurrent = Math.max(peakConcurrent, inFlight);
          records[index] = await runOne(worker, items[index]);
          inFlight--;
          done++;
        }
      }),
    );
  } finally {
    clearInterval(progress);
  }
  return { wallMs: performance.now() - started, records, peakConcurrent };
}

export const logToStderr = (line: string) => process.stderr.write(`[bench:serve] ${line}\n`);
