// The dashboard page: a snapshot a second over Server-Sent Events, charts, the latest changes
// with their rollback, and the actor inspector. The bearer token comes from the URL hash
// (#token=...) or the form; the API calls send it as a header, the event stream as ?token=
// (EventSource cannot send headers).
import { ms, percent, timeChart } from '/dashboard/charts.js'

const $ = (id) => document.getElementById(id)
const state = { token: '', source: undefined, changeIds: '' }

/** An element with attributes and text or element children (text is never parsed as HTML). */
function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag)
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, String(value))
  for (const child of children) node.append(child instanceof Node ? child : String(child ?? ''))
  return node
}

function setStatus(kind, text) {
  const status = $('status')
  status.dataset.state = kind
  status.textContent = text
}

function tokenFromHash() {
  const match = /(?:^|&)token=([^&]*)/.exec(location.hash.slice(1))
  return match === null ? '' : decodeURIComponent(match[1])
}

/** A call of the API with the token; throws with the error body's code and message. */
async function api(method, path, body) {
  const headers = { authorization: `Bearer ${state.token}` }
  if (body !== undefined) headers['content-type'] = 'application/json'
  const response = await fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  })
  const json = await response.json().catch(() => ({}))
  if (!response.ok) {
    throw new Error(`${response.status} ${json.code ?? ''}: ${json.message ?? response.statusText}`)
  }
  return json
}

const hitChart = timeChart($('hit-chart'), {
  series: [
    { label: 'L1', stroke: '#0969da' },
    { label: 'L2', stroke: '#8250df' },
    { label: 'record', stroke: '#bf8700' },
    { label: 'overall', stroke: '#1a7f37' },
  ],
  range: [0, 1],
  format: percent,
})
const latencyChart = timeChart($('latency-chart'), {
  series: [
    { label: 'p50', stroke: '#1a7f37' },
    { label: 'p95', stroke: '#bf8700' },
    { label: 'p99', stroke: '#cf222e' },
  ],
  format: ms,
})

const count = (n) => n.toLocaleString('en')
const time = (epochMs) => new Date(epochMs).toLocaleTimeString('en-GB')
const json = (value) => (value === undefined ? '' : JSON.stringify(value))

function renderNumbers(s) {
  $('tiers').textContent = `L1: ${s.tiers.l1} · L2: ${s.tiers.l2} · record: ${s.tiers.record}`
  $('reads').textContent = count(s.hitRatio.total.reads)
  $('reads-rate').textContent = `${count(s.hitRatio.interval.reads)} in the last second`
  $('operations').textContent = count(s.latency.total.count)
  $('evictions').textContent = count(s.evictions.total)
  $('expirations').textContent = `${count(s.evictions.expirations)} expired`
  const wb = s.writeBehind
  $('queue').textContent = count(wb.ready + wb.inFlight)
  $('queue-detail').textContent =
    `${count(wb.ready)} ready, ${count(wb.inFlight)} in flight of ${count(wb.capacity)}`
  const lag = wb.lag.interval.count > 0 ? wb.lag.interval : wb.lag.total
  $('lag').textContent = lag.p95 === null ? '–' : ms(lag.p95)
  $('lag-detail').textContent =
    `${count(wb.flushes)} flushes; p99 ${lag.p99 === null ? '–' : ms(lag.p99)}`
  const circuit = $('circuit')
  circuit.textContent = s.circuit.l2 === 'none' ? 'no L2' : s.circuit.l2
  circuit.className = `circuit-${s.circuit.l2}`
}

function renderAlerts(alerts) {
  const list = $('alerts')
  const items = alerts.map((a) => {
    const labels = Object.entries(a.labels).map(([k, v]) => `${k}=${v}`)
    const text = `${a.name} ${a.state}${labels.length ? ` {${labels.join(', ')}}` : ''}: value ${a.value.toPrecision(3)}, threshold ${a.threshold} (since ${time(a.since)})`
    return el('li', { 'data-state': a.state }, text)
  })
  list.replaceChildren(...(items.length ? items : [el('li', { class: 'muted' }, 'none firing')]))
}

function changeRow(record) {
  const actor = record.entityId.replace(/^actor:/, '')
  const button = el(
    'button',
    { type: 'button', 'data-rollback': record.id },
    'Roll back to before this',
  )
  button.addEventListener('click', () => rollback(record, actor))
  return el(
    'tr',
    { 'data-change-id': record.id, 'data-actor': actor, 'data-version': record.version },
    el('td', {}, time(record.timestamp)),
    el('td', {}, record.entityType),
    el('td', {}, actor),
    el('td', {}, record.version),
    el('td', {}, record.changeType),
    el('td', {}, record.userId ?? record.systemId ?? ''),
    el('td', { class: 'value' }, json(record.newValue)),
    el('td', {}, button),
  )
}

