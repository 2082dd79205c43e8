/**
 * The work checkpoint of a training run, one scheme for every trainer (`corgi pretrain`, `corgi
 * train`): what a run needs to continue exactly where it stopped, as nanoGPT's checkpoint dict
 * (`model`, `optimizer`, `iter_num`, `config`). `<out>.work/` holds
 *
 *   checkpoint/              written whole and atomically at every save (saveCheckpoint: temp dir, rename)
 *     model.safetensors …    the weights in HF layout, plus any files the trainer adds (tokenizer, adapter)
 *     optimizer.safetensors  AdamW's moments (optimizer-state.ts)
 *     run_state.json         { format, trainer, config, logBytes, state }
 *   train_log.jsonl          the metrics log; a resumed run cuts it back to `logBytes`, so no step is logged twice
 *
 * The config a run started with is recorded, and a resumed run keeps it: a field given on resume
 * that differs from the recorded one is refused (`ResumeConfigError`, naming every such field),
 * unless the trainer lists it as free to change (`mayChange`: run control such as `out`, a budget).
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { saveCheckpoint, writeCheckpointFiles } from '../model/checkpoint.ts';
import type { LlamaModel } from '../model/llama.ts';
import { AdamW } from './lm/optim.ts';
import { loadOptimizerState, serializeOptimizerState } from './lm/optimizer-state.ts';
import { MetricsLog } from './progress.ts';

export const RUN_STATE_FILE = 'run_state.json';
const OPTIMIZER_FILE = 'optimizer.safetensors';
const FORMAT = 1;

/** `run_state.json`: the trainer's own state beside what every run records. */
export interface RunRecord<Config, State> {
  format: typeof FORMAT;
  /** Which trainer wrote it (`pretrain`, `corgi`): another one's work directory is refused. */
  trainer: string;
  /** The config the run started with, every default filled in. */
  config: Config;
  /** Bytes of train_log.jsonl at this checkpoint. */
  logBytes: number;
  state: State;
}

const MARKER = Symbol.for('corgi.ResumeConfigError');

/** A resume that would change the recorded config, naming every field that differs. */
export class ResumeConfigError extends Error {
  readonly [MARKER] = true;
  override readonly name = 'ResumeConfigError';
  /** The first field that differs (the CLI's `field`). */
  readonly field: string;

  constructor(readonly changes: readonly ConfigChange[]) {
    const list = changes
      .map(
        ({ field, recorded, given }) =>
          `${field} (recorded ${JSON.stringify(recorded)}, given ${JSON.stringify(given)})`,
      )
      .join(', ');
    super(
      `${changes[0]!.field}: the run being resumed was started with another config: ${list}; ` +
        'a resumed run keeps its config (start a new run without --resume to change it)',
    );
    this.field = changes[0]!.field;
  }

  static isInstance(error: unknown): error is ResumeConfigError {
    return typeof error === 'object' && error !== null && (error as Record<symbol, unknown>)[MARKER] === true;
  }
}

export interface ConfigChange {
  field: string;
  recorded: unknown;
  given: unknown;
}

/**
 * The config a resumed run continues with: the recorded one, with the fields of `given` that
 * `mayChange` lists replaced. Fields `given` leaves out keep their recorded value.
 *
 * @throws ResumeConfigError when `given` sets any other field to a value that differs from the record
 */
export function resumedConfig<Config extends object>(
  recorded: Config,
  given: object,
  mayChange: ReadonlySet<string>,
): Record<string, unknown> {
  const merged: Record<string, unknown> = { ...(recorded as Record<string, unknown>) };
  const changes: ConfigChange[] = [];
  for (const [field, value] of Object.entries(given)) {
    if (value === undefined) continue;
    if (mayChange.has(field)) {
      merged[field] = value;
      continue;
    }
    const before = merged[field];
    if (JSON.stringify(value) !== JSON.stringify(before))
      changes.push({ field, recorded: before, given: value });
  }
  if (changes.length > 0) throw new ResumeConfigError(changes);
  return merged;
}

/** The work directory of one run: `<out>.work/`. */
export class WorkCheckpoint<Config, State> {
  /** Where the weights and the state are saved (an HF-layout checkpoint `loadCheckpoint` reads). */
  readonly dir: string;
  readonly logPath: string;

  /**
   * @param workDir `<out>.work`
   * @param trainer the name recorded in `run_state.json` and checked when reading it
   */
  constructor(
    readonly workDir: string,
    readonly trainer: string,
  ) {
    this.dir = join(workDir, 'checkpoint');
    this.logPath = join(workDir, 'train_log.jsonl');
  }

  /** True when a checkpoint has been saved (a run can continue from it). */
  get saved(): boolean {
    return existsSync(join(this.dir, RUN_STATE_FILE));
  }

  /** The saved record. */
  async read(): Promise<RunRecord<Config, State>> {
    const path = join(this.dir, RUN_STATE_FILE);
    const record = JSON.parse(await readFile(path, 'utf8')) as RunRecord<Config, State>;
    if (record.format !== FORMAT || record.trainer !== this.trainer) {
      throw new Error(
        `${path}: a ${record.trainer ?? 'unknown'} run (format ${record.format}), not a ${this.trainer} run (format ${FORMAT}); ` +
          `delete ${this.workDir} to start over`,
      );
    }
    return record;
  }

  /** Fills `optimizer` (over the same parameters) with the saved moments. */
  async loadOptimizer(optimizer: AdamW): Promise<void> {
    loadOptimizerState(optimizer, await readFile(join(this.dir, OPTIMIZER_FILE)));
  }

  /** The metrics log: a new one, or a resumed run's cut back to its checkpoint. */
  openLog(resumed: Pick<RunRecord<Config, State>, 'logBytes'> | null): MetricsLog {
    return MetricsLog.open(this.logPath, resumed ? resumed.logBytes : null);
  }

  /**
   * Replaces the checkpoint: weights (none: an adapter-only run on a GGUF base, whose adapter is
   * among `extraFiles`), optimizer moments (none: between phases, nothing to keep), `extraFiles`,
   * and the record with the log's current length.
   */
  async save({
    model,
    optimizer,
    config,
    state,
    log,
    extraFiles = {},
  }: {
    model: LlamaModel | null;
    optimizer: AdamW | null;
    config: Config;
    state: State;
    log: MetricsLog;
    extraFiles?: Record<string, string | Uint8Array>;
  }): Promise<void> {
    const record: RunRecord<Config, State> = {
      format: FORMAT,
      trainer: this.trainer,
      config,
      logBytes: log.size,
      state,
    };
    const files = {
      ...extraFiles,
      [OPTIMIZER_FILE]: serializeOptimizerState(optimizer ?? new AdamW(new Map())),
      [RUN_STATE_FILE]: JSON.stringify(record, null, 2),
    };
    if (model) await saveCheckpoint(model, this.dir, { overwrite: true, files });
    else await writeCheckpointFiles(this.dir, files, { overwrite: true });
  }
}
