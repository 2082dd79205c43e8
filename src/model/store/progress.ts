/**
 * Pull progress: events from the store, and a reporter that draws them on a terminal (a bar) or
 * writes one JSON line per event elsewhere (at most one byte-progress line a second).
 */

export type PullProgress =
  | { phase: 'source'; name: string; source: string }
  | { phase: 'download'; name: string; source: string; bytes: number; total: number }
  | { phase: 'message'; name: string; source: string; message: string }
  | { phase: 'verify'; name: string; file: string }
  | { phase: 'done'; name: string; path: string };

export type ProgressListener = (event: PullProgress) => void;

const BAR_WIDTH = 30;

function formatMegabytes(bytes: number): string {
  return `${(bytes / 1e6).toFixed(1)} MB`;
}

/**
 * A listener that writes progress to `stream`: a redrawn bar when it is a TTY, JSON lines
 * otherwise (byte counts throttled to `intervalMs`).
 * @default intervalMs 1000
 */
export function createProgressReporter(
  stream: NodeJS.WriteStream | NodeJS.WritableStream = process.stderr,
  {
    intervalMs = 1000,
    tty = (stream as NodeJS.WriteStream).isTTY === true,
  }: { intervalMs?: number; tty?: boolean } = {},
): ProgressListener {
  let lastLine = 0;
  let barOpen = false;
  const endBar = () => {
    if (barOpen) stream.write('\n');
    barOpen = false;
  };
  return (event) => {
    if (event.phase === 'download') {
      const now = Date.now();
      const finished = event.bytes >= event.total;
      if (!finished && now - lastLine < (tty ? 100 : intervalMs)) return;
      lastLine = now;
      if (!tty) {
        stream.write(`${JSON.stringify(event)}\n`);
        return;
      }
      const fraction = event.total > 0 ? Math.min(1, event.bytes / event.total) : 0;
      const filled = Math.round(fraction * BAR_WIDTH);
      stream.write(
        `\r${event.name} [${'#'.repeat(filled)}${'-'.repeat(BAR_WIDTH - filled)}] ` +
          `${(fraction * 100).toFixed(0).padStart(3)}% ${formatMegabytes(event.bytes)} / ${formatMegabytes(event.total)}`,
      );
      barOpen = true;
      return;
    }
    if (!tty) {
      stream.write(`${JSON.stringify(event)}\n`);
      return;
    }
    endBar();
    if (event.phase === 'source') stream.write(`${event.name}: fetching from ${event.source}\n`);
    else if (event.phase === 'message') stream.write(`${event.name}: ${event.message}\n`);
    else if (event.phase === 'verify') stream.write(`${event.name}: verifying ${event.file}\n`);
    else stream.write(`${event.name}: installed at ${event.path}\n`);
  };
}
