import { readFile } from 'node:fs/promises'
import { parseCacheConfigYaml } from '@actor-cache/core'
import { describe, expect, it } from 'vitest'
import { prometheusAlertRules } from '../src/index.js'
import { promtool } from './helpers.js'

const fixture = (name: string) => readFile(new URL(`./fixtures/${name}`, import.meta.url), 'utf8')

describe('generated Prometheus alerting rules', () => {
  it('pass promtool check rules and the promtool test rules fixtures', async () => {
    const { monitoring } = parseCacheConfigYaml(await fixture('monitoring.yaml'))
    const rules = prometheusAlertRules(monitoring!)
    const files = { 'rules.yml': rules, 'tests.yml': await fixture('alert-rules.test.yml') }
    const check = await promtool(() => ['check', 'rules', 'rules.yml'], files)
    expect(check.output).toMatch(/SUCCESS: 4 rules found/)
    expect(check.code).toBe(0)
    const tests = await promtool(() => ['test', 'rules', 'tests.yml'], files)
    expect(tests.output).toMatch(/SUCCESS/)
    expect(tests.code).toBe(0)
  })

  it('follow the prefix and leave out alerts the block does not set', async () => {
    const { monitoring } = parseCacheConfigYaml(
      'monitoring: { alerts: { high_memory: { max_size: 1MB } } }',
    )
    const rules = prometheusAlertRules(monitoring!, { prefix: 'game_', severity: 'page' })
    expect(rules).toContain('expr: "game_l1_bytes > 1048576"')
    expect(rules).toContain('severity: "page"')
    expect(rules).not.toContain('ActorCacheLowHitRatio')
    const files = { 'rules.yml': rules }
    expect((await promtool(() => ['check', 'rules', 'rules.yml'], files)).code).toBe(0)
  })
})
