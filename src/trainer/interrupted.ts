/**
 * `TrainingInterruptedError`: a long run (`corgi pretrain`, `corgi train`) stopped on request (Ctrl-C,
 * an abort signal) after writing a work checkpoint; `--resume` continues it where it stopped.
 */
const MARKER = Symbol.for('corgi.TrainingInterruptedError');

export class TrainingInterruptedError extends Error {
  readonly [MARKER] = true;
  override readonly name = 'TrainingInterruptedError';

  constructor(
    /** Which part of the run: `pretrain` or `sft` for `corgi pretrain`, `rl` for `corgi train`. */
    readonly phase: string,
    readonly step: number,
    readonly checkpointDir: string,
  ) {
    super(
      `training interrupted after step ${step} (${phase}); checkpoint in ${checkpointDir} (resume with --resume)`,
    );
  }

  /** True for this class from any copy of the module (tsx may load it twice). */
  static isInstance(error: unknown): error is TrainingInterruptedError {
    return typeof error === 'object' && error !== null && (error as Record<symbol, unknown>)[MARKER] === true;
  }
}
