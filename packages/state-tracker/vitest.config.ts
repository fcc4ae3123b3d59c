import { defineConfig } from 'vitest/config'

// Real redis-server processes on a loaded 2-core machine: tests wait on conditions with generous
// bounds, so the per-test timeout must leave room for them.
export default defineConfig({
  test: {
    testTimeout: 30_000,
    hookTimeout: 60_000,
  },
})
