// Seeded random numbers for tests, fixtures and benches: mulberry32 (small, fast, and the
// same sequence in every runtime), so that every generated input can be replayed from its seed.

/** mulberry32: uniform 32-bit unsigned integers. */
export function mulberry32Uint(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = Math.imul(s ^ (s >>> 15), s | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  };
}

/** Uniform in [0, 1). */
export function rng(seed: number): () => number {
  const next = mulberry32Uint(seed);
  return () => next() / 2 ** 32;
}

/** n standard normal values (Box-Muller on rng(seed)), times scale. */
export function gaussians(n: number, seed: number, scale = 1): Float32Array {
  const uniform = rng(seed);
  return Float32Array.from({ length: n }, () => Math.sqrt(-2 * Math.log(1 - uniform())) * Math.cos(2 * Math.PI * uniform()) * scale);
}
