import { defineConfig } from 'vitest/config';

// Unit tests sit beside the code (*.test.ts); tests that start real servers are *.int.test.ts;
// tests that need a whole cluster live in e2e/ as *.e2e.test.ts. The `source` condition makes
// workspace packages resolve to their TypeScript sources, so no build is needed before a test run.
const resolve = { conditions: ['source'] };

export default defineConfig({
  test: {
    projects: [
      {
        resolve,
        test: {
          name: 'unit',
          include: ['*/src/**/*.test.ts', 'hack/**/*.test.ts'],
          exclude: ['**/*.int.test.ts', '**/*.e2e.test.ts', '**/node_modules/**', '**/dist/**'],
        },
      },
      {
        resolve,
        test: {
          name: 'integration',
          include: ['*/src/**/*.int.test.ts'],
          exclude: ['**/node_modules/**', '**/dist/**'],
          testTimeout: 60_000,
          hookTimeout: 180_000,
        },
      },
      {
        resolve,
        test: {
          name: 'e2e',
          include: ['e2e/src/**/*.e2e.test.ts'],
          testTimeout: 300_000,
          hookTimeout: 600_000,
          // One file at a time: the install test imports ~500 MB of images and boots the operator
          // and collector, which starved the network test's host-side echo server past its timeout
          // once on 2 cores. Costs ~5 s.
          fileParallelism: false,
        },
      },
    ],
  },
});
