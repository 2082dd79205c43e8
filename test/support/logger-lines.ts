import { createLogger, type Logger } from '../../src/common/logger.ts';

/** A logger whose lines, as a terminal would show them (`[policy] now serving v2`), go into `lines`. */
export function linesLogger(lines: string[]): Logger {
  return createLogger({ format: 'text', write: (line) => lines.push(line.trimEnd()) });
}
