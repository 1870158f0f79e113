// The lattice grids of ggml's sub-4-bit i-quants (iq1_s, iq1_m, iq2_xxs, iq2_xs, iq2_s,
// iq3_xxs, iq3_s), built from the level lists of iquants-grid-data.ts as ggml builds them:
// - `values`: what dequantize_row_* multiplies by, per point and coordinate: ggml-common.h's
//   iq2xxs_grid, iq2xs_grid, iq2s_grid, iq3xxs_grid, iq3s_grid and iq1s_grid, byte for byte;
// - `coords`: the quantizers' odd coordinates 2l+1 (ggml-quants.c iq2xs_init_impl and
//   iq3xs_init_impl: kgrid_q2xs / kgrid_q3xs);
// - `map` and `neighbours`: kmap_q2xs / kneighbors_q2xs. `map[u]` is the grid index of the
//   level vector u (coordinate k at bits k*bits), or -1 when u is not on the grid; then
//   `neighbours(u)` lists the grid points ggml's find_best_neighbour tries, in its order:
//   all points at the `nwant` smallest squared distances from u, by (distance, index).
//   ggml computes every list at start-up (tens of millions of distance sums for iq1's 2048
//   points); here a list is computed on first use and kept.
import {
  IQ1S_LEVELS, IQ2S_LEVELS, IQ2XS_LEVELS, IQ2XXS_LEVELS, IQ3S_LEVELS, IQ3XXS_LEVELS,
} from './iquants-grid-data.ts';

export interface IqGrid {
  readonly name: string;
  /** Number of grid points. */
  readonly size: number;
  /** Coordinates per point: 8 (2-bit and 1-bit grids) or 4 (3-bit grids). */
  readonly dims: number;
  /** Bits per level in a level vector u. */
  readonly bits: number;
  /** Dequantization values, size x dims (ggml-common.h's grid bytes, as signed for iq1). */
  readonly values: Int8Array;
  /** Quantizer coordinates 2l+1, size x dims. */
  readonly coords: Int8Array;
  /**
   * Per point and coordinate k: k * 2^bits + level. The neighbour searches' error term of
   * coordinate k depends only on its level: they tabulate it once per search and sum
   * entries of the table at these positions.
   */
  readonly termIndex: Uint8Array;
  /** Levels the points use: 0..levelCount-1 (3 of the 4 two-bit levels, all 8 three-bit ones). */
  readonly levelCount: number;
  /** Grid index of each level vector, -1 off the grid. */
  readonly map: Int32Array;
  /** Grid points to try for an off-grid level vector, in ggml's order. */
  neighbours(u: number): Uint16Array;
}

/** ggml's kmap_size: level vectors up to 2-bit 0xaaaa (levels <= 2) or all 3-bit ones. */
const MAP_SIZE_2BIT = 43692;
const MAP_SIZE_3BIT = 4096;

