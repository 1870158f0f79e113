// Take-away: a table as CSV or Markdown, a chart (recharts' SVG) as an SVG or PNG file.
// Pure text builders first (tested in takeaway.test.ts), then the browser's part.

export type Cell = string | number;

export interface TableData {
  header: string[];
  rows: Cell[][];
}

/** RFC 4180 CSV: numbers at full precision (what the table rounds for display), quoted text where needed. */
export function toCsv({ header, rows }: TableData): string {
  const cell = (c: Cell) => {
    const text = typeof c === 'number' ? (Number.isFinite(c) ? String(c) : c > 0 ? 'inf' : c < 0 ? '-inf' : 'nan') : c;
    return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
  };
  return [header, ...rows].map((r) => r.map(cell).join(',')).join('\r\n') + '\r\n';
}

/** A GitHub-flavoured Markdown table: numbers right-aligned, pipes escaped. */
export function toMarkdown({ header, rows }: TableData, numeric: readonly boolean[] = []): string {
  const cell = (c: Cell) => String(c).replace(/\|/g, '\\|').replace(/\n/g, ' ');
  const line = (cells: Cell[]) => `| ${cells.map(cell).join(' | ')} |`;
  const rule = `|${header.map((_, i) => (numeric[i] ? ' ---: ' : ' --- ')).join('|')}|`;
  return [line(header), rule, ...rows.map(line)].join('\n') + '\n';
}

/** A file name from a caption: lower case, dashes, no characters a file system refuses. */
export function fileNameOf(caption: string, ext: string): string {
  const stem = caption.toLowerCase().replace(/[^a-z0-9._-]+/g, '-').replace(/^-+|-+$/g, '').slice(0, 80) || 'quantlab';
  return `${stem}.${ext}`;
}

/** One series of a chart's legend (recharts draws the legend as HTML, outside the SVG). */
export interface LegendEntry {
  readonly label: string;
  readonly colour: string;
}

const SVG_NS = 'http://www.w3.org/2000/svg';
/** Layout of what the exported image adds around the chart: a title line, legend rows. */
const TITLE_HEIGHT = 20;
const LEGEND_ROW = 16;
const LEGEND_SWATCH = 10;
/** An estimate of a character's width at 11 px, to wrap legend entries (no text metrics in an SVG string). */
const CHAR_WIDTH = 6.5;

/** Legend entries placed in rows that fit `width`: x offsets and row indices. */
export function legendLayout(entries: readonly LegendEntry[], width: number): { x: number; row: number }[] {
  let x = 0;
  let row = 0;
  return entries.map((e) => {
    const w = LEGEND_SWATCH + 4 + e.label.length * CHAR_WIDTH + 14;
    if (x > 0 && x + w > width) {
      x = 0;
      row++;
    }
    const at = { x, row };
    x += w;
    return at;
  });
}

/**
 * The chart's SVG as a standalone document: namespaces set, its size fixed, a background and
 * the page's font and text colour inlined (the page's stylesheet does not travel with the file),
 * with the figure's caption as a title above and the legend below, as the page shows them.
 */
export function standaloneSvg(
  svg: SVGSVGElement,
  background: string,
  colour: string,
  { title = '', legend = [] }: { title?: string; legend?: readonly LegendEntry[] } = {},
): { text: string; width: number; height: number } {
  const chart = svg.cloneNode(true) as SVGSVGElement;
  const { width: w, height: h } = svg.getBoundingClientRect();
  const width = Math.round(w);
  const top = title ? TITLE_HEIGHT : 0;
  const places = legendLayout(legend, width - 16);
  const rows = legend.length ? places[places.length - 1].row + 1 : 0;
  const height = Math.round(h) + top + (rows ? rows * LEGEND_ROW + 8 : 0);
  const el = (name: string, attrs: Record<string, string | number>, text?: string) => {
    const e = document.createElementNS(SVG_NS, name);
    for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
    if (text !== undefined) e.textContent = text;
    return e;
  };
  const doc = el('svg', { xmlns: SVG_NS, 'xmlns:xlink': 'http://www.w3.org/1999/xlink', width, height, style: `font-family: system-ui, sans-serif; font-size: 11px; color: ${colour}` });
  doc.append(el('rect', { width: '100%', height: '100%', fill: background }));
  if (title) doc.append(el('text', { x: 8, y: 14, fill: colour, 'font-size': 12, class: 'takeaway-title' }, title));
  chart.setAttribute('x', '0');
  chart.setAttribute('y', String(top));
  chart.setAttribute('width', String(width));
  chart.setAttribute('height', String(Math.round(h)));
  doc.append(chart);
  const legendTop = top + Math.round(h) + 4;
  legend.forEach((entry, i) => {
    const { x, row } = places[i];
    const g = el('g', { class: 'takeaway-legend-item', transform: `translate(${8 + x} ${legendTop + row * LEGEND_ROW})` });
    g.append(el('rect', { width: LEGEND_SWATCH, height: LEGEND_SWATCH, y: 1, fill: entry.colour }));
    g.append(el('text', { x: LEGEND_SWATCH + 4, y: 10, fill: colour }, entry.label));
    doc.append(g);
  });
  return { text: new XMLSerializer().serializeToString(doc), width, height };
}

/** The legend recharts drew for a chart (HTML beside its SVG): each entry's text and colour. */
export function legendOf(figure: Element): LegendEntry[] {
  return [...figure.querySelectorAll('.recharts-legend-item')].map((item) => {
    const icon = item.querySelector('.recharts-legend-icon, path, line, rect');
    const stroke = icon?.getAttribute('stroke');
    const colour = stroke && stroke !== 'none' ? stroke : (icon?.getAttribute('fill') ?? 'currentColor');
    return { label: item.querySelector('.recharts-legend-item-text')?.textContent ?? item.textContent ?? '', colour };
  });
}

/** Saves a blob under a name (an anchor with `download`: no server round trip). */
export function saveBlob(blob: Blob, name: string): void {
  const url = URL.createObjectURL(blob);
  const a = document.createElement('a');
  a.href = url;
  a.download = name;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

/** The SVG drawn at `scale` onto a canvas, as PNG. */
export async function svgToPng(svgText: string, width: number, height: number, scale = 2): Promise<Blob> {
  const url = URL.createObjectURL(new Blob([svgText], { type: 'image/svg+xml' }));
  try {
    const img = new Image();
    img.src = url;
    await img.decode();
    const canvas = document.createElement('canvas');
    canvas.width = Math.round(width * scale);
    canvas.height = Math.round(height * scale);
    const ctx = canvas.getContext('2d')!;
    ctx.scale(scale, scale);
    ctx.drawImage(img, 0, 0, width, height);
    return await new Promise<Blob>((resolve, reject) => canvas.toBlob((b) => (b ? resolve(b) : reject(new Error('PNG encoding failed'))), 'image/png'));
  } finally {
    URL.revokeObjectURL(url);
  }
}

/** The page's computed colours (they differ in dark mode): what an exported image is drawn on. */
export function pageColours(): { background: string; colour: string } {
  const style = getComputedStyle(document.documentElement);
  return { background: style.getPropertyValue('--panel').trim() || '#ffffff', colour: style.getPropertyValue('--fg').trim() || '#111827' };
}
