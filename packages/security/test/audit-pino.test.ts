/**
 * The access audit and log masking with a real pino logger writing JSON lines to memory: what a
 * user's log file would hold, read back as raw text.
 */
import { Writable } from 'node:stream'
import { createMemCache } from '@actor-cache/memcache'
import { createTieredCache, type TieredCache } from '@actor-cache/strategies'
import fc from 'fast-check'
import { type LoggerOptions, pino } from 'pino'
import { describe, expect, it } from 'vitest'
import {
  type AuditOptions,
  CENSOR,
  guardCache,
  redactPaths,
  runAs,
  type SensitiveFields,
} from '../src/index.js'
import { assertReplayable } from './helpers.js'

const policy = {
  roles: {
    support: [{ namespaces: 'actors', operations: ['read' as const] }],
    server: [{ namespaces: '*', operations: '*' as const }],
  },
}
const sensitive = { actors: ['email', 'profile.phone'], tokens: 'value' } as const
const SECRETS = ['ann@example.com', '+1-555-0100', 'tok_5ecret'] as const
const SERVER = { id: 'svc-1', roles: ['server'] }
const SUPPORT = { id: 'agent-7', roles: ['support'] }

interface LogLine {
  level: number
  msg: string
  time: number
  audit?: {
    principal: string
    roles: string[]
    operation: string
    method: string
    namespace: string
    keys?: string[]
    outcome: string
    code?: string
    time: number
    durationMs?: number
    value?: unknown
  }
  [field: string]: unknown
}

/** A pino logger writing to memory; `raw()` is every byte it wrote, `lines()` them parsed. */
function memoryPino(options: LoggerOptions = {}) {
  const chunks: string[] = []
  const destination = new Writable({
    write(chunk: Buffer | string, _encoding, done) {
      chunks.push(String(chunk))
      done()
    },
  })
  const logger = pino(options, destination)
  const raw = () => chunks.join('')
  const lines = () =>
    raw()
      .split('\n')
      .filter((line) => line !== '')
      .map((line) => JSON.parse(line) as LogLine)
  return { logger, raw, lines }
}

/** pino options that redact the sensitive fields, as the README tells users to configure it. */
const redacting = (fields: SensitiveFields): LoggerOptions => ({
  redact: { paths: redactPaths(fields), censor: CENSOR },
})

async function withCache<T>(fn: (c: TieredCache) => Promise<T>): Promise<T> {
  const l1 = createMemCache()
  const cache = createTieredCache({ l1 })
  try {
    return await fn(cache)
  } finally {
    await cache.close()
    await l1.close()
  }
}

describe('access audit through a real pino logger', () => {
  it('writes JSON lines with who, what and outcome; pino redacts the sensitive fields', async () => {
    const log = memoryPino(redacting(sensitive))
    await withCache(async (cache) => {
      // no `sensitive` given to the audit: only the generated redact paths mask the values
      const g = guardCache(cache, { policy, audit: { sink: log.logger, includeValues: true } })
      const actors = g.as(SERVER).namespace('actors')
      await actors.set('actor:1', {
        name: 'Ann',
        email: 'ann@example.com',
        profile: { phone: '+1-555-0100', level: 2 },
      })
      await g.as(SERVER).namespace('tokens').set('session:1', 'tok_5ecret')
      await runAs(SUPPORT, async () => {
        expect(await g.namespace('actors').get('actor:1')).toMatchObject({ name: 'Ann' })
        await expect(g.namespace('actors').delete('actor:1')).rejects.toMatchObject({
          code: 'E_FORBIDDEN',
        })
      })
      await expect(actors.set('actor:2', () => 1)).rejects.toMatchObject({
        code: 'E_SERIALIZATION',
      })
    })

    const lines = log.lines()
    expect(
      lines.map((l) => [
        l.level,
        l.msg,
        l.audit?.principal,
        l.audit?.roles,
        l.audit?.operation,
        l.audit?.method,
        l.audit?.namespace,
        l.audit?.keys,
        l.audit?.outcome,
        l.audit?.code,
      ]),
    ).toEqual([
      [
        30,
        'actor-cache access',
        'svc-1',
        ['server'],
        'write',
        'set',
        'actors',
        ['actor:1'],
        'ok',
        undefined,
      ],
      [
        30,
        'actor-cache access',
        'svc-1',
        ['server'],
        'write',
        'set',
        'tokens',
        ['session:1'],
        'ok',
        undefined,
      ],
      [
        30,
        'actor-cache access',
        'agent-7',
        ['support'],
        'read',
        'get',
        'actors',
        ['actor:1'],
        'ok',
        undefined,
      ],
      [
        40,
        'actor-cache access refused',
        'agent-7',
        ['support'],
        'delete',
        'delete',
        'actors',
        ['actor:1'],
        'denied',
        'E_FORBIDDEN',
      ],
      [
        30,
        'actor-cache access',
        'svc-1',
        ['server'],
        'write',
        'set',
        'actors',
        ['actor:2'],
        'error',
        'E_SERIALIZATION',
      ],
    ])
    // the pino path prefixes list 'value' for the 'tokens' namespace, so every value is censored
    // whole; the field-level paths are checked below with a config without 'value' namespaces
    expect(lines.map((l) => l.audit?.value)).toEqual([CENSOR, CENSOR, undefined, undefined, CENSOR])
    for (const l of lines) {
      expect(typeof l.time).toBe('number')
      expect(typeof l.audit?.time).toBe('number')
    }
    expect(lines[3]?.audit?.durationMs).toBeUndefined()
    expect(lines[0]?.audit?.durationMs).toBeGreaterThanOrEqual(0)
  })

  it('redacts exactly the configured fields of a value and keeps the rest', async () => {
    const fields = { actors: ['email', 'profile.phone'] } as const
    const log = memoryPino(redacting(fields))
    await withCache(async (cache) => {
      const g = guardCache(cache, { policy, audit: { sink: log.logger, includeValues: true } })
      await g
        .as(SERVER)
        .namespace('actors')
        .set('actor:1', {
          name: 'Ann',
          email: 'ann@example.com',
          profile: { phone: '+1-555-0100', level: 2 },
        })
    })
    // the application's own logs of a value, under the other generated prefixes
    const value = { name: 'Bob', email: 'bob@example.com', profile: { phone: '+1-555-0199' } }
    log.logger.info({ value }, 'loaded')
    log.logger.info({ actor: { value } }, 'loaded')

    expect(
      log.lines().map((l) => l.audit?.value ?? l.value ?? (l.actor as { value: unknown }).value),
    ).toEqual([
      { name: 'Ann', email: CENSOR, profile: { phone: CENSOR, level: 2 } },
      { name: 'Bob', email: CENSOR, profile: { phone: CENSOR } },
      { name: 'Bob', email: CENSOR, profile: { phone: CENSOR } },
    ])
    expect(value.email).toBe('bob@example.com') // pino redacts its copy, not the caller's object
  })
})

