import { defineConfig } from 'vitest/config'

// PGlite boots a WebAssembly PostgreSQL per database: compiling it takes a core for seconds, and
// far longer on a loaded 2-core machine. The bounds only catch hangs; nothing here is timed.
export default defineConfig({
  test: {
    testTimeout: 60_000,
    hookTimeout: 240_000,
  },
})
