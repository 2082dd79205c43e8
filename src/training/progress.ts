/**
 * Where a training run reports: a progress line on stderr (redrawn in place on a terminal, one
 * line per report otherwise) and metrics as JSON lines in a file that a resumed run truncates back
 * to its checkpoint, so the log never holds steps twice.
 */
import { appendFileSync, existsSync, statSync, truncateSync, writeFileSync } from 'node:fs';

/** `m:ss` or `h:mm:ss`. */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '?';
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${ss}` : `${m}:${ss}`;
}

export interface ProgressUpdate {
  phase: string;
  step: number;
  totalSteps: number;
  tokensPerSecond: number;
  loss: number;
  /** Seconds left in this phase. */
  etaSeconds: number;
  elapsedSeconds: number;
}

/** Renders progress to a stream: a bar redrawn in place on a TTY, plain lines elsewhere. */
export class ProgressReporter {
  private open = false;
  private lastLineAt = Number.NEGATIVE_INFINITY;

  /**
   * @param write where the text goes. @default process.stderr
   * @param isTTY redraw one line in place; otherwise print a line at most every `lineSeconds`
   *   (and at a phase's last step). @default process.stderr.isTTY
   * @param lineSeconds @default 15
   */
  constructor(
    private readonly write: (text: string) => void = (text) => process.stderr.write(text),
    private readonly isTTY: boolean = process.stderr.isTTY === true,
    private readonly lineSeconds = 15,
  ) {}

  /** A progress report: `pretrain [#####-----] 120/1830 | 1,180 tok/s | loss 4.213 | 3:12 < 45:10`. */
  update(u: ProgressUpdate): void {
    const fraction = u.totalSteps > 0 ? Math.min(1, u.step / u.totalSteps) : 0;
    const width = 20;
    const filled = Math.round(fraction * width);
    const bar = `[${'#'.repeat(filled)}${'-'.repeat(width - filled)}]`;
    const text =
      `${u.phase.padEnd(8)} ${bar} ${u.step}/${u.totalSteps} | ${Math.round(u.tokensPerSecond).toLocaleString('en-US')} tok/s` +
      ` | loss ${u.loss.toFixed(3)} | ${formatDuration(u.elapsedSeconds)} elapsed, ETA ${formatDuration(u.etaSeconds)}`;
    if (this.isTTY) {
      this.write(`\r\x1b[2K${text}`);
      this.open = true;
      return;
    }
    const now = performance.now() / 1000;
    if (now - this.lastLineAt >= this.lineSeconds || u.step === u.totalSteps) {
      this.lastLineAt = now;
      this.write(`${text}\n`);
    }
  }

  /** A message on its own line (ends a TTY progress line first). */
  line(text: string): void {
    if (this.open) this.write('\n');
    this.open = false;
    this.write(`${text}\n`);
  }
}

/** Appends one JSON object per line to `path`; `size` is what a checkpoint records. */
export class MetricsLog {
  constructor(readonly path: string) {}

  /** Starts a new log, or cuts a resumed one back to `bytes` (lines written after the checkpoint). */
  static open(path: string, resumeAtBytes: number | null): MetricsLog {
    if (resumeAtBytes === null || !existsSync(path)) writeFileSync(path, '');
    else truncateSync(path, resumeAtBytes);
    return new MetricsLog(path);
  }

  write(record: Record<string, unknown>): void {
    appendFileSync(this.path, `${JSON.stringify(record)}\n`);
  }

  get size(): number {
    return statSync(this.path).size;
  }
}
