/**
 * Training steps in PostgreSQL (`training_steps`): one row per step of a training run, its metrics
 * as JSON (names as docs/training.md lists them). The dashboard charts them; the trainer writes them
 * through its `onStep` event, so the training loop itself holds no SQL.
 */
import type pg from 'pg';

export interface TrainingStepRow {
  /** The run the step belongs to (`training_steps.run_id`). */
  runId: string;
  step: number;
  /** The version the run produces, or null. */
  policyVersion: string | null;
  /** The step's metrics, stored as they were logged. */
  metrics: object;
}

/** Records one step; a step written again (a resumed run repeating it) replaces its metrics. */
export async function recordTrainingStep(
  pool: Pick<pg.Pool, 'query'>,
  { runId, step, policyVersion, metrics }: TrainingStepRow,
): Promise<void> {
  await pool.query(
    `INSERT INTO training_steps (run_id, step, policy_version, metrics) VALUES ($1, $2, $3, $4)
     ON CONFLICT (run_id, step) DO UPDATE SET metrics = EXCLUDED.metrics`,
    [runId, step, policyVersion, metrics],
  );
}

/**
 * A trainer `onStep` handler that records every step of the run in `pool`.
 *
 * @example await trainCorgi(config, { onStep: trainingStepRecorder(db.pool) });
 */
export function trainingStepRecorder(
  pool: Pick<pg.Pool, 'query'>,
): (metrics: { step: number }, run: { runId: string; version: string }) => Promise<void> {
  return (metrics, { runId, version }) =>
    recordTrainingStep(pool, { runId, step: metrics.step, policyVersion: version, metrics });
}
