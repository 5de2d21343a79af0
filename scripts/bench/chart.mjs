// The PNG a reader looks at instead of the table: per workload, one bar per target, each the
// target's IOPS divided by fio libaio's on the same workload (the ceiling is 1.0). Drawn by
// vega-lite -> vega (SVG, no canvas) -> resvg (PNG).
import { Resvg } from '@resvg/resvg-js';
import * as vega from 'vega';
import * as vl from 'vega-lite';

const COLORS = Object.freeze({ aionbd: '#d62728', 'aionbd (baseline)': '#ff9896', 'qemu-nbd': '#1f77b4', nbdkit: '#2ca02c', 'fio libaio': '#7f7f7f' });

/**
 * @param {import('./report.mjs').Row[]} rows
 * @param {{ title: string, subtitle: string }} text
 * @returns {Promise<Buffer>}
 */
export async function renderChart(rows, text) {
  const haveLibaio = rows.some((r) => r.target === 'libaio' && r.median !== null);
  const haveQemu = rows.some((r) => r.target === 'qemu-nbd' && r.median !== null);
  /** @type {'libaio'|'qemu-nbd'|null} */
  const base = haveLibaio ? 'libaio' : haveQemu ? 'qemu-nbd' : null;
  const values = rows.filter((r) => r.median !== null).map((r) => {
    const ratio = base === 'libaio' ? r.vsLibaio?.iops : base === 'qemu-nbd' ? r.vsQemuNbd?.iops : r.median?.iops;
    return { workload: r.workloadLabel, target: r.targetLabel, value: ratio ?? null };
  }).filter((v) => v.value !== null);
  const workloads = [...new Set(rows.map((r) => r.workloadLabel))];
  const targets = [...new Set(rows.map((r) => r.targetLabel))];
  const xTitle = base === 'libaio' ? 'IOPS relative to fio libaio on the file (1.0 = the ceiling)'
    : base === 'qemu-nbd' ? 'IOPS relative to qemu-nbd' : 'IOPS';
  const fmt = base === null ? ',.0f' : '.2f';

  /** @type {import('vega-lite').TopLevelSpec} */
  const spec = {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: { text: text.title, subtitle: text.subtitle, anchor: 'start', fontSize: 16, subtitleFontSize: 12, offset: 14 },
    width: 640,
    height: { step: 14 },
    background: 'white',
    padding: 12,
    layer: [
      {
        data: { values },
        encoding: {
          y: { field: 'workload', type: 'nominal', sort: workloads, title: null, axis: { labelFontSize: 12, labelLimit: 260 } },
          yOffset: { field: 'target', type: 'nominal', sort: targets },
          x: { field: 'value', type: 'quantitative', title: xTitle, axis: { labelFontSize: 11, titleFontSize: 12, grid: true } },
          color: {
            field: 'target', type: 'nominal', sort: targets,
            scale: { domain: targets, range: targets.map((t) => /** @type {Record<string, string>} */ (COLORS)[t] ?? '#999999') },
            legend: { title: null, orient: 'top', labelFontSize: 12, symbolType: 'square' },
          },
        },
        layer: [
          { mark: { type: 'bar', height: { band: 0.9 } } },
          { mark: { type: 'text', align: 'left', dx: 3, fontSize: 9, color: '#333333' },
            encoding: { text: { field: 'value', type: 'quantitative', format: fmt } } },
        ],
      },
      // The ceiling (or parity with qemu-nbd) as a dashed line across every workload.
      ...(base !== null ? [{ data: { values: [{ one: 1 }] }, mark: { type: /** @type {const} */ ('rule'), strokeDash: [4, 3], color: '#555555' },
        encoding: { x: { field: 'one', type: /** @type {const} */ ('quantitative') } } }] : []),
    ],
    config: { font: 'DejaVu Sans', view: { stroke: null }, axisY: { grid: false, domain: false, ticks: false } },
  };
  const compiled = vl.compile(/** @type {import('vega-lite').TopLevelSpec} */ (spec)).spec;
  const view = new vega.View(vega.parse(compiled), { renderer: 'none' });
  try {
    const svg = await view.toSVG();
    const png = new Resvg(svg, {
      fitTo: { mode: 'zoom', value: 2 },
      background: 'white',
      font: { loadSystemFonts: true, defaultFontFamily: 'DejaVu Sans' },
    }).render().asPng();
    return png;
  } finally {
    view.finalize();
  }
}
