/**
 * The check pool's worker: runs `checkAll` on constraints that were parsed on the main thread and
 * arrive as plain `{id, kwargs}` (functions do not cross threads). The text models load when the
 * worker starts, so its first check does not pay for them.
 */
import type { MessagePort } from 'node:worker_threads';
import { type CheckResult, checkAll, getChecker } from '../checkers/registry.ts';
import { getLightNlp, getNlp } from '../text/nlp.ts';
import { preloadTextModels } from '../text/preload.ts';

/** What the pool posts for one check. */
export interface CheckTask {
  response: string;
  constraints: { id: string; kwargs: unknown }[];
  /** Told when this worker starts the check: the pool's time budget runs from then. */
  started: MessagePort;
}

preloadTextModels();
getNlp();
getLightNlp();

/** Checks one response; kwargs are already parsed, so only the checker is looked up again. */
export default function runCheckTask({ response, constraints, started }: CheckTask): CheckResult {
  started.postMessage('started');
  started.close();
  return checkAll(
    response,
    constraints.map(({ id, kwargs }) => ({ id, kwargs, checker: getChecker(id) })),
  );
}
