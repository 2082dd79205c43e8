import { randomBytes } from 'node:crypto';
import { type Database, openDatabase } from '../../src/db/database.ts';

/** The real PostgreSQL the tests use (CI starts it; trust auth, database `test`). */
export const TEST_DATABASE_URL = process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

/**
 * A migrated database in a schema of its own, so test files can run in parallel against the one
 * server; `close()` drops the schema.
 */
export async function openTestDatabase(): Promise<Database> {
  const schema = `corgi_test_${randomBytes(6).toString('hex')}`;
  const db = await openDatabase({ url: TEST_DATABASE_URL, schema, poolSize: 4 });
  return {
    ...db,
    close: async () => {
      await db.pool.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
      await db.close();
    },
  };
}
