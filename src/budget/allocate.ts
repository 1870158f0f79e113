// The allocation: one option (a type) per item (a tensor), total cost (bytes) within a
// capacity, least total damage: the multiple-choice knapsack. Two solvers, the better
// answer kept:
// - Lagrangian greedy (as EXL2's optimizer and llama.cpp's target-bpw work trade bits for
//   error): each item walks up the lower convex hull of its (cost, damage) points, the
//   step with the best damage saved per byte first, while it fits;
// - dynamic programming over the cost above each item's cheapest option, in units of
//   `unit` bytes (exact when unit = 1 or every cost is a multiple of it; costs are rounded
//   up otherwise, so the answer always fits).
// Then a fill pass spends what is left on the single change that saves the most damage.
// Pure: no model, no I/O.

export interface Option {
  /** Bytes (or any additive cost). */
  readonly cost: number;
  /** Damage, additive over items; lower is better. */
  readonly damage: number;
}

export interface Allocation {
  /** Index of the chosen option of each item. */
  readonly picks: number[];
  readonly cost: number;
  readonly damage: number;
}

/** Units of the DP table at most: its time is items × units × options. */
const MAX_DP_UNITS = 1 << 15;

/** The least-damage choice within `capacity`, or null when even the cheapest choice exceeds it. */
export function allocate(items: readonly (readonly Option[])[], capacity: number, granule = 1): Allocation | null {
  if (items.some((o) => o.length === 0)) throw new Error('allocate: an item has no options');
  const cheapest = items.map((opts) => argBest(opts, (a, b) => a.cost - b.cost || a.damage - b.damage));
  const minCost = cheapest.reduce((s, k, i) => s + items[i][k].cost, 0);
  if (minCost > capacity) return null;
  const a = fill(items, greedy(items, cheapest, capacity), capacity);
  const b = fill(items, dynamic(items, cheapest, capacity - minCost, granule), capacity);
  const best = b.damage < a.damage ? b : a;
  return { picks: best.picks, cost: best.cost, damage: best.damage };
}

function argBest<T>(xs: readonly T[], cmp: (a: T, b: T) => number): number {
  let best = 0;
  for (let i = 1; i < xs.length; i++) if (cmp(xs[i], xs[best]) < 0) best = i;
  return best;
}

function total(items: readonly (readonly Option[])[], picks: readonly number[]): Allocation {
  let cost = 0;
  let damage = 0;
  picks.forEach((k, i) => {
    cost += items[i][k].cost;
    damage += items[i][k].damage;
  });
  return { picks: [...picks], cost, damage };
}

/** Lower convex hull of an item's options by cost (indices, cost ascending, damage strictly falling). */
export function lowerHull(opts: readonly Option[]): number[] {
  const order = opts.map((_, i) => i).sort((x, y) => opts[x].cost - opts[y].cost || opts[x].damage - opts[y].damage);
  const pts: number[] = [];
  for (const i of order) {
    const o = opts[i];
    if (pts.length && opts[pts[pts.length - 1]].cost === o.cost) continue; // same cost, more damage
    if (pts.length && o.damage >= opts[pts[pts.length - 1]].damage) continue; // dearer, no better
    while (pts.length >= 2) {
      const a = opts[pts[pts.length - 2]];
      const b = opts[pts[pts.length - 1]];
      // b lies on or above the segment a -> o: drop it.
      if ((b.damage - a.damage) * (o.cost - a.cost) >= (o.damage - a.damage) * (b.cost - a.cost)) pts.pop();
      else break;
    }
    pts.push(i);
  }
  return pts;
}

function greedy(items: readonly (readonly Option[])[], cheapest: readonly number[], capacity: number): Allocation {
  const hulls = items.map(lowerHull);
  const picks = [...cheapest];
  const at = hulls.map((h, i) => h.indexOf(cheapest[i]));
  let cost = picks.reduce((s, k, i) => s + items[i][k].cost, 0);
  const open = new Set(items.map((_, i) => i).filter((i) => at[i] >= 0 && at[i] + 1 < hulls[i].length));
  for (;;) {
    let best = -1;
    let bestSlope = 0;
    for (const i of open) {
      const from = items[i][hulls[i][at[i]]];
      const to = items[i][hulls[i][at[i] + 1]];
      const slope = (from.damage - to.damage) / (to.cost - from.cost);
      if (best < 0 || slope > bestSlope) [best, bestSlope] = [i, slope];
    }
    if (best < 0) break;
    const from = items[best][hulls[best][at[best]]];
    const to = items[best][hulls[best][at[best] + 1]];
    if (cost + to.cost - from.cost > capacity) {
      open.delete(best); // this item's next step does not fit; others' may
      continue;
    }
    cost += to.cost - from.cost;
    at[best]++;
    picks[best] = hulls[best][at[best]];
    if (at[best] + 1 >= hulls[best].length) open.delete(best);
  }
  return total(items, picks);
}

function dynamic(items: readonly (readonly Option[])[], cheapest: readonly number[], spare: number, granule: number): Allocation {
  const unit = Math.max(granule, Math.ceil(spare / MAX_DP_UNITS / granule) * granule, 1);
  const cap = Math.floor(spare / unit);
  const base = cheapest.map((k, i) => items[i][k].cost);
  let dp = new Float64Array(cap + 1);
  const choice: Uint8Array[] = [];
  for (const [i, opts] of items.entries()) {
    if (opts.length > 255) throw new Error('allocate: at most 255 options per item');
    const next = new Float64Array(cap + 1).fill(Infinity);
    const pick = new Uint8Array(cap + 1);
    for (const [k, o] of opts.entries()) {
      const c = Math.ceil((o.cost - base[i]) / unit);
      if (c > cap) continue;
      for (let j = c; j <= cap; j++) {
        const v = dp[j - c] + o.damage;
        if (v < next[j]) {
          next[j] = v;
          pick[j] = k;
        }
      }
    }
    dp = next;
    choice.push(pick);
  }
  const picks = new Array<number>(items.length);
  let j = cap;
  for (let i = items.length - 1; i >= 0; i--) {
    const k = choice[i][j];
    picks[i] = k;
    j -= Math.ceil((items[i][k].cost - base[i]) / unit);
  }
  return total(items, picks);
}

/** Spends what is left: the change of one item that saves the most damage and fits, again and again. */
function fill(items: readonly (readonly Option[])[], start: Allocation, capacity: number): Allocation {
  const picks = [...start.picks];
  let cost = start.cost;
  for (;;) {
    let best: [number, number, number] | null = null;
    for (const [i, opts] of items.entries()) {
      const now = opts[picks[i]];
      for (const [k, o] of opts.entries()) {
        const saved = now.damage - o.damage;
        if (saved > 0 && cost + o.cost - now.cost <= capacity && (!best || saved > best[2])) best = [i, k, saved];
      }
    }
    if (!best) break;
    cost += items[best[0]][best[1]].cost - items[best[0]][picks[best[0]]].cost;
    picks[best[0]] = best[1];
  }
  return total(items, picks);
}