/** Writes, reads, refusals and failures that carry every secret of {@link SECRETS}. */
async function sensitiveWorkload(audit: AuditOptions, logger: { info(o: object): void }) {
  await withCache(async (cache) => {
    const g = guardCache(cache, { policy, audit })
    const actors = g.as(SERVER).namespace('actors')
    const ann = { name: 'Ann', email: 'ann@example.com', profile: { phone: '+1-555-0100' } }
    await actors.set('actor:1', ann)
    await actors.set('actor:2', { ...ann, name: 'Ann again', onLoad: () => 1 }).catch(() => {})
    await actors.getOrSet('actor:3', async () => ann)
    await g.as(SERVER).namespace('tokens').set('session:1', 'tok_5ecret')
    await g.as(SERVER).namespace('tokens').set('session:2', { token: 'tok_5ecret' })
    await runAs(SUPPORT, async () => {
      await g.namespace('actors').get('actor:1')
      await g
        .namespace('actors')
        .set('actor:1', ann)
        .catch(() => {})
    })
    logger.info({ value: await actors.get('actor:1') })
  })
}

describe('no sensitive value reaches the log output in plaintext', () => {
  // each masking layer alone must suffice, so a broken layer fails its own case; pino's paths
  // cannot tell namespaces apart, so its 'value' paths (for `tokens`) censor every logged value
  it.each([
    ['the audit masks (sensitive)', { sensitive }, {}, true],
    ['pino redacts (redactPaths)', {}, redacting(sensitive), false],
    ['both', { sensitive }, redacting(sensitive), false],
  ] as const)('%s', async (_, auditOptions, loggerOptions, fieldsInClear) => {
    const log = memoryPino(loggerOptions)
    // the application's own log of a read value goes through pino only
    const appLogger = memoryPino(redacting({ actors: sensitive.actors }))
    await sensitiveWorkload(
      { sink: log.logger, includeValues: true, ...auditOptions },
      appLogger.logger,
    )
    const raw = log.raw()
    expect(log.lines().map((l) => [l.audit?.method, l.audit?.outcome])).toEqual([
      ['set', 'ok'],
      ['set', 'error'],
      ['getOrSet', 'ok'],
      ['set', 'ok'],
      ['set', 'ok'],
      ['get', 'ok'],
      ['set', 'denied'],
      ['get', 'ok'],
    ])
    // the values were logged (not left out), masked
    expect(raw.split(CENSOR).length - 1).toBeGreaterThanOrEqual(4)
    expect(raw.includes('"name":"Ann"')).toBe(fieldsInClear)
    expect(appLogger.raw()).toContain('"name":"Ann"')
    for (const secret of [...SECRETS, ...SECRETS.map((s) => JSON.stringify(s))]) {
      expect(raw).not.toContain(secret)
      expect(appLogger.raw()).not.toContain(secret)
    }
  })

  it('for any field names and nesting: redactPaths either refuses the config or pino hides every secret', async () => {
    // names drawn from characters that pino's path syntax treats specially, and ordinary ones
    const name = fc
      .string({
        unit: fc.constantFrom(
          'a',
          'b',
          'Z',
          '_',
          '$',
          '1',
          '-',
          ' ',
          '"',
          "'",
          '[',
          ']',
          ',',
          '*',
          'é',
          ':',
        ),
        minLength: 1,
        maxLength: 6,
      })
      .filter((n) => n !== '__proto__' && n !== '*')
    const fieldPath = fc.array(name, { minLength: 1, maxLength: 3 })
    await assertReplayable(
      fc.asyncProperty(fc.array(fieldPath, { minLength: 1, maxLength: 4 }), async (paths) => {
        // a value with a distinct secret at each path; paths that collide with earlier ones are dropped
        const value: Record<string, unknown> = { visible: 'shown' }
        const kept: string[][] = []
        for (const path of paths) {
          let node: Record<string, unknown> = value
          let free = true
          for (const part of path.slice(0, -1)) {
            if (!Object.hasOwn(node, part)) node[part] = {}
            const next = node[part]
            if (typeof next !== 'object' || next === null || part === 'visible') {
              free = false
              break
            }
            node = next as Record<string, unknown>
          }
          const leaf = path.at(-1) as string
          if (!free || Object.hasOwn(node, leaf) || (node === value && leaf === 'visible')) continue
          node[leaf] = `SECRET${kept.length}x`
          kept.push(path)
        }
        const fields = { actors: kept.map((p) => p.join('.')) }
        let paths_: string[]
        try {
          paths_ = redactPaths(fields)
        } catch (error) {
          // refused only for names pino's path syntax cannot carry
          expect(error).toMatchObject({ code: 'E_INVALID_OPTION' })
          expect(
            kept.some((p) =>
              p.some((n) => /[[\],]/.test(n) || (n.includes('"') && n.includes("'"))),
            ),
          ).toBe(true)
          return
        }
        const log = memoryPino({ redact: { paths: paths_, censor: CENSOR } })
        log.logger.info({ value })
        log.logger.info({ audit: { value } })
        log.logger.info({ actor: { value } })
        const raw = log.raw()
        expect(raw.match(/shown/g)).toHaveLength(3)
        for (let i = 0; i < kept.length; i++) expect(raw).not.toContain(`SECRET${i}x`)
      }),
      200,
    )
  })
})

