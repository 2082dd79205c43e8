import type { Checker } from './types.ts';

/** IFEval's 25 instruction checkers (filled in by the IFEval families). */
export const ifevalCheckers: Checker[] = [];
