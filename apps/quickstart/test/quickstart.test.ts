import { describe, expect, it } from 'vitest'
import { bar, loadSeedConfig, runQuickstart } from '../src/run.js'

describe('quickstart', () => {
  it('loads the example configuration shipped with core', async () => {
    const config = await loadSeedConfig()
    expect(config.strategies.primary_core?.strategy).toBe('write_through')
  })

  it('serves most reads from L1, loads once under a stampede, persists write-behind', async () => {
    const lines: string[] = []
    const report = await runQuickstart({
      requests: 5_000,
      actors: 2_000,
      log: (l) => lines.push(l),
    })
    expect(report.dbQueriesUncached).toBe(5_000)
    expect(report.dbQueriesCached).toBeGreaterThan(0)
    expect(report.dbQueriesCached).toBeLessThan(2_001)
    expect(report.l1HitRatio).toBeGreaterThan(0.5)
    expect(report.stampedeLoads).toBe(1)
    expect(report.writeBehindPersisted).toBe(report.writeBehindAcked)
    const text = lines.join('\n')
    expect(text).toMatch(/fails with E_CONFLICT/)
    expect(text).toMatch(/recomputed from hp 500/)
  }, 600_000) // only a bound on a hang: PGlite is slow on a loaded 2-core machine

  it('draws bars', () => {
    expect(bar(0.5, 10)).toBe('█████░░░░░')
    expect(bar(2, 4)).toBe('████')
  })
})
