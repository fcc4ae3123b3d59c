/** The actor (or document) a request names does not exist. */
export class NotFoundError extends Error {
  readonly code = 'E_NOT_FOUND'
  constructor(what: string) {
    super(`${what} not found`)
    this.name = 'NotFoundError'
  }
}
