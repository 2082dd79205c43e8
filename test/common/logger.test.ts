import { describe, expect, it } from 'vitest';
import { loggerFromEnv } from '../../src/cli/command-env.ts';
import { createLogger, parseLogFormat } from '../../src/common/logger.ts';

const at = () => new Date('2026-01-02T03:04:05.000Z');

describe('createLogger', () => {
  it('writes `[component] message` lines in text format', () => {
    const lines: string[] = [];
    const logger = createLogger({ format: 'text', write: (line) => lines.push(line), now: at });
    logger.info('CORGI Live on http://127.0.0.1:3000');
    logger.child('policy').warn('now serving v2 (was v1)', { attempt: 2 });
    expect(lines).toEqual([
      'CORGI Live on http://127.0.0.1:3000\n',
      '[policy] now serving v2 (was v1) attempt=2\n',
    ]);
  });

  it('writes one JSON object per line in json format, errors with their name, code and message', () => {
    const lines: string[] = [];
    const logger = createLogger({ format: 'json', write: (line) => lines.push(line), now: at }).child('db');
    logger.error('gave up a deferred write', {
      error: Object.assign(new Error('down'), { code: 'ECONNREFUSED' }),
    });
    expect(lines).toHaveLength(1);
    expect(lines[0]!.endsWith('\n')).toBe(true);
    const record = JSON.parse(lines[0]!);
    expect(record).toMatchObject({
      time: '2026-01-02T03:04:05.000Z',
      level: 'error',
      component: 'db',
      msg: 'gave up a deferred write',
      error: { name: 'Error', message: 'down', code: 'ECONNREFUSED' },
    });
    expect(record.error.stack).toMatch(/^Error: down/);
  });
});

describe('parseLogFormat / loggerFromEnv', () => {
  it('picks text on a terminal and JSON elsewhere unless CORGI_LOG_FORMAT says', () => {
    expect(parseLogFormat(undefined, true)).toBe('text');
    expect(parseLogFormat('', false)).toBe('json');
    expect(parseLogFormat('TEXT', false)).toBe('text');
    expect(parseLogFormat('json', true)).toBe('json');
  });

  it('refuses an unknown format, naming the variable', () => {
    expect(() => parseLogFormat('yaml', true)).toThrow(
      'CORGI_LOG_FORMAT: expected one of text, json, got "yaml"',
    );
    expect(() => loggerFromEnv({ CORGI_LOG_FORMAT: 'yaml' }, true)).toThrow(/CORGI_LOG_FORMAT/);
  });
});
