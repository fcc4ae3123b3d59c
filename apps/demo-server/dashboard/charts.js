// Time-series charts of the dashboard, drawn with uPlot (served from node_modules by the app).
import uPlot from '/dashboard/vendor/uPlot.esm.js'

/** Points kept per chart: two minutes at one snapshot a second. */
const KEEP = 120

/**
 * A line chart over time in `element`. `series`: [{ label, stroke }]; `range`: fixed y range
 * ([min, max]) or none to fit the data; `format`: how a y value is written in the legend.
 * Returns `push(seconds, values)`, which appends one point per series (null: a gap).
 */
export function timeChart(element, { series, range, format }) {
  const data = [[], ...series.map(() => [])]
  const value = (_u, v) => (v === null || v === undefined ? '–' : format(v))
  const chart = new uPlot(
    {
      width: Math.max(320, element.clientWidth),
      height: 220,
      scales: { x: { time: true }, y: range === undefined ? {} : { range: () => range } },
      axes: [{}, { values: (_u, ticks) => ticks.map(format), size: 60 }],
      series: [{}, ...series.map((s) => ({ label: s.label, stroke: s.stroke, width: 2, value }))],
    },
    data,
    element,
  )
  new ResizeObserver(() => {
    chart.setSize({ width: Math.max(320, element.clientWidth), height: 220 })
  }).observe(element)
  return {
    push(seconds, values) {
      data[0].push(seconds)
      values.forEach((v, i) => {
        data[i + 1].push(v)
      })
      if (data[0].length > KEEP) for (const column of data) column.shift()
      chart.setData(data)
    },
  }
}

/** A ratio as a percentage. */
export const percent = (v) => `${(v * 100).toFixed(1)}%`

/** Milliseconds, with a precision that suits their size. */
export const ms = (v) => (v < 10 ? `${v.toFixed(2)} ms` : `${v.toFixed(0)} ms`)
