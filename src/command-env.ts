/**
 * The environment, as the commands read it (docs/operations.md lists every variable). Only the
 * command layer (`src/cli.ts`, the `*-command.ts` files) calls these; library functions take the
 * values as options with documented defaults, so a program importing the package is configured by
 * its own code, not by its process's environment.
 */
import { createLogger, type Logger, parseLogFormat } from './logger.ts';

type Env = NodeJS.ProcessEnv;

/** The commands' logger: `CORGI_LOG_FORMAT` (`text` | `json`), else text on a terminal and JSON lines otherwise. */
export function loggerFromEnv(env: Env = process.env, isTTY = process.stderr.isTTY === true): Logger {
  return createLogger({ format: parseLogFormat(env.CORGI_LOG_FORMAT, isTTY) });
}
