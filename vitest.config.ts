import { defineConfig } from 'vitest/config';

// Three groups, run one after the other: unit tests in parallel; integration tests against real
// components two files at a time; then the multi-process cluster tests alone, since a CPU-starved
// supernode on two cores is a different test (heartbeats missed, fallbacks taken) than the one meant.
const CLUSTER = ['test/integration/p2p-cluster.test.ts', 'test/integration/bench-fanout.test.ts', 'test/integration/testbed.test.ts'];

export default defineConfig({
  test: {
    // The daemons the tests start run the compiled dist/: built here when older than the sources.
    globalSetup: ['test/global-setup.ts'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    reporters: ['default'],
    projects: [
      { extends: true, test: { name: 'unit', include: ['test/unit/**/*.test.ts'], sequence: { groupOrder: 0 } } },
      {
        extends: true,
        test: {
          name: 'integration',
          include: ['test/integration/**/*.test.ts'],
          exclude: CLUSTER,
          maxWorkers: 2,
          testTimeout: 180_000,
          hookTimeout: 180_000,
          sequence: { groupOrder: 1 },
        },
      },
      { extends: true, test: { name: 'cluster', include: CLUSTER, fileParallelism: false, testTimeout: 600_000, hookTimeout: 300_000, sequence: { groupOrder: 2 } } },
    ],
  },
});
