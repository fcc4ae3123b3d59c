/** Redis Cluster hash slot of a key (CRC16/XMODEM of the key or its `{hash tag}`, mod 16384). */

const TABLE = new Uint16Array(256)
for (let i = 0; i < 256; i++) {
  let crc = i << 8
  for (let j = 0; j < 8; j++)
    crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff
  TABLE[i] = crc
}

const encoder = new TextEncoder()

function crc16(bytes: Uint8Array, start: number, end: number): number {
  let crc = 0
  for (let i = start; i < end; i++) {
    crc = ((crc << 8) & 0xffff) ^ (TABLE[((crc >> 8) ^ (bytes[i] as number)) & 0xff] as number)
  }
  return crc
}

/** The cluster slot (0–16383) that holds `key`. */
export function keySlot(key: string): number {
  const bytes = encoder.encode(key)
  const open = bytes.indexOf(0x7b) // {
  if (open !== -1) {
    const close = bytes.indexOf(0x7d, open + 1) // }
    if (close > open + 1) return crc16(bytes, open + 1, close) & 16383
  }
  return crc16(bytes, 0, bytes.length) & 16383
}

/** Groups `items` by the slot of `keyOf(item)`, keeping input order inside each group. */
export function groupBySlot<T>(items: readonly T[], keyOf: (item: T) => string): T[][] {
  const groups = new Map<number, T[]>()
  for (const item of items) {
    const slot = keySlot(keyOf(item))
    const g = groups.get(slot)
    if (g) g.push(item)
    else groups.set(slot, [item])
  }
  return [...groups.values()]
}
