-- Up Migration

-- At most one live policy. Promotion retires the previous live version in the same transaction;
-- this index makes a second live row impossible even if two promoters raced past that logic.
CREATE UNIQUE INDEX policy_versions_one_live_idx ON policy_versions ((true)) WHERE status = 'promoted';

-- Rollback looks for the most recently live version that was retired (not refused).
CREATE INDEX policy_versions_status_promoted_at_idx ON policy_versions (status, promoted_at);

-- Down Migration
DROP INDEX policy_versions_status_promoted_at_idx;
DROP INDEX policy_versions_one_live_idx;
