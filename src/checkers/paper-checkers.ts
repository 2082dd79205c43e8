import type { Checker } from './types.ts';

/** The CORGI paper's checkable tasks. */
export const paperCheckers: Checker[] = [];
