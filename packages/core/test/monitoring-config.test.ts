import { describe, expect, it } from 'vitest'
import { InvalidConfigError, parseCacheConfigYaml } from '../src/index.js'

describe('the monitoring block', () => {
  it('is optional', () => {
    expect(parseCacheConfigYaml('mem_cache: { max_size: 1MB }').monitoring).toBeUndefined()
  })

  it('normalises units and fills defaults', () => {
    const config = parseCacheConfigYaml(`
monitoring:
  alerts:
    low_hit_ratio: { threshold: 80%, for: 1m }
    high_memory: { max_size: 80MB, for: 30s }
    error_rate: { threshold: 0.05, window: 2m, min_operations: 10 }
    slow_operations: { quantile: 0.99, threshold: 50ms, operations: [load] }
`)
    expect(config.monitoring).toEqual({
      evaluationInterval: 15_000,
      alerts: {
        lowHitRatio: {
          threshold: 0.8,
          level: 'overall',
          window: 300_000,
          for: 60_000,
          minReads: 1,
        },
        highMemory: { maxSize: 80 * 1024 * 1024, for: 30_000 },
        errorRate: { threshold: 0.05, window: 120_000, for: 0, minOperations: 10 },
        slowOperations: {
          quantile: 0.99,
          threshold: 50,
          operations: ['load'],
          window: 300_000,
          for: 0,
        },
      },
    })
  })

  it('rejects bad values with their path', () => {
    const bad = (yaml: string) => {
      try {
        parseCacheConfigYaml(yaml)
      } catch (error) {
        expect(error).toBeInstanceOf(InvalidConfigError)
        return (error as Error).message
      }
      throw new Error('accepted')
    }
    expect(bad('monitoring: { alerts: { low_hit_ratio: { threshold: 2 } } }')).toMatch(
      /monitoring\.alerts\.low_hit_ratio\.threshold: expected a fraction/,
    )
    expect(bad('monitoring: { alerts: { high_memory: { max_size: lots } } }')).toMatch(
      /monitoring\.alerts\.high_memory\.max_size: expected a size/,
    )
    expect(
      bad('monitoring: { alerts: { slow_operations: { quantile: 1, threshold: 5ms } } }'),
    ).toMatch(/monitoring\.alerts\.slow_operations\.quantile: must be between 0 and 1/)
    expect(
      bad(
        'monitoring: { alerts: { slow_operations: { quantile: 0.9, threshold: 5ms, operations: [get] } } }',
      ),
    ).toMatch(/monitoring\.alerts\.slow_operations\.operations\.0: expected one of "set"/)
    expect(bad('monitoring: { alerts: { low_hit_ratio: { threshold: 0.5, level: l3 } } }')).toMatch(
      /level: expected one of "overall", "l1", "l2"/,
    )
    expect(bad('monitoring: { alarms: {} }')).toMatch(/monitoring/)
  })
})
