/**
 * An SVG bar chart of the kube-crl-proxy / HAProxy CPU ratios of one run: one bar per figure,
 * a line at 1.0× (parity, the issue 7 target).
 */
import type { Ratio } from './results.js';

const xmlEscape = (s: string) =>
  s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

export function ratioChart(ratios: readonly Ratio[], subtitle: string): string {
  const barHeight = 26;
  const gap = 10;
  const left = 330;
  const width = 900;
  const plotWidth = width - left - 70;
  const top = 64;
  const height = top + ratios.length * (barHeight + gap) + 40;
  const max = Math.max(2, ...ratios.map((r) => Math.ceil(r.value)));
  const x = (v: number) => left + (v / max) * plotWidth;
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="13">`,
    '<title>kube-crl-proxy CPU per operation ÷ HAProxy 2.6</title>',
    `<rect width="${width}" height="${height}" fill="#fff"/>`,
    `<text x="16" y="24" font-size="16" font-weight="bold">kube-crl-proxy CPU per operation ÷ HAProxy 2.6 (same run; lower is better)</text>`,
    `<text x="16" y="44" fill="#555">${xmlEscape(subtitle)}</text>`,
  ];
  for (let t = 0; t <= max; t++) {
    parts.push(
      `<line x1="${x(t)}" y1="${top - 6}" x2="${x(t)}" y2="${height - 30}" stroke="${t === 1 ? '#c00' : '#ddd'}" stroke-width="${t === 1 ? 2 : 1}"/>`,
      `<text x="${x(t)}" y="${height - 12}" text-anchor="middle" fill="#555">${t}×</text>`,
    );
  }
  ratios.forEach((r, i) => {
    const y = top + i * (barHeight + gap);
    const color = r.value <= 1 ? '#2a9d4b' : r.value <= 1.5 ? '#e0a020' : '#d0452f';
    parts.push(
      `<text x="${left - 10}" y="${y + barHeight / 2 + 4}" text-anchor="end">${xmlEscape(r.label)}</text>`,
      `<rect x="${left}" y="${y}" width="${Math.max(1, x(r.value) - left)}" height="${barHeight}" fill="${color}"/>`,
      `<text x="${x(r.value) + 6}" y="${y + barHeight / 2 + 4}">${r.value.toFixed(2)}×</text>`,
    );
  });
  parts.push('</svg>');
  return `${parts.join('\n')}\n`;
}
