// The PNG a reader looks at instead of the tables: per workload and image kind, one bar per
// target, each the median over the rounds of the target's throughput divided by fio libaio's in
// the same round (1.0 = the disk), with a line from the lowest to the highest round. Drawn by
// vega-lite -> vega (SVG, no canvas) -> resvg (PNG).
import { Resvg } from '@resvg/resvg-js';
import * as vega from 'vega';
import * as vl from 'vega-lite';

const COLORS = Object.freeze({
  aionbd: '#d62728',
  'aionbd uring': '#9467bd',
  'fio io_uring': '#7f7f7f',
  'aionbd (baseline)': '#ff9896',
  'qemu-nbd': '#1f77b4',
  'qemu-nbd QD16 conns': '#aec7e8',
  'nbdkit null': '#2ca02c',
  'nbdkit file': '#98df8a',
  'aionbd null': '#ff7f0e',
});
/** The reference every bar is relative to. */
const BASE = 'libaio';

/**
 * @param {import('./report.mjs').Row[]} rows
 * @param {{ title: string, subtitle: string, fillLabels: Record<string, string> }} text
 * @returns {Promise<Buffer>}
 */
export async function renderChart(rows, text) {
  const multiFill = new Set(rows.map((r) => r.fill)).size > 1;
  const label = (/** @type {import('./report.mjs').Row} */ r) =>
    multiFill ? `${r.workloadLabel} · ${text.fillLabels[r.fill] ?? r.fill}` : r.workloadLabel;
  // IOPS and MiB/s ratios are the same number at a fixed block size; at QD1 it is 1/latency.
  const values = rows
    .filter((r) => r.target !== BASE)
    .flatMap((r) => {
      const s = r.vs[BASE]?.iops;
      return s == null ? [] : [{ workload: label(r), target: r.targetLabel, value: s.median, lo: s.min, hi: s.max }];
    });
  if (values.length === 0) throw new Error(`no ratios to ${BASE} to draw`);
  const workloads = [...new Set(rows.map(label))];
  const targets = [...new Set(values.map((v) => v.target))];

  /** @type {import('vega-lite').TopLevelSpec} */
  const spec = {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: { text: text.title, subtitle: text.subtitle, anchor: 'start', fontSize: 16, subtitleFontSize: 12, offset: 14 },
    width: 640,
    height: { step: 12 },
    background: 'white',
    padding: 12,
    layer: [
      {
        data: { values },
        encoding: {
          y: { field: 'workload', type: 'nominal', sort: workloads, title: null, axis: { labelFontSize: 12, labelLimit: 480 } },
          yOffset: { field: 'target', type: 'nominal', sort: targets },
          color: {
            field: 'target',
            type: 'nominal',
            sort: targets,
            scale: { domain: targets, range: targets.map((t) => /** @type {Record<string, string>} */ (COLORS)[t] ?? '#999999') },
            legend: { title: null, orient: 'top', labelFontSize: 12, labelLimit: 400, symbolType: 'square' },
          },
        },
        layer: [
          {
            mark: { type: 'bar', height: { band: 0.85 } },
            encoding: {
              x: {
                field: 'value',
                type: 'quantitative',
                title: 'throughput relative to fio libaio in the same round (1.0 = the disk)',
                axis: { labelFontSize: 11, titleFontSize: 12, grid: true },
              },
            },
          },
          { mark: { type: 'rule', color: '#222222' }, encoding: { x: { field: 'lo', type: 'quantitative' }, x2: { field: 'hi' } } },
          {
            mark: { type: 'text', align: 'left', dx: 3, fontSize: 9, color: '#333333' },
            encoding: { x: { field: 'hi', type: 'quantitative' }, text: { field: 'value', type: 'quantitative', format: '.2f' } },
          },
        ],
      },
      {
        data: { values: [{ one: 1 }] },
        mark: { type: 'rule', strokeDash: [4, 3], color: '#555555' },
        encoding: { x: { field: 'one', type: 'quantitative' } },
      },
    ],
    config: { font: 'DejaVu Sans', view: { stroke: null }, axisY: { grid: false, domain: false, ticks: false } },
  };
  const compiled = vl.compile(spec).spec;
  const view = new vega.View(vega.parse(compiled), { renderer: 'none' });
  try {
    const svg = await view.toSVG();
    return new Resvg(svg, {
      fitTo: { mode: 'zoom', value: 2 },
      background: 'white',
      font: { loadSystemFonts: true, defaultFontFamily: 'DejaVu Sans' },
    })
      .render()
      .asPng();
  } finally {
    view.finalize();
  }
}
