// A grouped bar chart of latency percentiles, hand-written SVG: one group per workload, one bar per
// system; the pale bar reaches p99, the solid bar inside it p50. Log scale, since the peers differ
// by orders of magnitude.

export interface Bar {
  system: string;
  p50: number;
  p99: number;
}
export interface Group {
  label: string;
  bars: Bar[];
}

const COLORS = ['#7f7f7f', '#1f77b4', '#d62728', '#ff7f0e', '#2ca02c', '#9467bd', '#8c564b', '#e377c2'];
const W = 960;
const H = 420;
const M = { top: 50, right: 20, bottom: 70, left: 70 };

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

function label(ms: number): string {
  if (ms < 1) return `${Math.round(ms * 1000)} µs`;
  return ms < 10 ? `${ms.toFixed(1)} ms` : `${Math.round(ms)} ms`;
}

export function latencyChart(title: string, groups: Group[]): string {
  const systems = [...new Set(groups.flatMap((g) => g.bars.map((b) => b.system)))];
  const color = (s: string) => COLORS[systems.indexOf(s) % COLORS.length] ?? '#000';
  const values = groups
    .flatMap((g) => g.bars.flatMap((b) => [b.p50, b.p99]))
    .filter((v) => v > 0 && Number.isFinite(v));
  const lo = 10 ** Math.floor(Math.log10(Math.min(...values)));
  const hi = 10 ** Math.ceil(Math.log10(Math.max(...values)));
  const plotW = W - M.left - M.right;
  const plotH = H - M.top - M.bottom;
  const y = (ms: number) =>
    M.top + plotH - ((Math.log10(Math.max(ms, lo)) - Math.log10(lo)) / (Math.log10(hi) - Math.log10(lo))) * plotH;
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="system-ui, sans-serif" font-size="12">`,
    `<title>${esc(title)}</title>`,
    `<rect width="${W}" height="${H}" fill="#fff"/>`,
    `<text x="${W / 2}" y="20" text-anchor="middle" font-size="15" font-weight="600">${esc(title)}</text>`,
  ];
  for (let d = lo; d <= hi * 1.001; d *= 10) {
    out.push(`<line x1="${M.left}" x2="${W - M.right}" y1="${y(d)}" y2="${y(d)}" stroke="#ddd"/>`);
    out.push(`<text x="${M.left - 6}" y="${y(d) + 4}" text-anchor="end" fill="#555">${label(d)}</text>`);
  }
  out.push(
    `<text transform="translate(16 ${M.top + plotH / 2}) rotate(-90)" text-anchor="middle" fill="#555">latency (log scale)</text>`,
  );
  const gw = plotW / groups.length;
  groups.forEach((g, gi) => {
    const bw = Math.min(26, (gw * 0.8) / g.bars.length);
    const x0 = M.left + gi * gw + (gw - bw * g.bars.length) / 2;
    g.bars.forEach((b, bi) => {
      const x = x0 + bi * bw;
      const c = color(b.system);
      const base = y(lo);
      out.push(
        `<rect x="${x + 1}" y="${y(b.p99)}" width="${bw - 2}" height="${base - y(b.p99)}" fill="${c}" opacity="0.35"><title>${esc(`${b.system}: p99 ${label(b.p99)}`)}</title></rect>`,
      );
      out.push(
        `<rect x="${x + 1}" y="${y(b.p50)}" width="${bw - 2}" height="${base - y(b.p50)}" fill="${c}"><title>${esc(`${b.system}: p50 ${label(b.p50)}`)}</title></rect>`,
      );
    });
    out.push(
      `<text x="${M.left + gi * gw + gw / 2}" y="${H - M.bottom + 18}" text-anchor="middle">${esc(g.label)}</text>`,
    );
  });
  const lx = M.left;
  const ly = H - 24;
  let x = lx;
  for (const s of systems) {
    out.push(
      `<rect x="${x}" y="${ly - 10}" width="12" height="12" fill="${color(s)}"/><text x="${x + 16}" y="${ly}">${esc(s)}</text>`,
    );
    x += 26 + s.length * 7;
  }
  // Top right, so a long legend (one entry per system) has the bottom row to itself.
  out.push(`<text x="${W - M.right}" y="38" text-anchor="end" fill="#555">solid: p50 · pale: p99</text>`);
  out.push('</svg>');
  return out.join('\n');
}
