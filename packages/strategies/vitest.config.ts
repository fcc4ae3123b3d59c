import { defineConfig } from 'vitest/config'

// Real Redis and PostgreSQL on a loaded 2-core machine: generous bounds, never timing assertions.
export default defineConfig({
  test: {
    testTimeout: 30_000,
    hookTimeout: 60_000,
  },
})
