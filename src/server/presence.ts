/**
 * A server process's presence in the database it shares with other servers: an id recorded on every
 * session it runs (`sessions.server_id`), and on PostgreSQL one connection held open for the life of
 * the process with `application_name = 'corgi-serve <id>'`. Another server tells whether this one is
 * alive by looking for that connection in `pg_stat_activity` (`sweepOrphanedSessions`): when the
 * process dies, however it dies, the kernel closes its sockets and PostgreSQL drops the connection,
 * so no heartbeat, clock or timeout is involved.
 *
 * If the connection is lost while the process lives (a database blip), it is re-established with
 * backoff. A server starting during such a gap would take this one for gone and mark its running
 * sessions `interrupted`; those sessions carry on, and their real end overwrites that status.
 *
 * The embedded database belongs to one process, so there the id alone is enough (no connection).
 */
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { defaultLogger, type Logger } from '../common/logger.ts';
import { type Database, setApplicationName } from '../db/database.ts';
import { PRESENCE_APPLICATION_PREFIX } from '../db/sessions.ts';

export interface ServerPresence {
  /** This process's server id, recorded on its sessions. */
  readonly id: string;
  /** Drops the presence connection (shutdown): after this the process counts as gone. */
  close(): Promise<void>;
}

/** Longest wait between attempts to re-open a lost presence connection. */
const MAX_RECONNECT_MS = 30_000;

/**
 * Opens the presence connection (PostgreSQL) and resolves once it is visible to other servers, so
 * no session recorded under the id can be taken for a dead server's.
 */
export async function startPresence(
  db: Pick<Database, 'pool' | 'embedded'>,
  { logger = defaultLogger }: { logger?: Logger } = {},
): Promise<ServerPresence> {
  const id = randomUUID();
  const log = logger.child('presence');
  if (db.embedded) return { id, close: async () => {} };

  const applicationName = `${PRESENCE_APPLICATION_PREFIX}${id}`;
  let client: pg.Client | null = null;
  let timer: NodeJS.Timeout | null = null;
  let delay = 500;
  let closed = false;

  const connect = async (): Promise<void> => {
    const next = new pg.Client({ ...db.pool.options, application_name: applicationName });
    const lost = (error?: Error) => {
      if (client !== next) return; // already handled, or closing
      client = null;
      next.end().catch(() => {});
      log.warn(`connection lost${error ? ` (${error.message})` : ''}; reconnecting`);
      schedule();
    };
    next.on('error', lost);
    next.on('end', () => lost());
    try {
      await next.connect();
      await setApplicationName(next, applicationName);
    } catch (error) {
      next.end().catch(() => {});
      throw error;
    }
    if (closed) {
      await next.end().catch(() => {});
      return;
    }
    client = next;
    delay = 500;
  };

  const schedule = () => {
    if (closed || timer) return;
    timer = setTimeout(async () => {
      timer = null;
      try {
        await connect();
        if (!closed) log.info('connection re-established');
      } catch {
        delay = Math.min(delay * 2, MAX_RECONNECT_MS);
        schedule();
      }
    }, delay);
    // Reconnecting alone never keeps a process alive.
    timer.unref();
  };

  await connect();
  return {
    id,
    close: async () => {
      closed = true;
      if (timer) clearTimeout(timer);
      const open = client;
      client = null;
      await open?.end().catch(() => {});
    },
  };
}