describe('sampling per operation with a real pino logger', () => {
  it('records each operation at its own rate and refusals at the refused rate', async () => {
    const log = memoryPino()
    let draws = 0
    await withCache(async (cache) => {
      const g = guardCache(cache, {
        policy,
        audit: {
          sink: log.logger,
          // write unset: 1; every other draw falls under 0.5
          sample: { read: 0, delete: 0.5, refused: 1 },
          random: () => (draws++ % 2) / 2,
        },
      })
      const actors = g.as(SERVER).namespace('actors')
      for (let i = 0; i < 3; i++) await actors.set(`k${i}`, i)
      for (let i = 0; i < 4; i++) await actors.get(`k${i}`)
      await actors.has('k0')
      await actors.getEntry('k0')
      for (let i = 0; i < 4; i++) await actors.delete(`k${i}`)
      await actors.invalidate('k0')
      // a refused read is recorded although reads are not: refusals have their own rate
      await expect(g.as(SUPPORT).namespace('tokens').get('t')).rejects.toThrow()
      await expect(g.as(SUPPORT).namespace('actors').set('k', 1)).rejects.toThrow()
    })
    const lines = log.lines()
    expect(lines.map((l) => [l.level, l.audit?.method, l.audit?.outcome])).toEqual([
      [30, 'set', 'ok'],
      [30, 'set', 'ok'],
      [30, 'set', 'ok'],
      [30, 'delete', 'ok'],
      [30, 'delete', 'ok'],
      [30, 'invalidate', 'ok'],
      [40, 'get', 'denied'],
      [40, 'set', 'denied'],
    ])
    expect(lines.filter((l) => l.audit?.method === 'delete').map((l) => l.audit?.keys)).toEqual([
      ['k0'],
      ['k2'],
    ])
  })

  it('a refused rate of 0 drops refusals while their operation is recorded in full', async () => {
    const log = memoryPino()
    await withCache(async (cache) => {
      const g = guardCache(cache, {
        policy,
        audit: { sink: log.logger, sample: { write: 1, read: 1, refused: 0 } },
      })
      await g.as(SERVER).namespace('actors').set('k', 1)
      await g.as(SUPPORT).namespace('actors').get('k')
      await expect(g.as(SUPPORT).namespace('actors').set('k', 2)).rejects.toThrow()
      await expect(g.as(SUPPORT).namespace('tokens').get('k')).rejects.toThrow()
    })
    expect(log.lines().map((l) => [l.level, l.audit?.principal, l.audit?.method])).toEqual([
      [30, 'svc-1', 'set'],
      [30, 'agent-7', 'get'],
    ])
  })
})
