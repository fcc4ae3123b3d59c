import { defineConfig } from 'vitest/config'

// PGlite boots a WebAssembly PostgreSQL per database: slow on a loaded 2-core machine.
export default defineConfig({
  test: {
    testTimeout: 30_000,
    hookTimeout: 60_000,
  },
})
