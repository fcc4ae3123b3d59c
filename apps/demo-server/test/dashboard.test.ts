import { existsSync } from 'node:fs'
import { mkdir, readFile } from 'node:fs/promises'
import { type Browser, chromium, type Page } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { DemoServer } from '../src/app.js'
import { as, startTestServer, tempDir } from './helpers.js'

/** Debian's Chromium, driven by playwright-core (which downloads no browser of its own). */
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium'
const ARTIFACTS = new URL('../test-artifacts/', import.meta.url).pathname
const SCREENSHOT = `${ARTIFACTS}dashboard.png`
const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])

let server: DemoServer
let browser: Browser
let removeDir: () => Promise<void>

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) {
    throw new Error(
      `the dashboard test drives headless Chromium at ${CHROMIUM}, which is missing: ` +
        'install it with `apt-get install chromium` (Debian; .ci/run does this), or set CHROMIUM_PATH',
    )
  }
  const dir = await tempDir()
  removeDir = dir.remove
  server = await startTestServer(dir.path, { seedActors: 20 })
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  })
})

afterAll(async () => {
  await browser?.close()
  await server?.close()
  await removeDir?.()
})

interface ActorBody {
  version: number
  primaryCore: { strength: number }
}

const api = async (method: string, path: string, body?: object): Promise<ActorBody> => {
  const response = await fetch(`${server.url}${path}`, {
    method,
    headers: { ...as('gm'), ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  })
  expect(response.status, `${method} ${path}`).toBe(200)
  return (await response.json()) as ActorBody
}

/** The number an `<output>` of the page shows (`1,234` → 1234). */
const shown = async (page: Page, id: string): Promise<number> =>
  Number((await page.locator(`#${id}`).textContent())?.replaceAll(',', ''))

describe('the dashboard in headless Chromium', () => {
  it('shows an update and the metrics moving, rolls it back and inspects the old value', async () => {
    const page = await browser.newPage({ viewport: { width: 1280, height: 1600 } })
    const problems: string[] = []
    page.on('pageerror', (error) => problems.push(`page error: ${error.message}`))
    page.on('console', (m) => {
      if (m.type() === 'error') problems.push(`console: ${m.text()}`)
    })
    await page.goto(`${server.url}/dashboard#token=demo-admin-token`)
    await page.locator('#status[data-state="live"]').waitFor()
    // the seeded creates are in the table already
    await page.locator('#changes tbody tr[data-actor="20"][data-version="1"]').waitFor()
    const operationsBefore = await shown(page, 'operations')

    const before = (await api('GET', '/actors/7')).primaryCore
    const strength = before.strength + 111
    const updated = await api('PATCH', '/actors/7', { primaryCore: { strength } })
    expect(updated.version).toBe(2)
    // reads for the charts: computed on the first read, L1 hits after
    for (let round = 0; round < 3; round++) {
      for (const id of [1, 2, 3, 4, 5, 7]) await api('GET', `/actors/${id}/derived`)
    }

    const row = page.locator('#changes tbody tr[data-actor="7"][data-version="2"]')
    await row.locator('td.value', { hasText: `"strength":${strength}` }).waitFor()
    await expect
      .poll(() => shown(page, 'operations'), { timeout: 30_000 })
      .toBeGreaterThan(operationsBefore)

    await row.locator('button[data-rollback]').click()
    const old = `"strength":${before.strength}`
    const inspected = (tier: string) =>
      page.locator(`#inspector tr[data-ns="primary_core"][data-tier="${tier}"]`)
    await inspected('record').locator('td.value', { hasText: old }).waitFor()
    await inspected('cache').locator('td.value', { hasText: old }).waitFor()
    expect(await inspected('record').getAttribute('data-state')).toBe('present')
    expect(await inspected('record').locator('td').nth(2).textContent()).toBe('3')
    expect((await api('GET', '/actors/7')).primaryCore.strength).toBe(before.strength)
    // the rollback is a new change, logged with the caller as author
    const rollbackRow = page.locator('#changes tbody tr[data-actor="7"][data-version="3"]')
    await rollbackRow.locator('td', { hasText: 'admin-1' }).waitFor()

    await mkdir(ARTIFACTS, { recursive: true })
    await page.screenshot({ path: SCREENSHOT, fullPage: true })
    const png = await readFile(SCREENSHOT)
    expect(png.subarray(0, 8).equals(PNG_SIGNATURE)).toBe(true)
    expect(png.length).toBeGreaterThan(20_000)
    expect(problems).toEqual([])
    await page.close()
  })
})
