// An entity tag of a list: optional weakness, then the quoted opaque tag (RFC 9110 §8.8.3). The
// scan skips whatever is not one, so a malformed list matches only its well-formed members.
const ENTITY_TAG = /(?:W\/)?("[^"]*")/g

/** The opaque tag of `etag` (`W/"3.1.2"` → `"3.1.2"`), what weak comparison compares. */
const opaque = (etag: string): string => (etag.startsWith('W/') ? etag.slice(2) : etag)

/**
 * Whether an `If-None-Match` header matches the current `etag` of a GET, by weak comparison
 * (RFC 9110 §13.1.2): `*`, or a listed entity tag whose opaque tag is the same, weak or strong.
 * True means the caller's copy is current: answer 304. A missing or malformed header matches
 * nothing, so the full response is sent.
 */
export function ifNoneMatch(header: string | readonly string[] | undefined, etag: string): boolean {
  if (header === undefined) return false
  const text = typeof header === 'string' ? header : header.join(', ')
  if (text.trim() === '*') return true
  const wanted = opaque(etag)
  for (const match of text.matchAll(ENTITY_TAG)) {
    if (match[1] === wanted) return true
  }
  return false
}
