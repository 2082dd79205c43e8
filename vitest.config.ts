import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // The machine has two cores; more workers only thrash.
    maxWorkers: 2,
    testTimeout: 60_000,
    hookTimeout: 120_000,
    // Every server a test starts loads the text models once per check worker before it listens:
    // one worker per server keeps start-up short while two test files already share the two cores.
    // Child commands log plain lines, as on a terminal, which the tests read. The setup file applies
    // the same variables to the servers and policies a test starts in its own process.
    env: { CORGI_CHECK_THREADS: '1', CORGI_LOG_FORMAT: 'text' },
    setupFiles: ['test/support/runtime-setup.ts'],
  },
});
