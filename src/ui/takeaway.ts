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

/**
 * The chart's SVG as a standalone document: namespaces set, its size fixed, a background and
 * the page's font and text colour inlined (the page's stylesheet does not travel with the file).
 */
export function standaloneSvg(svg: SVGSVGElement, background: string, colour: string): string {
  const copy = svg.cloneNode(true) as SVGSVGElement;
  const { width, height } = svg.getBoundingClientRect();
  copy.setAttribute('xmlns', 'http://www.w3.org/2000/svg');
  copy.setAttribute('xmlns:xlink', 'http://www.w3.org/1999/xlink');
  copy.setAttribute('width', String(Math.round(width)));
  copy.setAttribute('height', String(Math.round(height)));
  copy.setAttribute('style', `font-family: system-ui, sans-serif; font-size: 11px; color: ${colour}`);
  const bg = document.createElementNS('http://www.w3.org/2000/svg', 'rect');
  bg.setAttribute('width', '100%');
  bg.setAttribute('height', '100%');
  bg.setAttribute('fill', background);
  copy.insertBefore(bg, copy.firstChild);
  return new XMLSerializer().serializeToString(copy);
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
