import semver from 'semver'
import { run } from './command.js'
import type { PackedPackage } from './pack.js'

/** The versions one peer dependency is installed at. */
export interface PeerVersions {
  readonly name: string
  /** Every range the packages give, joined with ` && `. */
  readonly range: string
  /** Lowest published version every range allows. */
  readonly lowest: string
  /** Highest published version every range allows (no prereleases). */
  readonly latest: string
  /** Set when the ranges' floor (`semver.minVersion`) is not a published version. */
  readonly note?: string
}

/** A peer the test does not install, and why. */
export interface SkippedPeer {
  readonly name: string
  readonly range: string
  readonly reason: string
}

/**
 * The peers of `packages` at the lowest and latest published versions their ranges allow:
 * every required peer, and the optional ones `wanted` names (the others are returned as skipped).
 */
export async function resolvePeers(
  packages: readonly PackedPackage[],
  wanted: ReadonlyMap<string, string>,
  cwd: string,
): Promise<{ peers: PeerVersions[]; skipped: SkippedPeer[] }> {
  const ranges = new Map<string, { ranges: string[]; optional: boolean; owners: string[] }>()
  for (const pkg of packages) {
    for (const [name, range] of Object.entries(pkg.peerDependencies)) {
      const entry = ranges.get(name) ?? { ranges: [], optional: true, owners: [] }
      entry.ranges.push(range)
      entry.owners.push(pkg.name)
      entry.optional &&= pkg.optionalPeers.has(name)
      ranges.set(name, entry)
    }
  }
  const sorted = [...ranges].sort(([a], [b]) => a.localeCompare(b))
  // one registry lookup per installed peer, all at once
  const lookups = new Map(
    sorted
      .filter(([name, entry]) => !entry.optional || wanted.has(name))
      .map(([name]) => [name, publishedVersions(name, cwd)]),
  )
  const peers: PeerVersions[] = []
  const skipped: SkippedPeer[] = []
  for (const [name, entry] of sorted) {
    const range = [...new Set(entry.ranges)].join(' && ')
    if (entry.optional && !wanted.has(name)) {
      skipped.push({
        name,
        range,
        reason: `optional peer of ${entry.owners.join(', ')}, not used by the program`,
      })
      continue
    }
    const published = await lookups.get(name)!
    const allowed = published
      .filter((v) => entry.ranges.every((r) => semver.satisfies(v, r)))
      .sort(semver.compare)
    const lowest = allowed[0]
    const latest = allowed.at(-1)
    if (lowest === undefined || latest === undefined) {
      throw new Error(
        `${name}: no published version satisfies ${range} (${entry.owners.join(', ')})`,
      )
    }
    const floor = entry.ranges
      .map((r) => semver.minVersion(r)?.version)
      .filter((v): v is string => v !== undefined)
      .sort(semver.compare)
      .at(-1)
    const note =
      floor !== undefined && floor !== lowest
        ? `the range's floor ${floor} is not published; its lowest published version is ${lowest}`
        : undefined
    peers.push({ name, range, lowest, latest, ...(note ? { note } : {}) })
  }
  return { peers, skipped }
}

async function publishedVersions(name: string, cwd: string): Promise<string[]> {
  const { stdout } = await run('npm', ['view', name, 'versions', '--json'], { cwd })
  const parsed = JSON.parse(stdout) as string[] | string
  return typeof parsed === 'string' ? [parsed] : parsed
}
