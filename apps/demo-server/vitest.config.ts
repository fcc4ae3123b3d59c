import { defineConfig } from 'vitest/config'

export default defineConfig({
  test: {
    // PGlite and the database round trips are slow on a loaded 2-core machine: bounds on a hang only
    testTimeout: 120_000,
    hookTimeout: 120_000,
    // the server test files each start servers; one at a time keeps the machine responsive
    fileParallelism: false,
  },
})
