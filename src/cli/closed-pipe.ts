/**
 * A reader that stops early (`corgi checkers | head -1`) closes the pipe under stdout; the next write
 * fails with EPIPE. That is the reader's choice, not an error: exit at once, quietly, as Unix tools do.
 */

/** Makes EPIPE on stdout or stderr end the process quietly (exit 0); other stream errors still throw. */
export function exitQuietlyOnClosedPipe(): void {
  for (const stream of [process.stdout, process.stderr]) {
    if (stream.listeners('error').includes(onStreamError)) continue;
    stream.on('error', onStreamError);
  }
}

function onStreamError(error: NodeJS.ErrnoException): void {
  if (error.code === 'EPIPE') process.exit(0);
  throw error;
}
