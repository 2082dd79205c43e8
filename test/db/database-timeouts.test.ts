import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { databaseTimeoutsFromEnv } from '../../src/cli/command-env.ts';
import { type Database, openDatabase, resolveDatabaseTimeouts } from '../../src/db/database.ts';
import { openTestDatabase, TEST_DATABASE_URL } from '../support/database.ts';

describe('database deadlines', () => {
  it('come from overrides, then the environment (read by the commands), then the defaults', () => {
    const env = {
      CORGI_DB_QUERY_TIMEOUT_MS: '0',
      CORGI_DB_STATEMENT_TIMEOUT_MS: '2500',
      CORGI_DB_CONNECT_TIMEOUT_MS: '',
    };
    expect(databaseTimeoutsFromEnv(env)).toEqual({ queryMs: 0, statementMs: 2_500 });
    expect(resolveDatabaseTimeouts({ ...databaseTimeoutsFromEnv(env), idleInTransactionMs: 700 })).toEqual({
      connectMs: 3_000,
      queryMs: 0,
      statementMs: 2_500,
      idleInTransactionMs: 700,
    });
  });

  it('refuse a malformed variable, naming it', () => {
    expect(() => databaseTimeoutsFromEnv({ CORGI_DB_STATEMENT_TIMEOUT_MS: '5s' })).toThrow(
      'CORGI_DB_STATEMENT_TIMEOUT_MS must be a whole number of milliseconds (0 = no deadline), got "5s"',
    );
  });
});

describe('a pool with deadlines', () => {
  let setup: Database;
  let db: Database;
  beforeAll(async () => {
    setup = await openTestDatabase();
    db = await openDatabase({
      url: TEST_DATABASE_URL,
      schema: setup.schema,
      migrate: false,
      timeouts: { statementMs: 300, idleInTransactionMs: 4_000, queryMs: 5_000 },
    });
  });
  afterAll(async () => {
    await db?.close();
    await setup?.close();
  });

  it('sets them on every PostgreSQL session', async () => {
    const { rows } = await db.pool.query(
      "SELECT current_setting('statement_timeout') AS statement, current_setting('idle_in_transaction_session_timeout') AS idle",
    );
    expect(rows[0]).toEqual({ statement: '300ms', idle: '4s' });
  });

  it('cancels a statement past statement_timeout (57014) instead of waiting for it', async () => {
    const started = performance.now();
    await expect(db.pool.query('SELECT pg_sleep(3)')).rejects.toMatchObject({ code: '57014' });
    expect(performance.now() - started).toBeLessThan(2_500);
  });
});
