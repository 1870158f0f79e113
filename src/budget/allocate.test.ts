// The allocator against brute force on small random instances: the best damage within
// the capacity, never over it, and no answer where nothing fits.
import { describe, expect, it } from 'vitest';
import { rng } from '../testing/random.ts';
import { allocate, lowerHull, type Option } from './allocate.ts';

/** Seeded uniform [0, 1): mulberry32. */

function bruteForce(items: Option[][], capacity: number): number {
  let best = Infinity;
  const walk = (i: number, cost: number, damage: number) => {
    if (cost > capacity) return;
    if (i === items.length) {
      best = Math.min(best, damage);
      return;
    }
    for (const o of items[i]) walk(i + 1, cost + o.cost, damage + o.damage);
  };
  walk(0, 0, 0);
  return best;
}

function randomInstance(r: () => number, n: number, k: number, granule: number): Option[][] {
  return Array.from({ length: n }, () =>
    Array.from({ length: k }, () => ({ cost: granule * (1 + Math.floor(r() * 40)), damage: Math.round(r() * 1000) / 10 })),
  );
}

describe('allocate', () => {
  it('finds the brute-force optimum and never exceeds the capacity (300 random instances)', () => {
    const r = rng(42);
    let greedyWouldMiss = 0;
    for (let trial = 0; trial < 300; trial++) {
      const granule = trial % 2 === 0 ? 1 : 32;
      const items = randomInstance(r, 2 + Math.floor(r() * 4), 2 + Math.floor(r() * 4), granule);
      const min = items.reduce((s, o) => s + Math.min(...o.map((x) => x.cost)), 0);
      const max = items.reduce((s, o) => s + Math.max(...o.map((x) => x.cost)), 0);
      const capacity = min + Math.floor(r() * (max - min + 1));
      const a = allocate(items, capacity, granule)!;
      expect(a).not.toBeNull();
      expect(a.cost).toBeLessThanOrEqual(capacity);
      expect(a.cost).toBe(a.picks.reduce((s, k, i) => s + items[i][k].cost, 0));
      const best = bruteForce(items, capacity);
      expect(a.damage).toBeCloseTo(best, 9);
      if (a.damage > best) greedyWouldMiss++;
    }
    expect(greedyWouldMiss).toBe(0);
  });

  it('refuses a capacity below the cheapest choice', () => {
    const items = [[{ cost: 10, damage: 1 }, { cost: 20, damage: 0 }], [{ cost: 5, damage: 3 }]];
    expect(allocate(items, 14, 1)).toBeNull();
    expect(allocate(items, 15, 1)).toEqual({ picks: [0, 0], cost: 15, damage: 4 });
    expect(allocate(items, 25, 1)).toEqual({ picks: [1, 0], cost: 25, damage: 3 });
  });

  it('stays within the capacity when the DP table must use coarse units (large costs)', () => {
    const r = rng(7);
    for (let trial = 0; trial < 20; trial++) {
      const items = Array.from({ length: 30 }, () =>
        Array.from({ length: 6 }, () => ({ cost: 32 * Math.floor(1e5 + r() * 1e7), damage: r() })),
      );
      const min = items.reduce((s, o) => s + Math.min(...o.map((x) => x.cost)), 0);
      const capacity = min + Math.floor(r() * 1e8);
      const a = allocate(items, capacity, 32)!;
      expect(a.cost).toBeLessThanOrEqual(capacity);
    }
  });

  it('lowerHull keeps the convex, strictly improving points', () => {
    const opts = [
      { cost: 4, damage: 10 }, { cost: 6, damage: 9.5 }, { cost: 8, damage: 4 }, { cost: 8, damage: 5 },
      { cost: 12, damage: 3 }, { cost: 16, damage: 3 }, { cost: 16, damage: 0.5 },
    ];
    expect(lowerHull(opts)).toEqual([0, 2, 6]);
  });
});
