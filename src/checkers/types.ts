/**
 * The checker contract. A checker is a pure function from `(response, kwargs)` to a verdict:
 * no I/O, and "not satisfied" is a result, never a throw (after TRL's reward-function contract
 * and the AI SDK's tools: a zod schema that both validates and documents the input).
 */
import type { z } from 'zod';

/** One checker's verdict on one response. */
export interface CheckOutcome {
  /** True when the constraint is fully satisfied. */
  ok: boolean;
  /** Partial credit in [0, 1]; 1 exactly when `ok`. */
  score: number;
  /** What to fix, with expected and actual values; null when ok. */
  feedback: string | null;
}

/** A constraint as users and apps send it: `{ "id": "keywords:existence", "kwargs": {...} }`. */
export interface ConstraintSpec {
  id: string;
  kwargs?: Record<string, unknown>;
}

/** A constraint whose id is registered and whose kwargs passed the checker's schema. */
export interface ParsedConstraint<K = unknown> {
  id: string;
  kwargs: K;
  checker: Checker<K>;
}

export interface Checker<K = unknown> {
  /** The registry id, IFEval's (`punctuation:no_comma`) or ours (`corgi:concepts`). */
  id: string;
  /** One line for `GET /v1/checkers` and `corgi checkers`. */
  description: string;
  /** Validates kwargs and documents them (exported as JSON Schema). */
  kwargsSchema: z.ZodType<K>;
  /** The instruction sentence a prompt shows for these kwargs. */
  describe(kwargs: K): string;
  /** The verdict; must not throw for any string response. */
  check(response: string, kwargs: K): CheckOutcome;
}

/** What a checker module writes: its kwargs schema, and `describe`/`check` typed by what it parses to. */
export interface CheckerDefinition<S extends z.ZodType> {
  id: string;
  description: string;
  kwargsSchema: S;
  describe(kwargs: z.output<S>): string;
  check(response: string, kwargs: z.output<S>): CheckOutcome;
}

/**
 * Identity function that exists for type inference: the kwargs type flows from the schema
 * into `describe` and `check`.
 */
export function defineChecker<S extends z.ZodType>(checker: CheckerDefinition<S>): Checker<z.output<S>> {
  return checker as unknown as Checker<z.output<S>>;
}

/** A pass/fail verdict with the usual score and feedback conventions. */
export function verdict(ok: boolean, feedback: string): CheckOutcome {
  return ok ? { ok: true, score: 1, feedback: null } : { ok: false, score: 0, feedback };
}

/** A verdict with partial credit: ok only when the score is 1. */
export function scoredVerdict(score: number, feedback: string): CheckOutcome {
  const clamped = Math.min(1, Math.max(0, score));
  return clamped >= 1 ? { ok: true, score: 1, feedback: null } : { ok: false, score: clamped, feedback };
}
