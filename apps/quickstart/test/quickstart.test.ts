import { describe, expect, it } from 'vitest'
import { bar, loadSeedConfig, runQuickstart } from '../src/run.js'

describe('quickstart', () => {
  it('loads the seed configuration shipped with core', async () => {
    const config = await loadSeedConfig()
    expect(config.strategies.primary_core?.strategy).toBe('write_through')
  })

  it('serves most reads from L1 and sends only misses to the database', async () => {
    const lines: string[] = []
    const report = await runQuickstart({ requests: 5_000, log: (l) => lines.push(l) })
    expect(report.dbQueriesUncached).toBe(5_000)
    expect(report.dbQueriesCached).toBe(report.stats.misses)
    expect(report.stats.hits + report.stats.misses).toBe(5_000)
    expect(report.stats.hitRatio).toBeGreaterThan(0.5)
    expect(lines.join('\n')).toMatch(/a stale compare-and-set fails with E_CONFLICT/)
    expect(lines.join('\n')).toMatch(/mutating a cached value is refused/)
  })

  it('draws bars', () => {
    expect(bar(0.5, 10)).toBe('█████░░░░░')
    expect(bar(2, 4)).toBe('████')
  })
})
