import { expect } from 'vitest'

/** The error `work` rejects with, checked to be an instance of `type`. */
export async function rejection<E extends Error>(
  work: Promise<unknown>,
  type: abstract new (...args: never[]) => E,
): Promise<E> {
  const error = await work.then(
    () => undefined,
    (e: unknown) => e,
  )
  expect(error).toBeInstanceOf(type)
  return error as E
}