function buildGrid(
  name: string, levels: Uint16Array, dims: number, bits: number, levelValues: readonly number[], nwant: number,
): IqGrid {
  const size = levels.length;
  const mask = (1 << bits) - 1;
  const values = new Int8Array(size * dims);
  const coords = new Int8Array(size * dims);
  const termIndex = new Uint8Array(size * dims);
  let levelCount = 0;
  const map = new Int32Array(bits === 2 ? MAP_SIZE_2BIT : MAP_SIZE_3BIT).fill(-1);
  for (let p = 0; p < size; p++) {
    for (let k = 0; k < dims; k++) {
      const l = (levels[p] >> (bits * k)) & mask;
      values[p * dims + k] = levelValues[l];
      coords[p * dims + k] = 2 * l + 1;
      termIndex[p * dims + k] = (k << bits) + l;
      levelCount = Math.max(levelCount, l + 1);
    }
    map[levels[p]] = p;
  }

  const lists: (Uint16Array | undefined)[] = new Array(map.length).fill(undefined);
  const dist2 = new Int32Array(size);
  // Squared distances are sums of dims squares of even numbers up to 2*mask.
  const histogram = new Int32Array(dims * (2 * mask) ** 2 + 1);
  const neighbours = (u: number): Uint16Array => {
    let list = lists[u];
    if (list) return list;
    if (map[u] >= 0) throw new Error(`${name}: level vector ${u} is on the grid`);
    histogram.fill(0);
    for (let p = 0; p < size; p++) {
      let d2 = 0;
      for (let k = 0; k < dims; k++) {
        const diff = coords[p * dims + k] - (2 * ((u >> (bits * k)) & mask) + 1);
        d2 += diff * diff;
      }
      dist2[p] = d2;
      histogram[d2]++;
    }
    // The nwant smallest distances present, then their points by (distance, index).
    let count = 0;
    let kept = 0;
    let limit = 0;
    for (let d = 0; d < histogram.length && kept < nwant; d++) {
      if (histogram[d] === 0) continue;
      kept++;
      count += histogram[d];
      limit = d;
    }
    list = new Uint16Array(count);
    let at = 0;
    for (let d = 0; d <= limit; d++) {
      if (histogram[d] === 0) continue;
      for (let p = 0; p < size; p++) if (dist2[p] === d) list[at++] = p;
    }
    lists[u] = list;
    return list;
  };
  return { name, size, dims, bits, values, coords, termIndex, levelCount, map, neighbours };
}

// Level -> dequantization value, per grid family (read off ggml-common.h's grids).
const IQ2_VALUES = [8, 25, 43, 0];
const IQ3XXS_VALUES = [4, 12, 20, 28, 36, 44, 52, 62];
const IQ3S_VALUES = [1, 3, 5, 7, 9, 11, 13, 15];
const IQ1_VALUES = [-1, 0, 1, 0];

const cache = new Map<string, IqGrid>();
function lazy(name: string, build: () => IqGrid): () => IqGrid {
  return () => {
    let grid = cache.get(name);
    if (!grid) cache.set(name, (grid = build()));
    return grid;
  };
}

// nwant as in iq2xs_init_impl / iq3xs_init_impl: 3 for iq1, 1 for iq2_s, 2 for iq2_xxs/_xs,
// 2 for the 256-point iq3 grid and 3 for the 512-point one.
export const iq2xxsGrid = lazy('iq2_xxs', () => buildGrid('iq2_xxs', IQ2XXS_LEVELS, 8, 2, IQ2_VALUES, 2));
export const iq2xsGrid = lazy('iq2_xs', () => buildGrid('iq2_xs', IQ2XS_LEVELS, 8, 2, IQ2_VALUES, 2));
export const iq2sGrid = lazy('iq2_s', () => buildGrid('iq2_s', IQ2S_LEVELS, 8, 2, IQ2_VALUES, 1));
export const iq1sGrid = lazy('iq1_s', () => buildGrid('iq1_s', IQ1S_LEVELS, 8, 2, IQ1_VALUES, 3));
export const iq3xxsGrid = lazy('iq3_xxs', () => buildGrid('iq3_xxs', IQ3XXS_LEVELS, 4, 3, IQ3XXS_VALUES, 2));
export const iq3sGrid = lazy('iq3_s', () => buildGrid('iq3_s', IQ3S_LEVELS, 4, 3, IQ3S_VALUES, 3));

/**
 * ksigns_iq2xs: 7 stored sign bits -> 8 signs, the eighth making the count of minus signs
 * even (ggml-common.h lists the 128 bytes; this is the rule they follow).
 */
export const KSIGNS_IQ2XS = Uint8Array.from({ length: 128 }, (_, i) => {
  let parity = 0;
  for (let b = i; b; b >>= 1) parity ^= b & 1;
  return i | (parity << 7);
});

/** IQ1S_DELTA = IQ1M_DELTA: the shift of iq1's {-1, 0, 1} levels. */
export const IQ1_DELTA = 0.125;
