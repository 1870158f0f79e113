// npx tsx bench/cpu-products.ts
//
// The two CPU products calibration spends its time in (a GPTQ export's profile: the Gram
// matrix of each weight's inputs, then the forward pass), each against the plain loop it
// replaced, measured in the same run on the shapes of stories260K and of a 1B-class layer;
// prints ms and the ratio, and checks that both give the same bits:
// - model/llama.ts matmulF32, y = W·x per token (f64 sums; tiles of two rows by four tokens);
// - calibrate/grid.ts gram, XᵀX of the input rows (f64; four rows of X per pass over G).
import { gram } from '../src/calibrate/grid.ts';
import { matmulF32 } from '../src/model/llama.ts';

/** matmulF32 before the tiles: one row and token at a time. */
function plainMatmul(w: Float32Array, rows: number, cols: number, x: Float32Array, n: number): Float32Array {
  const y = new Float32Array(n * rows);
  for (let t = 0; t < n; t++) {
    const xo = t * cols;
    const yo = t * rows;
    for (let r = 0; r < rows; r++) {
      const wo = r * cols;
      let s = 0;
      for (let c = 0; c < cols; c++) s += w[wo + c] * x[xo + c];
      y[yo + r] = s;
    }
  }
  return y;
}

/** gram before the tiles: one input row at a time (a rank-1 update of the upper triangle). */
function plainGram(x: Float32Array, n: number, cols: number): Float64Array {
  const g = new Float64Array(cols * cols);
  for (let t = 0; t < n; t++) {
    const o = t * cols;
    for (let i = 0; i < cols; i++) {
      const xi = x[o + i];
      if (xi === 0) continue;
      for (let j = i; j < cols; j++) g[i * cols + j] += xi * x[o + j];
    }
  }
  for (let i = 0; i < cols; i++) for (let j = 0; j < i; j++) g[i * cols + j] = g[j * cols + i];
  return g;
}

let seed = 1;
const random = () => ((seed = (seed * 16807) % 2147483647) / 2147483647) - 0.5;
/** Mean ms per call after a warm-up call, over at least 3 calls and 300 ms. */
const ms = (f: () => void) => {
  f();
  const t0 = performance.now();
  let calls = 0;
  while (calls < 3 || performance.now() - t0 < 300) {
    f();
    calls++;
  }
  return (performance.now() - t0) / calls;
};
const sameBits = (a: ArrayLike<number>, b: ArrayLike<number>) => a.length === b.length && Array.prototype.every.call(a, (v: number, i: number) => Object.is(v, b[i]));
const line = (shape: string, plain: number, tiled: number, same: boolean) =>
  console.log(`${shape.padEnd(26)} ${plain.toFixed(1).padStart(9)} ${tiled.toFixed(1).padStart(10)} ${`x${(tiled / plain).toFixed(3)}`.padStart(13)}   ${same}`);

console.log('matmulF32: rows x cols, tokens  plain ms   tiled ms   tiled/plain   same bits');
for (const [rows, cols, n] of [[64, 64, 512], [172, 64, 511], [1024, 1024, 256], [2816, 1024, 256], [1024, 2816, 257]]) {
  const w = Float32Array.from({ length: rows * cols }, random);
  const x = Float32Array.from({ length: n * cols }, random);
  line(`${rows} x ${cols}, ${n}`, ms(() => plainMatmul(w, rows, cols, x, n)), ms(() => matmulF32(w, rows, cols, x, n)), sameBits(plainMatmul(w, rows, cols, x, n), matmulF32(w, rows, cols, x, n)));
}
console.log('\ngram: cols, input rows         plain ms   tiled ms   tiled/plain   same bits');
for (const [cols, n] of [[64, 1491], [172, 1491], [1024, 1025], [2816, 131]]) {
  // A column in seven is 0 in some rows, as after a ReLU-like gate.
  const x = Float32Array.from({ length: n * cols }, (_, k) => (k % 7 === 0 && random() > 0 ? 0 : random()));
  line(`${cols}, ${n}`, ms(() => plainGram(x, n, cols)), ms(() => gram(x, n, cols)), sameBits(plainGram(x, n, cols), gram(x, n, cols)));
}
