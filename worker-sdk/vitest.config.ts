// The SDK's own unit tests (pure modules, no broker): `npm test -w worker-sdk`. The repository's
// cross-package tests, including the packaging test, live in ../test.
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['src/**/*.test.ts'],
  },
});
