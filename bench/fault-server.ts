/**
 * The server `npm run bench:faults` provokes, in a process of its own (so it can be SIGKILLed): a
 * real server and check pool on the given PostgreSQL URL and schema, with a scripted policy that
 * streams a word every 20 ms. Prints `listening <url>` once it serves.
 *   node bin/run-ts.js bench/fault-server.ts <database-url> <schema>
 */
import { runtimeSettingsFromEnv } from '../src/cli/command-env.ts';
import { configureRuntime } from '../src/common/runtime-settings.ts';
import { openDatabase } from '../src/db/database.ts';
import { fixedPolicy } from '../src/policy/types.ts';
import { startServer } from '../src/server/server.ts';
import { ScriptedPolicy } from '../test/support/scripted-policy.ts';

const [url, schema] = process.argv.slice(2);
if (!url || !schema) {
  console.error('usage: node bin/run-ts.js bench/fault-server.ts <database-url> <schema>');
  process.exit(2);
}
configureRuntime(runtimeSettingsFromEnv());
const answer = Array.from({ length: 30 }, (_, i) => `word${i}`).join(' ');
const db = await openDatabase({
  url,
  schema,
  poolSize: 4,
  migrate: false,
  timeouts: { connectMs: 1_000, queryMs: 2_000, statementMs: 1_500 },
});
const server = await startServer({
  db,
  policy: fixedPolicy(new ScriptedPolicy([answer], 'bench-faults', 20)),
  port: 0,
  clusterAdapter: false,
  security: { rateLimits: { sessionsPerMinute: 0, perIpPerMinute: 0, perKeyPerMinute: 0 } },
});
process.stdout.write(`listening ${server.url}\n`);
