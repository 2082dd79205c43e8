-- Up Migration

-- socket.io's PostgreSQL adapter (several server processes on one database) sends its messages
-- with NOTIFY; a message over NOTIFY's 8000-byte limit, or with binary data, goes through this
-- table and the NOTIFY carries only its id. The adapter deletes rows older than 30 s itself.
CREATE TABLE socket_io_attachments (
  id          bigserial UNIQUE,
  created_at  timestamptz NOT NULL DEFAULT now(),
  payload     bytea NOT NULL
);

-- Down Migration
DROP TABLE socket_io_attachments;
