import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts', 'worker-sdk/src/**/*.test.ts'],
    globalSetup: ['test/support/global-setup.ts'],
    // Fails a file that leaves a child process, a database connection or a handle behind.
    setupFiles: ['test/support/leak-check.ts'],
    // Real processes and a real database: generous, but every test still ends on its own.
    testTimeout: 60_000,
    hookTimeout: 90_000,
    pool: 'forks',
    // Two cores: more files at once only makes each slower and timing-sensitive.
    maxWorkers: 2,
  },
});
