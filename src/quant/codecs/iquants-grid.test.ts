import { describe, expect, it } from 'vitest';
import { KSIGNS_IQ2XS, iq1sGrid, iq2sGrid, iq2xsGrid, iq2xxsGrid, iq3sGrid, iq3xxsGrid, type IqGrid } from './iquants-grid.ts';
import { random } from './testing.ts';

const GRIDS: [() => IqGrid, number, number, number][] = [
  // [grid, points, dims, nwant (iq2xs_init_impl / iq3xs_init_impl)]
  [iq2xxsGrid, 256, 8, 2],
  [iq2xsGrid, 512, 8, 2],
  [iq2sGrid, 1024, 8, 1],
  [iq1sGrid, 2048, 8, 3],
  [iq3xxsGrid, 256, 4, 2],
  [iq3sGrid, 512, 4, 3],
];

/** ggml's neighbour list, the slow way: every point by (squared distance, index), cut after nwant distances. */
function bruteForceNeighbours(grid: IqGrid, u: number, nwant: number): number[] {
  const mask = (1 << grid.bits) - 1;
  const byDistance = Array.from({ length: grid.size }, (_, p) => {
    let d2 = 0;
    for (let k = 0; k < grid.dims; k++) d2 += (grid.coords[p * grid.dims + k] - (2 * ((u >> (grid.bits * k)) & mask) + 1)) ** 2;
    return [d2, p];
  }).sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  const kept = [...new Set(byDistance.map(([d2]) => d2))].slice(0, nwant);
  return byDistance.filter(([d2]) => d2 <= kept[kept.length - 1]).map(([, p]) => p);
}

describe.each(GRIDS)('grid %#', (gridOf, points, dims, nwant) => {
  const grid = gridOf();

  it('has its size, and every point maps back to its own index', () => {
    expect([grid.size, grid.dims, grid.values.length, grid.coords.length]).toEqual([points, dims, points * dims, points * dims]);
    let onGrid = 0;
    for (let u = 0; u < grid.map.length; u++) {
      const p = grid.map[u];
      if (p < 0) continue;
      onGrid++;
      for (let k = 0; k < dims; k++) expect(grid.coords[p * dims + k]).toBe(2 * ((u >> (grid.bits * k)) & ((1 << grid.bits) - 1)) + 1);
    }
    expect(onGrid).toBe(points);
  });

  it('lists the neighbours of off-grid level vectors as ggml orders them', () => {
    const rnd = random(5);
    const maxLevel = grid === iq1sGrid() ? 2 : (1 << grid.bits) - 1;
    let checked = 0;
    while (checked < 40) {
      let u = 0;
      for (let k = 0; k < dims; k++) u |= Math.floor(rnd() * (maxLevel + 1)) << (grid.bits * k);
      if (grid.map[u] >= 0) continue;
      expect(Array.from(grid.neighbours(u)), `u = ${u}`).toEqual(bruteForceNeighbours(grid, u, nwant));
      expect(grid.neighbours(u)).toBe(grid.neighbours(u)); // computed once
      checked++;
    }
  });

  it('refuses a neighbour list for a point on the grid', () => {
    const u = grid.map.findIndex((p) => p >= 0);
    expect(() => grid.neighbours(u)).toThrow(/on the grid/);
  });
});

describe('ksigns_iq2xs', () => {
  it('completes 7 sign bits with an eighth that makes the count of minus signs even', () => {
    expect(KSIGNS_IQ2XS.slice(0, 8)).toEqual(Uint8Array.of(0, 129, 130, 3, 132, 5, 6, 135));
    for (let i = 0; i < 128; i++) {
      expect(KSIGNS_IQ2XS[i] & 127).toBe(i);
      expect(KSIGNS_IQ2XS[i].toString(2).split('1').length % 2).toBe(1);
    }
  });
});
