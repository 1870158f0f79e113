// Buttons that take a chart or a table away: PNG and SVG for a chart, CSV (and Markdown) for a table.
import { useRef, useState, type ReactNode } from 'react';
import { fileNameOf, legendOf, pageColours, saveBlob, standaloneSvg, svgToPng, toCsv, toMarkdown, type TableData } from './takeaway.ts';

/** A chart in a figure whose caption carries PNG / SVG downloads of the chart as drawn. */
export function ChartFigure({ label, caption, className = '', children }: { label: string; caption: ReactNode; className?: string; children: ReactNode }) {
  const ref = useRef<HTMLElement>(null);
  const svgOf = () => {
    const figure = ref.current;
    const svg = figure?.querySelector<SVGSVGElement>('.recharts-wrapper > svg.recharts-surface');
    if (!figure || !svg) return null;
    const { background, colour } = pageColours();
    const title = figure.querySelector('figcaption .caption')?.textContent ?? '';
    return standaloneSvg(svg, background, colour, { title, legend: legendOf(figure) });
  };
  const saveSvg = () => {
    const svg = svgOf();
    if (svg) saveBlob(new Blob([svg.text], { type: 'image/svg+xml' }), fileNameOf(label, 'svg'));
  };
  const savePng = async () => {
    const svg = svgOf();
    if (svg) saveBlob(await svgToPng(svg.text, svg.width, svg.height), fileNameOf(label, 'png'));
  };
  return (
    <figure className={`chart ${className}`} aria-label={label} ref={ref}>
      <figcaption>
        <span className="caption">{caption}</span>
        <span className="takeaway">
          <button type="button" aria-label={`Download ${label} as PNG`} onClick={() => void savePng()}>
            PNG
          </button>
          <button type="button" aria-label={`Download ${label} as SVG`} onClick={saveSvg}>
            SVG
          </button>
        </span>
      </figcaption>
      {children}
    </figure>
  );
}

/** CSV download of a table's data (full precision) and, where given, "copy as Markdown" of it as shown. */
export function TableTakeaway({ label, data, numeric, markdown }: { label: string; data: () => TableData; numeric?: readonly boolean[]; markdown?: () => TableData }) {
  const [copied, setCopied] = useState<string | null>(null);
  const copy = async () => {
    try {
      await navigator.clipboard.writeText(toMarkdown(markdown!(), numeric));
      setCopied('Copied as Markdown');
    } catch (error) {
      setCopied(`Could not copy: ${(error as Error).message}`);
    }
  };
  return (
    <span className="takeaway">
      <button type="button" aria-label={`Download ${label} as CSV`} onClick={() => saveBlob(new Blob([toCsv(data())], { type: 'text/csv' }), fileNameOf(label, 'csv'))}>
        CSV
      </button>
      {markdown && (
        <button type="button" onClick={() => void copy()}>
          Copy as Markdown
        </button>
      )}
      {copied && (
        <span className="muted" role="status">
          {copied}
        </span>
      )}
    </span>
  );
}
