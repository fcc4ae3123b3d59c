import { defineConfig } from 'vitest/config'

// A loaded 2-core machine runs the property tests several times slower: the per-test timeout
// leaves room for that (tests wait on conditions, never on fixed sleeps).
export default defineConfig({
  test: {
    testTimeout: 30_000,
    hookTimeout: 60_000,
  },
})
