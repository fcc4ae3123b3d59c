import { readFile } from 'node:fs/promises'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import type { Principal } from '@actor-cache/security'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import { requireRole } from '../../access.js'
import { DashboardSampler, type Snapshot } from '../../dashboard/sampler.js'
import type { Stack } from '../../stack.js'
import { principalOf } from '../auth.js'
import { HttpError } from '../errors.js'

/** The page's own files (`apps/demo-server/dashboard/`, beside `src/` and `dist/`). */
const PAGE_DIR = new URL('../../../dashboard/', import.meta.url).pathname
/** uPlot's browser build, served from node_modules: no bundler, no copy in the repository. */
const UPLOT_DIR = dirname(createRequire(import.meta.url).resolve('uplot'))

const JS = 'text/javascript; charset=utf-8'
const CSS = 'text/css; charset=utf-8'

/** Route → file and type. A fixed list: nothing of the URL ever becomes a path. */
const ASSETS: Record<string, [file: string, type: string]> = {
  '/dashboard': [join(PAGE_DIR, 'index.html'), 'text/html; charset=utf-8'],
  '/dashboard/app.js': [join(PAGE_DIR, 'app.js'), JS],
  '/dashboard/charts.js': [join(PAGE_DIR, 'charts.js'), JS],
  '/dashboard/style.css': [join(PAGE_DIR, 'style.css'), CSS],
  '/dashboard/vendor/uPlot.esm.js': [join(UPLOT_DIR, 'uPlot.esm.js'), JS],
  '/dashboard/vendor/uPlot.min.css': [join(UPLOT_DIR, 'uPlot.min.css'), CSS],
}

// uPlot sizes its elements through the style attribute: styles need 'unsafe-inline'
const CSP =
  "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

interface StreamQuery {
  token?: string
}

/** The caller of the event stream: `?token=` (EventSource cannot send headers) or the header. */
function streamPrincipal(
  request: FastifyRequest<{ Querystring: StreamQuery }>,
  stack: Stack,
): Principal {
  const tokens = stack.settings.demo.tokens
  const token = request.query.token
  if (token === undefined) {
    if (request.headers.authorization !== undefined) return principalOf(request, tokens)
    throw new HttpError(401, 'E_UNAUTHENTICATED', 'missing token: add ?token=<token> to the URL')
  }
  const owner = tokens.get(token)
  if (owner === undefined) throw new HttpError(401, 'E_UNAUTHENTICATED', 'unknown token')
  return { id: owner.id, roles: [owner.role] }
}

/** The request line as logged: the `token` parameter never reaches the log. */
const redactedRequest = (request: FastifyRequest) => ({
  method: request.method,
  url: request.url.replace(/([?&]token=)[^&]*/g, '$1[REDACTED]'),
})

/**
 * The dashboard: its page and assets (no token: the page asks for one), and its event stream
 * `GET /dashboard/events`, a snapshot of the cache once a second as Server-Sent Events, for the
 * roles that may read the audit trail (it carries the newest change records). Open streams are
 * ended when the server closes, so closing never waits on a page left open.
 */
export async function dashboardRoutes(
  app: FastifyInstance,
  options: { stack: Stack },
): Promise<void> {
  const { stack } = options
  const sampler = new DashboardSampler(stack, {
    onError: (error) => app.log.warn({ err: error }, 'dashboard snapshot failed'),
  })
  const streams = new Set<() => void>()
  app.addHook('preClose', (done) => {
    sampler.close()
    for (const end of streams) end()
    done()
  })

  for (const [url, [file, type]] of Object.entries(ASSETS)) {
    app.get(url, { schema: { hide: true } }, async (_request, reply) =>
      reply
        .type(type)
        .header('cache-control', 'no-cache')
        .header('content-security-policy', CSP)
        .header('x-content-type-options', 'nosniff')
        .send(await readFile(file)),
    )
  }

  app.get<{ Querystring: StreamQuery }>(
    '/dashboard/events',
    {
      logSerializers: { req: redactedRequest },
      schema: {
        tags: ['operations'],
        summary:
          'Server-Sent Events: a dashboard snapshot once a second (token in ?token= or the header)',
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: { token: { type: 'string', maxLength: 200 } },
        },
      },
    },
    async (request, reply) => {
      const principal = streamPrincipal(request, stack)
      requireRole(principal, stack.settings.demo.audit.readRoles, 'watch the dashboard')
      reply.hijack()
      const res = reply.raw
      res.writeHead(200, {
        'content-type': 'text/event-stream; charset=utf-8',
        'cache-control': 'no-store',
        // the socket goes with the stream: nothing is left for server.close() to wait on
        connection: 'close',
        'x-accel-buffering': 'no',
      })
      res.write('retry: 2000\n\n')
      const send = (snapshot: Snapshot) => {
        res.write(`event: snapshot\ndata: ${JSON.stringify(snapshot)}\n\n`)
      }
      const end = () => res.end()
      streams.add(end)
      const unsubscribe = sampler.subscribe(send)
      res.on('close', () => {
        unsubscribe()
        streams.delete(end)
      })
    },
  )
}
