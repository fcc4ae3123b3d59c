import pg from 'pg'

/**
 * A connected `pg` client at `url` for the `suite` benchmark (it creates and drops the run's
 * schema), or an error saying what to start. The caller ends it.
 */
export async function connectPostgresAdmin(url: string, suite: string): Promise<pg.Client> {
  const admin = new pg.Client({ connectionString: url, connectionTimeoutMillis: 3000 })
  try {
    await admin.connect()
  } catch (error) {
    throw new Error(
      `the ${suite} benchmark needs PostgreSQL at ${url} (start it, or set DATABASE_URL): ${(error as Error).message}`,
    )
  }
  return admin
}
