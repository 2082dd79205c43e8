/**
 * The CORGI paper's checkable tasks (Bezalel, Orgad, Globerson, "Teaching Models to Improve on
 * Tape", AAAI 2025, arXiv 2411.01483), in the paper's order. Each file's header gives its
 * semantics and where they differ from the paper's critics.
 */

import type { Checker } from '../types.ts';
import { conceptsChecker } from './concepts.ts';
import { noRepeatNgramChecker } from './no-repeat-ngram.ts';
import { numPlanningChecker } from './num-planning.ts';
import { panagramChecker } from './panagram.ts';
import { sentimentChecker } from './sentiment.ts';

/** The CORGI paper's checkable tasks. */
export const paperCheckers: Checker[] = [
  numPlanningChecker,
  conceptsChecker,
  panagramChecker,
  sentimentChecker,
  noRepeatNgramChecker,
] as Checker[];
