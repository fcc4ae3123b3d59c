import type { ChangeQuery, ChangeRecord } from '@actor-cache/core'

/** What the tail reads: the state tracker's `query` (oldest first, a page at a time). */
export interface ChangeQuerySource {
  query(query: ChangeQuery): Promise<{ records: ChangeRecord[]; nextCursor?: string }>
}

/** Page size of the reads; the first one walks the whole log in pages this big, once. */
const PAGE = 1000

/**
 * The newest records of the change log. The log pages oldest first only, so the tail keeps the
 * cursor of the page that ends the log: each read starts there and sees the last `size` records
 * again plus whatever was appended since. When that page grows past `size`, one more query of
 * the surplus moves the cursor up, so a read stays one small page however long the log is.
 */
export class ChangeTail {
  readonly #source: ChangeQuerySource
  readonly #size: number
  #cursor: string | undefined

  constructor(source: ChangeQuerySource, size: number) {
    this.#source = source
    this.#size = size
  }

  /** The newest records (at most `size`), oldest first. */
  async latest(): Promise<ChangeRecord[]> {
    let cursor = this.#cursor
    let records: ChangeRecord[] = []
    // bounded: a log that grows faster than this is read is shown as of the last page reached
    for (let pages = 0; pages < 100; pages++) {
      const page = await this.#source.query(this.#at(cursor, PAGE))
      if (page.nextCursor === undefined) {
        records = page.records
        break
      }
      cursor = page.nextCursor
    }
    const surplus = records.length - this.#size
    if (surplus > 0) {
      const skipped = await this.#source.query(this.#at(cursor, surplus))
      if (skipped.nextCursor !== undefined) cursor = skipped.nextCursor
      records = records.slice(surplus)
    }
    this.#cursor = cursor
    return records
  }

  #at(cursor: string | undefined, limit: number): ChangeQuery {
    return cursor === undefined ? { limit } : { limit, cursor }
  }
}
