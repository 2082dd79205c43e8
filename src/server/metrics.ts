/**
 * Prometheus metrics for `GET /metrics`. One registry per server instance, so tests and several
 * servers in one process do not share counters.
 */
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';

export function createMetrics() {
  const registry = new Registry();
  // Default names already start with `process_` or `nodejs_`: `corgi_process_cpu_seconds_total`.
  collectDefaultMetrics({ register: registry, prefix: 'corgi_' });
  const latencyBuckets = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
  return {
    registry,
    sessionsStarted: new Counter({
      name: 'corgi_sessions_started_total',
      help: 'Sessions started',
      registers: [registry],
    }),
    sessionsEnded: new Counter({
      name: 'corgi_sessions_ended_total',
      help: 'Sessions ended, by outcome (ok, failed_constraints, cancelled, error)',
      labelNames: ['outcome'],
      registers: [registry],
    }),
    activeSessions: new Gauge({
      name: 'corgi_active_sessions',
      help: 'Sessions running now',
      registers: [registry],
    }),
    attempts: new Counter({
      name: 'corgi_attempts_total',
      help: 'Attempts generated',
      registers: [registry],
    }),
    tokens: new Counter({
      name: 'corgi_generated_tokens_total',
      help: 'Tokens generated; rate() of it is tokens/s',
      registers: [registry],
    }),
    tokensPerSecond: new Histogram({
      name: 'corgi_attempt_tokens_per_second',
      help: 'Generation speed of each attempt',
      buckets: [1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500],
      registers: [registry],
    }),
    timeToFirstToken: new Histogram({
      name: 'corgi_time_to_first_token_seconds',
      help: 'From an attempt start to its first token',
      buckets: latencyBuckets,
      registers: [registry],
    }),
    checkLatency: new Histogram({
      name: 'corgi_check_latency_seconds',
      help: 'checkAll time per attempt',
      buckets: [0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1],
      registers: [registry],
    }),
    dbWriteLatency: new Histogram({
      name: 'corgi_db_write_latency_seconds',
      help: 'Time to make a turn durable before it is announced',
      buckets: latencyBuckets,
      registers: [registry],
    }),
    chatCompletions: new Counter({
      name: 'corgi_chat_completions_total',
      help: 'POST /v1/chat/completions requests accepted, by mode (plain, corgi)',
      labelNames: ['mode'],
      registers: [registry],
    }),
    policyVersion: new Gauge({
      name: 'corgi_policy_info',
      help: 'The live policy version (value 1 on the live version label)',
      labelNames: ['version'],
      registers: [registry],
    }),
  };
}

export type ServerMetrics = ReturnType<typeof createMetrics>;
