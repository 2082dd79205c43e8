/**
 * `TrainingInterruptedError`: a long run (`corgi pretrain`, `corgi train`) stopped on request (Ctrl-C,
 * an abort signal) after writing a work checkpoint; `--resume` continues it where it stopped.
 */
import { CorgiError } from '../common/errors.ts';

export class TrainingInterruptedError extends CorgiError {
  constructor(
    /** Which part of the run: `pretrain` or `sft` for `corgi pretrain`, `rl` for `corgi train`. */
    readonly phase: string,
    readonly step: number,
    readonly checkpointDir: string,
  ) {
    super(
      'interrupted',
      `training interrupted after step ${step} (${phase}); checkpoint in ${checkpointDir} (resume with --resume)`,
    );
  }
}
