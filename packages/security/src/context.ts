import { AsyncLocalStorage } from 'node:async_hooks'
import { checkPrincipal, type Principal } from './policy.js'

const storage = new AsyncLocalStorage<Principal>()

/**
 * Runs `fn` with `principal` as the caller of every guarded cache call inside it (and in every
 * promise and callback it starts): set it once per request.
 * @throws {InvalidOptionError} for a malformed principal, before `fn` runs
 */
export function runAs<T>(principal: Principal, fn: () => T): T {
  return storage.run(checkPrincipal(principal), fn)
}

/** The principal set by the enclosing {@link runAs}, if any. */
export function currentPrincipal(): Principal | undefined {
  return storage.getStore()
}
