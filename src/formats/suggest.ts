// "Did you mean": the names nearest a misspelt one (a tensor, a type, a preset, a command),
// by edit distance with transpositions, case ignored. Pure; every layer may use it.

/** Optimal-string-alignment distance: insertions, deletions, substitutions and swaps of neighbours cost 1. */
export function editDistance(a: string, b: string): number {
  const m = a.length, n = b.length;
  let before = new Array<number>(n + 1).fill(0);
  let prev = Array.from({ length: n + 1 }, (_, j) => j);
  for (let i = 1; i <= m; i++) {
    const row = new Array<number>(n + 1);
    row[0] = i;
    for (let j = 1; j <= n; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      row[j] = Math.min(prev[j] + 1, row[j - 1] + 1, prev[j - 1] + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) row[j] = Math.min(row[j], before[j - 2] + 1);
    }
    before = prev;
    prev = row;
  }
  return prev[n];
}

/**
 * The candidates nearest `word` (case ignored), at most `limit`, all at the smallest distance
 * found: within a quarter of its length in edits (at least 1, at most 3), so a one-letter typo
 * always finds its name and an unrelated word finds none.
 */
export function nearestNames(word: string, candidates: Iterable<string>, limit = 3): string[] {
  const w = word.toLowerCase();
  const within = Math.min(3, Math.max(1, Math.floor(w.length / 4)));
  const scored: { name: string; d: number }[] = [];
  for (const name of new Set(candidates)) {
    if (Math.abs(name.length - w.length) > within) continue;
    const d = editDistance(w, name.toLowerCase());
    if (d <= within) scored.push({ name, d });
  }
  // Only the nearest: a one-letter typo is not answered with every name two letters away.
  const best = Math.min(...scored.map((s) => s.d));
  return scored
    .filter((s) => s.d === best)
    .sort((x, y) => x.name.localeCompare(y.name))
    .slice(0, limit)
    .map((s) => s.name);
}

/** " (did you mean 'a' or 'b'?)" for the nearest names, or '' when none is near. */
export function didYouMean(word: string, candidates: Iterable<string>): string {
  const near = nearestNames(word, candidates).map((n) => `'${n}'`);
  if (near.length === 0) return '';
  return ` (did you mean ${near.length === 1 ? near[0] : `${near.slice(0, -1).join(', ')} or ${near[near.length - 1]}`}?)`;
}
