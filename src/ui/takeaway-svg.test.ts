// @vitest-environment happy-dom
// An exported chart carries what the page shows beside it: the caption as a title and the
// legend (recharts draws both as HTML outside the chart's SVG).
import { describe, expect, it } from 'vitest';
import { legendLayout, legendOf, standaloneSvg } from './takeaway.ts';

function figureWithChart(): { figure: HTMLElement; svg: SVGSVGElement } {
  const figure = document.createElement('figure');
  figure.innerHTML = `
    <figcaption><span class="caption">Error histogram</span></figcaption>
    <div class="recharts-wrapper">
      <svg class="recharts-surface" width="300" height="200"><path class="recharts-curve recharts-line-curve" stroke="#0072B2" d="M0,0L1,1"/></svg>
      <div class="recharts-legend-wrapper"><ul>
        <li class="recharts-legend-item"><svg class="recharts-surface"><path class="recharts-legend-icon" fill="none" stroke="#0072B2" d="M0,0"/></svg><span class="recharts-legend-item-text">q4_K</span></li>
        <li class="recharts-legend-item"><svg class="recharts-surface"><path class="recharts-legend-icon" fill="#D55E00" stroke="none" d="M0,0"/></svg><span class="recharts-legend-item-text">q8_0</span></li>
      </ul></div>
    </div>`;
  document.body.append(figure);
  const svg = figure.querySelector<SVGSVGElement>('.recharts-wrapper > svg')!;
  svg.getBoundingClientRect = () => ({ width: 300, height: 200 }) as DOMRect;
  return { figure, svg };
}

describe('exported charts', () => {
  it('read the legend recharts drew: labels and colours (stroke, else fill)', () => {
    const { figure } = figureWithChart();
    expect(legendOf(figure)).toEqual([
      { label: 'q4_K', colour: '#0072B2' },
      { label: 'q8_0', colour: '#D55E00' },
    ]);
  });

  it('hold the title, the chart and every legend entry, the image grown to fit them', () => {
    const { figure, svg } = figureWithChart();
    const out = standaloneSvg(svg, '#ffffff', '#111111', { title: 'Error histogram', legend: legendOf(figure) });
    expect(out.width).toBe(300);
    expect(out.height).toBe(200 + 20 + 16 + 8);
    const doc = new DOMParser().parseFromString(out.text, 'image/svg+xml');
    expect(doc.querySelector('.takeaway-title')?.textContent).toBe('Error histogram');
    const items = [...doc.querySelectorAll('.takeaway-legend-item')].map((g) => [g.querySelector('text')?.textContent, g.querySelector('rect')?.getAttribute('fill')]);
    expect(items).toEqual([
      ['q4_K', '#0072B2'],
      ['q8_0', '#D55E00'],
    ]);
    expect(out.text).toContain('stroke="#0072B2"');
  });

  it('wrap legend entries into rows of the image width', () => {
    const entries = Array.from({ length: 6 }, (_, i) => ({ label: `int4_g128_asym${i}`, colour: '#000' }));
    const places = legendLayout(entries, 300);
    expect(places[0]).toEqual({ x: 0, row: 0 });
    expect(places.at(-1)!.row).toBeGreaterThan(0);
    for (const p of places) expect(p.x).toBeLessThan(300);
  });
});