function renderChanges(changes) {
  const ids = changes.map((c) => c.id).join()
  if (ids === state.changeIds) return // unchanged: keep the rows (and a button being clicked)
  state.changeIds = ids
  const newestFirst = [...changes].reverse()
  $('changes').tBodies[0].replaceChildren(...newestFirst.map(changeRow))
}

function render(snapshot) {
  setStatus('live', `live · ${time(snapshot.at)}`)
  renderNumbers(snapshot)
  const seconds = snapshot.at / 1000
  const hits = snapshot.hitRatio.interval
  hitChart.push(seconds, [hits.l1, hits.l2, hits.record, hits.overall])
  const latency = snapshot.latency.interval
  latencyChart.push(seconds, [latency.p50, latency.p95, latency.p99])
  renderAlerts(snapshot.alerts)
  renderChanges(snapshot.changes)
}

async function rollback(record, actor) {
  const action = $('action')
  action.textContent = `rolling actor ${actor} back to version ${record.version - 1}…`
  try {
    const result = await api('POST', `/actors/${encodeURIComponent(actor)}/rollback`, {
      toVersion: record.version - 1,
      entityType: record.entityType,
    })
    action.textContent = result.changed
      ? `actor ${actor} (${record.entityType}) rolled back to version ${record.version - 1}: now version ${result.version}`
      : `actor ${actor} (${record.entityType}) was at that state already`
    $('inspect-id').value = actor
    await inspect(actor)
  } catch (error) {
    action.textContent = `rollback failed: ${error.message}`
  }
}

const ttl = (copy) =>
  copy.ttlMs === undefined
    ? '–'
    : copy.ttlMs === null
      ? 'never'
      : `${(copy.ttlMs / 1000).toFixed(1)} s`

function copyRow(namespace, tier, copy) {
  const cells =
    copy.state === 'present'
      ? [copy.version, ttl(copy), el('td', { class: 'value' }, json(copy.value))]
      : copy.state === 'error'
        ? ['', '', el('td', { class: 'value' }, `${copy.code}: ${copy.message}`)]
        : ['', '', el('td', { class: 'value' }, '')]
  return el(
    'tr',
    { 'data-ns': namespace, 'data-tier': tier, 'data-state': copy.state },
    el('td', {}, tier),
    el('td', {}, copy.state),
    ...cells.map((c) => (c instanceof Node ? c : el('td', {}, c))),
  )
}

async function inspect(id) {
  const target = $('inspector')
  target.replaceChildren(el('p', { class: 'muted' }, `inspecting actor ${id}…`))
  try {
    const data = await api('GET', `/actors/${encodeURIComponent(id)}/inspect`)
    const sections = Object.entries(data.namespaces).map(([namespace, ns]) => {
      const rows = [
        copyRow(namespace, 'cache', ns.cache),
        ...Object.entries(ns.tiers).map(([tier, copy]) => copyRow(namespace, tier, copy)),
      ]
      const head = el(
        'tr',
        {},
        ...['where', 'state', 'version', 'TTL', 'value'].map((h) => el('th', {}, h)),
      )
      return [
        el('h3', {}, namespace),
        el('table', { 'data-ns': namespace }, el('thead', {}, head), el('tbody', {}, ...rows)),
      ]
    })
    target.replaceChildren(
      el('p', { class: 'muted' }, `${data.key} at ${time(Date.now())}`),
      ...sections.flat(),
    )
  } catch (error) {
    target.replaceChildren(el('p', { class: 'muted' }, `inspection failed: ${error.message}`))
  }
}

async function connect(token) {
  state.source?.close()
  state.token = token
  state.changeIds = ''
  setStatus('connecting', 'connecting…')
  const url = `/dashboard/events?token=${encodeURIComponent(token)}`
  // EventSource does not say why a stream was refused: ask once with fetch, then let it go
  const probe = await fetch(url)
  if (!probe.ok) {
    const body = await probe.json().catch(() => ({}))
    setStatus('error', `refused: ${body.message ?? probe.statusText}`)
    return
  }
  await probe.body?.cancel()
  const source = new EventSource(url)
  state.source = source
  source.addEventListener('snapshot', (event) => render(JSON.parse(event.data)))
  source.addEventListener('error', () => setStatus('error', 'stream lost: reconnecting…'))
}

$('token-form').addEventListener('submit', (event) => {
  event.preventDefault()
  const token = $('token').value.trim()
  if (token !== '') void connect(token)
})
$('inspect-form').addEventListener('submit', (event) => {
  event.preventDefault()
  void inspect($('inspect-id').value.trim())
})

const initial = tokenFromHash()
if (initial !== '') {
  $('token').value = initial
  void connect(initial)
}
