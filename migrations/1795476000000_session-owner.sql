-- Up Migration

-- Which server process runs a session. A process killed mid-session (SIGKILL, out of memory, a
-- power cut) cannot write its sessions' end, so they would say `running` forever; a server starting
-- up marks those of servers that are gone `interrupted` (sweepOrphanedSessions in src/db/sessions.ts).
-- A server is alive while its presence connection (application_name `corgi-serve <server_id>`,
-- src/server/presence.ts) is open. NULL: written by a process that records no owner (an older server,
-- a library user's withCheckerFeedback); never swept on PostgreSQL, since its liveness is unknown.
ALTER TABLE sessions ADD COLUMN server_id text;

-- The inline CHECK of the initial schema, widened by one status. Existing rows satisfy it already:
-- NOT VALID + VALIDATE checks them without blocking writers for the scan.
ALTER TABLE sessions DROP CONSTRAINT sessions_status_check;
ALTER TABLE sessions ADD CONSTRAINT sessions_status_check
  CHECK (status IN ('running', 'completed', 'cancelled', 'failed', 'interrupted')) NOT VALID;
ALTER TABLE sessions VALIDATE CONSTRAINT sessions_status_check;

-- The sweep reads only the running sessions.
CREATE INDEX sessions_running_server_idx ON sessions (server_id) WHERE status = 'running';

-- Down Migration
DROP INDEX sessions_running_server_idx;
UPDATE sessions SET status = 'failed' WHERE status = 'interrupted';
ALTER TABLE sessions DROP CONSTRAINT sessions_status_check;
ALTER TABLE sessions ADD CONSTRAINT sessions_status_check
  CHECK (status IN ('running', 'completed', 'cancelled', 'failed'));
ALTER TABLE sessions DROP COLUMN server_id;
