/**
 * The product's one logger: diagnostic lines on stderr, created by the command that starts things
 * (`corgi serve`, `corgi trainer`, ...) and passed down to the server, trainer, model store and
 * database. On a terminal a line reads `[component] message`; elsewhere (a service manager, a
 * container, a pipe) it is one JSON object per line, `{"time","level","component","msg",...fields}`.
 *
 * Command results on stdout and progress bars on a terminal are not logging and do not go here.
 */
import { inspect } from 'node:util';

export type LogLevel = 'info' | 'warn' | 'error';
export type LogFormat = 'text' | 'json';
/** Extra structured values: JSON fields, or ` key=value` after the message on a terminal. */
export type LogFields = Record<string, unknown>;

export interface Logger {
  info(message: string, fields?: LogFields): void;
  warn(message: string, fields?: LogFields): void;
  error(message: string, fields?: LogFields): void;
  /** The same sink, lines tagged with `component` (`[db]`, `[trainer]`). */
  child(component: string): Logger;
}

export interface LoggerOptions {
  /** @default 'text' when stderr is a terminal, else 'json' */
  format?: LogFormat;
  /** Where each finished line (with its newline) goes. @default process.stderr.write */
  write?: (line: string) => void;
  /** Tags every line. @default none */
  component?: string;
  /** @default () => new Date() */
  now?: () => Date;
}

export const LOG_FORMATS: readonly LogFormat[] = ['text', 'json'];

/**
 * What library functions log to when no logger is passed: stderr, text on a terminal, else JSON.
 * The commands pass their own, made from `CORGI_LOG_FORMAT`.
 */
export const defaultLogger: Logger = lazyLogger();

/** A logger that drops everything (tests, library callers that want silence). */
export const silentLogger: Logger = {
  info() {},
  warn() {},
  error() {},
  child: () => silentLogger,
};

/** Creates a logger; see `LoggerOptions` for the defaults. */
export function createLogger({
  format = process.stderr.isTTY ? 'text' : 'json',
  write = (line) => process.stderr.write(line),
  component,
  now = () => new Date(),
}: LoggerOptions = {}): Logger {
  const emit = (level: LogLevel, message: string, fields: LogFields = {}) => {
    if (format === 'json') {
      const record = { time: now().toISOString(), level, ...(component ? { component } : {}), msg: message };
      write(`${JSON.stringify({ ...record, ...plain(fields) })}\n`);
      return;
    }
    const tag = component ? `[${component}] ` : '';
    const extra = Object.entries(fields)
      .map(
        ([key, value]) =>
          ` ${key}=${typeof value === 'string' ? value : inspect(value, { breakLength: Number.POSITIVE_INFINITY })}`,
      )
      .join('');
    write(`${tag}${message}${extra}\n`);
  };
  return {
    info: (message, fields) => emit('info', message, fields),
    warn: (message, fields) => emit('warn', message, fields),
    error: (message, fields) => emit('error', message, fields),
    child: (name) => createLogger({ format, write, now, component: name }),
  };
}

/**
 * Reads a log format setting (`CORGI_LOG_FORMAT`): `text`, `json`, or unset for the terminal default.
 * @throws Error naming the variable and the accepted values
 */
export function parseLogFormat(
  value: string | undefined,
  isTTY: boolean,
  name = 'CORGI_LOG_FORMAT',
): LogFormat {
  const wanted = value?.trim().toLowerCase();
  if (!wanted) return isTTY ? 'text' : 'json';
  if ((LOG_FORMATS as readonly string[]).includes(wanted)) return wanted as LogFormat;
  throw new Error(`${name}: expected one of ${LOG_FORMATS.join(', ')}, got "${value}"`);
}

/** Errors become `{name, message, code?, stack}`: JSON.stringify would write `{}`. */
function plain(fields: LogFields): LogFields {
  const out: LogFields = {};
  for (const [key, value] of Object.entries(fields)) {
    out[key] =
      value instanceof Error
        ? {
            name: value.name,
            message: value.message,
            ...('code' in value ? { code: value.code } : {}),
            stack: value.stack,
          }
        : value;
  }
  return out;
}

/** `createLogger()` on first use, so importing this module does not touch stderr. */
function lazyLogger(): Logger {
  let logger: Logger | undefined;
  const get = () => {
    logger ??= createLogger();
    return logger;
  };
  return {
    info: (message, fields) => get().info(message, fields),
    warn: (message, fields) => get().warn(message, fields),
    error: (message, fields) => get().error(message, fields),
    child: (component) => get().child(component),
  };
}
