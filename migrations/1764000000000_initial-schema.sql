-- Up Migration

-- API keys: only a hash of each key is stored; the key itself is shown once at creation.
CREATE TABLE api_keys (
  id          uuid PRIMARY KEY,
  name        text NOT NULL,
  key_hash    text NOT NULL UNIQUE,
  admin       boolean NOT NULL DEFAULT false,
  created_at  timestamptz NOT NULL DEFAULT now(),
  revoked_at  timestamptz
);

-- Every policy the trainer produced or an operator promoted, and what the eval gate said.
CREATE TABLE policy_versions (
  version         text PRIMARY KEY,
  parent_version  text REFERENCES policy_versions (version),
  checkpoint_path text NOT NULL,
  checksum        text,
  status          text NOT NULL DEFAULT 'candidate'
                  CHECK (status IN ('candidate', 'promoted', 'refused', 'retired')),
  metrics         jsonb NOT NULL DEFAULT '{}'::jsonb,
  eval            jsonb,
  refused_reason  text,
  created_at      timestamptz NOT NULL DEFAULT now(),
  promoted_at     timestamptz
);

-- One row per session: live traffic, the trainer's simulated rollouts, or eval runs.
CREATE TABLE sessions (
  id            uuid PRIMARY KEY,
  api_key_id    uuid REFERENCES api_keys (id),
  source        text NOT NULL DEFAULT 'live' CHECK (source IN ('live', 'simulated', 'eval')),
  prompt        text,
  constraints   jsonb NOT NULL,
  max_attempts  integer NOT NULL CHECK (max_attempts BETWEEN 1 AND 10),
  sampling      jsonb NOT NULL DEFAULT '{}'::jsonb,
  status        text NOT NULL DEFAULT 'running'
                CHECK (status IN ('running', 'completed', 'cancelled', 'failed')),
  ok            boolean,
  best_score    double precision,
  attempts      integer NOT NULL DEFAULT 0,
  error         jsonb,
  created_at    timestamptz NOT NULL DEFAULT now(),
  ended_at      timestamptz
);
CREATE INDEX sessions_created_at_idx ON sessions (created_at);
CREATE INDEX sessions_api_key_idx ON sessions (api_key_id, created_at);

-- Every turn of every session, in order: the instruction, each attempt, each feedback turn.
-- Assistant turns keep their token ids and behaviour log-probs for off-policy training.
CREATE TABLE turns (
  session_id      uuid NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
  idx             integer NOT NULL,
  role            text NOT NULL CHECK (role IN ('user', 'assistant')),
  kind            text NOT NULL CHECK (kind IN ('instruction', 'feedback', 'attempt')),
  attempt         integer NOT NULL,
  text            text NOT NULL,
  token_ids       integer[],
  logprobs        real[],
  policy_version  text,
  check_result    jsonb,
  finish_reason   text,
  first_token_ms  double precision,
  generate_ms     double precision,
  check_ms        double precision,
  created_at      timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (session_id, idx)
);

-- Writers' ratings of a session's result.
CREATE TABLE ratings (
  id          bigserial PRIMARY KEY,
  session_id  uuid NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
  api_key_id  uuid REFERENCES api_keys (id),
  rating      smallint NOT NULL CHECK (rating BETWEEN -1 AND 5),
  comment     text,
  created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ratings_session_idx ON ratings (session_id);

-- The trainer's logged metrics, one row per optimisation step.
CREATE TABLE training_steps (
  id              bigserial PRIMARY KEY,
  run_id          text NOT NULL,
  step            integer NOT NULL,
  policy_version  text,
  metrics         jsonb NOT NULL,
  created_at      timestamptz NOT NULL DEFAULT now(),
  UNIQUE (run_id, step)
);

-- Down Migration
DROP TABLE training_steps;
DROP TABLE ratings;
DROP TABLE turns;
DROP TABLE sessions;
DROP TABLE policy_versions;
DROP TABLE api_keys;
